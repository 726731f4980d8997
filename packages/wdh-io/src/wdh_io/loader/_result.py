"""The outcome of one ``load_dataframe`` call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

__all__ = ["LoadMethod", "LoadPlan", "LoadResult"]

LoadMethod = Literal["copy", "generic"]


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one load wrote, counted exactly, and how.

    ``rows_inserted`` + ``rows_updated`` + ``rows_unchanged`` equals the number of rows
    loaded (an append only inserts), less any a ``BEFORE`` trigger skipped.
    ``rows_unchanged`` are upserted rows whose data columns (the loaded columns other than
    the keys and the ignored ones, ``loaded_at`` by default) equalled the stored row's
    (``IS NOT DISTINCT FROM``, so NULL equals NULL): they were not written.
    ``batches`` is the number of ``batch_size`` slices the frame was cut
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
    rows_unchanged: int = 0

    @property
    def rows_written(self) -> int:
        """Rows inserted plus rows updated."""
        return self.rows_inserted + self.rows_updated


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """What an upsert would do, found without writing to the target table (a dry run).

    ``rows_insert`` rows have a key the table does not hold, ``rows_update`` a stored row
    whose data columns differ, ``rows_unchanged`` a stored row with equal data columns
    (``IS NOT DISTINCT FROM``). ``inserts``, ``updates`` and ``unchanged`` preview the
    loaded values of at most ``preview_rows`` rows of each kind, in load order.
    """

    rows_insert: int
    rows_update: int
    rows_unchanged: int
    inserts: pd.DataFrame
    updates: pd.DataFrame
    unchanged: pd.DataFrame

    @property
    def rows_total(self) -> int:
        """Every row the plan covers."""
        return self.rows_insert + self.rows_update + self.rows_unchanged
