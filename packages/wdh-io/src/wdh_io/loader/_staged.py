"""``StagedLoad``: one load fed chunk by chunk into an open transaction, then merged once.

``tx.staged_load(table, upsert_keys=…)`` gives a :class:`StagedLoad`. Each
:meth:`StagedLoad.append` projects, checks and converts a chunk exactly as
``tx.load_dataframe`` does, then writes it: with upsert keys into one temporary staging
table for the whole load, without keys straight into the table. :meth:`StagedLoad.merge`
upserts everything staged in one statement; :meth:`StagedLoad.plan` reports what the
merge would do without writing to the table.

An upsert into a table that has never been written to (or was truncated) can only
insert: its chunks are copied straight into the table, under a lock that holds other
writers off until the transaction ends, and the merge has nothing left to do (see
``_straight``). The rows, counts and refusals are those of the staged path; a key the
load repeats is refused by the append that repeats it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import pandas as pd

from wdh_io.errors import DatabaseError
from wdh_io.loader._loading import Loading, name_index_label
from wdh_io.loader._result import LoadPlan, LoadResult
from wdh_logging import get_logger

if TYPE_CHECKING:
    from wdh_io.loader._loader import LoadTransaction

__all__ = ["StagedLoad"]

T = TypeVar("T")

_logger = get_logger(__name__)


class StagedLoad:
    """A load of many chunks into one table, inside one :class:`LoadTransaction`.

    Made by :meth:`LoadTransaction.staged_load`. Nothing is visible outside the
    transaction until it commits, and a rollback leaves nothing (the staging table is
    temporary too). Any failure marks the transaction failed: it can only roll back.
    """

    def __init__(self, tx: LoadTransaction, loading: Loading) -> None:
        self._tx = tx
        self._loading = loading
        self._started = time.perf_counter()
        self._log = _logger.bind(table=loading.table, schema=loading.schema, staged=True)

    @property
    def table(self) -> str:
        """The target table."""
        return self._loading.table

    @property
    def schema(self) -> str:
        """The target table's schema."""
        return self._loading.schema

    def _run(self, func: Callable[[], T], df: pd.DataFrame | None = None) -> T:
        self._tx._refuse_if_failed(self.table, self.schema)
        try:
            return func()
        except DatabaseError as exc:
            if df is not None:
                name_index_label(exc, df)
            self._log.error(
                "database.load.failed",
                error_type=type(exc).__name__,
                error=str(exc),
                batch=exc.batch,
                row=exc.row,
            )
            self._tx.failed = exc
            raise
        except BaseException as exc:
            self._tx.failed = exc
            raise

    def append(self, df: pd.DataFrame) -> int:
        """Add ``df``'s rows to the load; return how many were added.

        Projection, value checks, conversions, refusals and messages are those of
        ``tx.load_dataframe``; an error names the row by its position in ``df`` and its
        index label (set the index to the input rows' positions to get those named).
        With upsert keys the rows go into one temporary staging table for the whole
        load (a key repeated within ``df`` is refused here, across chunks by
        :meth:`merge`) -- or, into an empty table, straight into it (a repeated key is
        refused here, naming the rows); without keys straight into the table (the count
        is what was stored: a ``BEFORE`` trigger may skip rows). Every chunk must
        project onto the same columns as the first.
        """
        return self._run(lambda: self._loading.append(df), df)

    def merge(self) -> LoadResult:
        """Upsert everything staged in one statement and return the whole load's counts.

        Keys repeated across chunks are refused (by PostgreSQL's equality), listing the
        rows' index labels; nothing is written then. Rows whose data columns equal the
        stored row are not written and are counted in ``rows_unchanged``. Without keys
        the counts are those of the appends. The load is finished afterwards.
        """
        result = self._run(self._loading.merge)
        result = dataclasses.replace(
            result, duration_ms=round((time.perf_counter() - self._started) * 1000.0, 3)
        )
        self._log.info(
            "database.load.completed",
            rows=result.rows_written,
            rows_inserted=result.rows_inserted,
            rows_updated=result.rows_updated,
            rows_unchanged=result.rows_unchanged,
            batches=result.batches,
            duration_ms=result.duration_ms,
            method=result.method,
            columns_dropped=list(result.columns_dropped),
        )
        return result

    def plan(self, *, preview_rows: int = 10) -> LoadPlan:
        """What :meth:`merge` would do, without writing to the table (a dry run).

        With keys: the staged rows are compared with the stored ones (keys repeated
        across chunks are refused as by :meth:`merge`); each preview holds at most
        ``preview_rows`` staged rows, as staged. A ``BEFORE`` trigger that would change
        or skip a row is not run, and constraints of the table (CHECK, foreign keys)
        are not tried. Without keys, or into a table that was empty, the appended rows
        are already in the table, inside this transaction: every row is an insert, and
        a dry run rolls back (:meth:`WarehouseLoader.plan_dataframe` does). :meth:`merge`
        may still follow.
        """
        return self._run(lambda: self._loading.plan(preview_rows=preview_rows))
