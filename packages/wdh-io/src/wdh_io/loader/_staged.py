"""``StagedLoad``: one load fed chunk by chunk into an open transaction, then merged once.

``tx.staged_load(table, upsert_keys=…)`` gives a :class:`StagedLoad`. Each
:meth:`StagedLoad.append` projects, checks and converts a chunk exactly as
``tx.load_dataframe`` does, then writes it: with upsert keys into one temporary staging
table for the whole load, without keys straight into the table. :meth:`StagedLoad.merge`
upserts everything staged in one statement; :meth:`StagedLoad.plan` reports what the
merge would do without writing to the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from wdh_io.loader._result import LoadPlan, LoadResult

if TYPE_CHECKING:
    from wdh_io.loader._loader import LoadTransaction

__all__ = ["StagedLoad"]


class StagedLoad:
    """A load of many chunks into one table, inside one :class:`LoadTransaction`."""

    def __init__(
        self,
        tx: LoadTransaction,
        table: str,
        *,
        schema: str,
        upsert_keys: Sequence[str] | None,
        compare_ignore: Sequence[str],
    ) -> None:
        self._tx = tx
        self.table = table
        self.schema = schema
        self.upsert_keys = tuple(upsert_keys or ())
        self.compare_ignore = tuple(compare_ignore)

    def append(self, df: pd.DataFrame) -> int:
        """Add ``df``'s rows to the load; return how many were added."""
        raise NotImplementedError

    def merge(self) -> LoadResult:
        """Write everything staged into the table in one statement."""
        raise NotImplementedError

    def plan(self, *, preview_rows: int = 10) -> LoadPlan:
        """What :meth:`merge` would do, without writing to the table."""
        raise NotImplementedError
