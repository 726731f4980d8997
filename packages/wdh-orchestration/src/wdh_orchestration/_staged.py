"""Rows of one file staged chunk by chunk in a load transaction, then merged or planned.

The loader's staged load (``tx.staged_load``) takes a file's valid rows one chunk at a
time and upserts them all at once at the end (``merge``), or says what that would do
without doing it (``plan``). Until every loader has it, :func:`open_staged` falls back
to one ``load_dataframe`` per chunk in the same transaction: the same rows end up in
the table, but unchanged rows are counted as updated and a plan has no previews.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import pandas as pd

from wdh_io.loader import LoadResult, LoadTransaction

__all__ = [
    "COMPARE_IGNORE",
    "PlannedLoad",
    "StagedRows",
    "open_staged",
    "planned",
    "rows_unchanged",
]

COMPARE_IGNORE: tuple[str, ...] = ("loaded_at",)
"""Columns the load stamps itself: left out when deciding whether a row changed."""


@dataclass(frozen=True, slots=True)
class PlannedLoad:
    """What merging the staged rows would do: counts and the first rows of each kind."""

    rows_insert: int
    rows_update: int
    rows_unchanged: int
    inserts: pd.DataFrame = field(default_factory=pd.DataFrame)
    updates: pd.DataFrame = field(default_factory=pd.DataFrame)
    unchanged: pd.DataFrame = field(default_factory=pd.DataFrame)


class StagedRows(Protocol):
    """A staged load: ``append`` per chunk, then ``merge`` (write) or ``plan`` (don't)."""

    def append(self, df: pd.DataFrame) -> int: ...

    def merge(self) -> LoadResult: ...

    def plan(self, preview_rows: int = 10) -> Any: ...


def rows_unchanged(result: LoadResult) -> int:
    """``result.rows_unchanged`` (0 from a loader that does not count them)."""
    return int(getattr(result, "rows_unchanged", 0))


def planned(plan: Any) -> PlannedLoad:
    """The loader's plan (any object with the ``LoadPlan`` fields) as a PlannedLoad."""
    if isinstance(plan, PlannedLoad):
        return plan
    return PlannedLoad(
        rows_insert=int(plan.rows_insert),
        rows_update=int(plan.rows_update),
        rows_unchanged=int(plan.rows_unchanged),
        inserts=_frame(plan.inserts),
        updates=_frame(plan.updates),
        unchanged=_frame(plan.unchanged),
    )


def _frame(value: Any) -> pd.DataFrame:
    return value if isinstance(value, pd.DataFrame) else pd.DataFrame(value)


def open_staged(
    tx: LoadTransaction, table: str, *, schema: str, upsert_keys: list[str]
) -> StagedRows:
    """A staged load into *schema*.*table* in *tx*, upserting on *upsert_keys*."""
    staged_load = getattr(tx, "staged_load", None)
    if staged_load is not None:
        return cast(
            "StagedRows",
            staged_load(
                table, schema=schema, upsert_keys=upsert_keys, compare_ignore=COMPARE_IGNORE
            ),
        )
    return _PerChunk(tx, table, schema, upsert_keys)


class _PerChunk:
    """The fallback: each chunk upserted by its own ``load_dataframe`` in *tx*."""

    def __init__(self, tx: LoadTransaction, table: str, schema: str, keys: list[str]) -> None:
        self._tx = tx
        self._table = table
        self._schema = schema
        self._keys = keys
        self._result: LoadResult | None = None

    def append(self, df: pd.DataFrame) -> int:
        if df.empty:
            return 0
        loaded = self._tx.load_dataframe(df, self._table, self._schema, self._keys)
        previous = self._result
        self._result = (
            loaded
            if previous is None
            else dataclasses.replace(
                previous,
                rows_inserted=previous.rows_inserted + loaded.rows_inserted,
                rows_updated=previous.rows_updated + loaded.rows_updated,
                duration_ms=previous.duration_ms + loaded.duration_ms,
                batches=previous.batches + loaded.batches,
            )
        )
        return len(df)

    def merge(self) -> LoadResult:
        if self._result is None:
            return LoadResult(
                table=self._table,
                schema=self._schema,
                rows_inserted=0,
                rows_updated=0,
                duration_ms=0.0,
                columns_dropped=(),
                method="copy",
                batches=0,
            )
        return self._result

    def plan(self, preview_rows: int = 10) -> PlannedLoad:
        del preview_rows  # the rows are in the table already; no previews to give
        result = self.merge()
        return PlannedLoad(
            rows_insert=result.rows_inserted, rows_update=result.rows_updated, rows_unchanged=0
        )
