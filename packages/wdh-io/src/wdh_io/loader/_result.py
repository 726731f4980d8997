"""The outcome of one ``load_dataframe`` call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["LoadMethod", "LoadResult"]

LoadMethod = Literal["copy", "generic"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load wrote, counted exactly, and how.

    ``rows_inserted`` + ``rows_updated`` equals the number of rows loaded (an append
    only inserts). ``batches`` is the number of ``batch_size`` slices the frame was cut
    into — the same on both paths (the COPY path streams several slices per block).
    ``columns_dropped`` are the frame's columns that the table does not have.
    """

    table: str
    schema: str
    rows_inserted: int
    rows_updated: int
    duration_ms: float
    columns_dropped: tuple[str, ...]
    method: LoadMethod
    batches: int

    @property
    def rows_written(self) -> int:
        """Rows inserted plus rows updated."""
        return self.rows_inserted + self.rows_updated
