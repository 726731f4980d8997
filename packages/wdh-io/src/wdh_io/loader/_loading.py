"""One load on a connection inside an open transaction, fed one or many frames.

Both ``load_dataframe`` (one frame) and :class:`~wdh_io.loader.StagedLoad` (many chunks)
run a :class:`Loading`: each :meth:`Loading.append` reflects the table (cached),
projects the frame onto its columns, checks and converts the values, and writes them —
with upsert keys on PostgreSQL into one temporary staging table for the whole load
(into the table itself when it is empty: ``_straight``), without keys straight into
the table. :meth:`Loading.merge` then upserts the staged rows in one statement
(``_staging``); :meth:`Loading.plan` reports what that statement would do.
Nothing here begins, commits or rolls back: the caller owns the transaction.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.errors import DatabaseError, DataValidationError
from wdh_io.loader._copy import copy_append, copy_stage
from wdh_io.loader._generic import generic_append, generic_stage, sqlite_upsert
from wdh_io.loader._projection import Catalog, TableInfo, project
from wdh_io.loader._result import LoadMethod, LoadPlan, LoadResult
from wdh_io.loader._session import transaction_now, utc_session
from wdh_io.loader._staging import (
    check_duplicates,
    compared_columns,
    create_stage,
    drop_stage,
    merge_from_stage,
    plan_from_stage,
)
from wdh_io.loader._straight import (
    copy_straight_allowed,
    is_unique_violation,
    refuse_duplicate_keys,
)
from wdh_io.loader._values import ColumnKind, ColumnSpec, prepare_frame

__all__ = ["LoadSettings", "Loading", "name_index_label"]

#: Key kinds whose values the frame's duplicate check compares exactly as PostgreSQL
#: does (unlike ``char(n)`` text, rounded numerics, nanosecond timestamps, uuid text).
_EXACT_KEY_KINDS = frozenset({ColumnKind.INTEGER, ColumnKind.DATE, ColumnKind.BOOLEAN})

#: Rows of an append-mode load kept for :meth:`Loading.plan`'s preview.
_APPEND_PREVIEW_ROWS = 100


@dataclass(frozen=True)
class LoadSettings:
    """What a load needs of its :class:`~wdh_io.loader.WarehouseLoader`."""

    catalog: Catalog
    method: LoadMethod
    batch_size: int
    secrets: tuple[str, ...]


class Loading:
    """One load into ``schema.table`` on *connection*; see the module docstring.

    ``name_labels``: name rows that share a key across chunks by their index labels
    (a chunked load) rather than by their positions (one frame, whose positions the
    caller maps to labels). ``straight``: an upsert into an empty table may be copied
    straight into it (``_straight``); a plan stages it instead, writing and locking
    nothing of the table.
    """

    def __init__(
        self,
        connection: Connection,
        settings: LoadSettings,
        table: str,
        schema: str,
        *,
        upsert_keys: Sequence[str] | None,
        compare_ignore: Sequence[str],
        name_labels: bool,
        straight: bool = True,
    ) -> None:
        keys = tuple(upsert_keys or ())
        if upsert_keys is not None and not keys:
            raise ValueError("upsert_keys must name at least one column (or be None)")
        self._connection = connection
        self._settings = settings
        self.table = table
        self.schema = schema
        self.keys = keys
        self._ignore = tuple(compare_ignore)
        self._name_labels = name_labels
        self._info: TableInfo | None = None
        self._specs: tuple[ColumnSpec, ...] | None = None
        self._dropped: tuple[str, ...] = ()
        self._stage: str | None = None
        #: Upserts COPY straight into the (empty) table: decided at the first write.
        self._straight: bool | None = None if straight else False
        self._rows = 0  # rows staged (upserts) or stored (appends)
        self._batches = 0
        self._direct = (  # counts of upserts written chunk by chunk (SQLite)
            [0, 0, 0] if keys and connection.dialect.name != "postgresql" else None
        )
        self._offsets: list[int] = []  # staged position of each chunk's first row
        self._labels: list[pd.Index] = []  # each staged chunk's index labels
        self._preview: list[pd.DataFrame] = []  # an insert-only load's first rows
        self._merged = False
        self._now: pd.Timestamp | None = None  # the transaction's now(), once asked

    # ------------------------------------------------------------------ helpers

    def _context(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "schema": self.schema,
            "secrets": self._settings.secrets,
            "action": "load failed",
            "batch_size": self._settings.batch_size,  # locates COPY errors by line
        }

    @contextmanager
    def _translated(self, specs: Sequence[ColumnSpec]) -> Iterator[dict[str, Any]]:
        """Zone-less timestamps read as UTC, and driver errors translated."""
        context = self._context()
        try:
            with utc_session(self._connection, specs, context):
                yield context
        except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:  # not translated yet
            raise translate(exc, dialect=self._connection.dialect, **context) from exc

    def _describe(self) -> TableInfo:
        if self._info is None:  # the table must exist, whatever the frame
            self._info = self._settings.catalog.describe(self._connection, self.table, self.schema)
        return self._info

    def _refuse_if_merged(self) -> None:
        if self._merged:
            raise DatabaseError(
                "this load was already merged; start a new one",
                table=self.table,
                schema=self.schema,
            )

    def _label(self, position: int) -> Hashable:
        chunk = bisect.bisect_right(self._offsets, position) - 1
        label: Hashable = self._labels[chunk][position - self._offsets[chunk]]
        return label.item() if isinstance(label, np.generic) else label

    # ------------------------------------------------------------------ loading

    def append(self, df: pd.DataFrame) -> int:
        """Check and write ``df``'s rows; return how many were staged (upserts) or
        stored (appends: a ``BEFORE`` trigger may skip some)."""
        self._refuse_if_merged()
        info = self._describe()
        if len(df) == 0 and len(df.columns) == 0:
            return 0  # pd.DataFrame(): nothing to write and nothing to match
        projected, specs, dropped = project(
            df, info, table=self.table, schema=self.schema, upsert_keys=self.keys
        )
        if self._specs is None:
            self._specs, self._dropped = specs, dropped
        elif specs != self._specs:
            raise DataValidationError(
                "a chunk's columns differ from the first chunk's: "
                f"({', '.join(s.name for s in specs)}) instead of "
                f"({', '.join(s.name for s in self._specs)})",
                table=self.table,
                schema=self.schema,
            )
        prepared = prepare_frame(
            projected,
            specs,
            table=self.table,
            schema=self.schema,
            upsert_keys=self.keys,
            name_labels=self._name_labels,
        )
        rows = len(prepared)
        self._batches += math.ceil(rows / self._settings.batch_size)
        if not rows:
            return 0
        with self._translated(specs) as context:
            added = self._write(info, specs, prepared, projected, context)
        self._rows += added
        return added

    def _write(
        self,
        info: TableInfo,
        specs: tuple[ColumnSpec, ...],
        prepared: pd.DataFrame,
        projected: pd.DataFrame,
        context: dict[str, Any],
    ) -> int:
        connection, settings = self._connection, self._settings
        copy = settings.method == "copy"
        if self._direct is not None:
            counts = sqlite_upsert(
                connection,
                info,
                specs,
                prepared,
                self.keys,
                compared=[c.name for c in compared_columns(info, specs, self.keys, self._ignore)],
                batch_size=settings.batch_size,
                error_context=context,
            )
            self._direct = [a + b for a, b in zip(self._direct, counts, strict=True)]
            return len(prepared)
        if self.keys and self._straight is None:
            self._straight = copy and copy_straight_allowed(
                connection, info, specs, self.keys, context
            )
        if self.keys and not self._straight:
            if self._stage is None:
                self._stage = create_stage(connection, info, specs, context)
            self._offsets.append(self._rows)
            self._labels.append(prepared.index)
            if copy:
                return copy_stage(connection, self._stage, specs, prepared, error_context=context)
            return generic_stage(
                connection,
                info,
                specs,
                self._stage,
                prepared,
                batch_size=settings.batch_size,
                error_context=context,
            )
        kept = sum(len(frame) for frame in self._preview)
        if kept < _APPEND_PREVIEW_ROWS:
            self._preview.append(projected.iloc[: _APPEND_PREVIEW_ROWS - kept])
        if self._straight:
            return self._copy_straight(info, specs, prepared, context)
        if copy:
            sent = self._sent(info, specs, prepared)
            return copy_append(connection, info, sent, prepared, error_context=context)
        return generic_append(
            connection,
            info,
            specs,
            prepared,
            batch_size=settings.batch_size,
            error_context=context,
        )

    def _copy_straight(
        self,
        info: TableInfo,
        specs: tuple[ColumnSpec, ...],
        prepared: pd.DataFrame,
        context: dict[str, Any],
    ) -> int:
        """COPY an upsert's chunk straight into the empty table (``_straight``); a key
        the load repeats is refused, naming the rows, as the staged path refuses it."""
        self._offsets.append(self._rows)
        self._labels.append(prepared.index)
        sent = self._sent(info, specs, prepared)
        savepoint = self._connection.begin_nested()
        try:
            stored = copy_append(self._connection, info, sent, prepared, error_context=context)
        except DatabaseError as exc:
            if not is_unique_violation(exc):
                raise
            savepoint.rollback()
            refuse_duplicate_keys(
                self._connection,
                info,
                specs,
                self.keys,
                prepared,
                error_context=context,
                labels=self._label if self._name_labels else None,
            )
            raise
        savepoint.commit()
        return stored

    def _sent(
        self, info: TableInfo, specs: tuple[ColumnSpec, ...], prepared: pd.DataFrame
    ) -> tuple[ColumnSpec, ...]:
        """The columns a COPY into the table sends: *specs* but those left to their
        default, which stores the same values.

        That is a ``timestamptz`` column defaulting to ``now()`` whose every value is
        this transaction's ``now()`` (a load stamping its rows with the time of the load,
        as the platform's streamed loads do): PostgreSQL then does not parse a
        timestamp per row, which is a good part of what a COPY of a narrow table costs.
        """
        if info.relkind not in ("r", "p") or not any(s.defaults_to_now for s in specs):
            return specs
        if self._now is None:
            self._now = transaction_now(self._connection)
        moment = self._now
        return tuple(
            spec
            for spec in specs
            if not (spec.defaults_to_now and _holds_only(prepared[spec.name], moment))
        )

    def merge(self) -> LoadResult:
        """Write what was staged (upserts) and return the whole load's counts; the load
        is finished afterwards."""
        self._refuse_if_merged()
        self._merged = True
        inserted = updated = unchanged = 0
        if self._direct is not None:
            inserted, updated, unchanged = self._direct
        elif not self.keys or self._straight:
            inserted = self._rows
        elif self._stage is not None and self._specs is not None:
            info, specs, stage = self._describe(), self._specs, self._stage
            with self._translated(specs) as context:
                self._check_duplicates(stage, context)
                inserted, updated, unchanged = merge_from_stage(
                    self._connection,
                    info,
                    specs,
                    stage,
                    self.keys,
                    compared=compared_columns(info, specs, self.keys, self._ignore),
                    staged_rows=self._rows,
                    error_context=context,
                )
                drop_stage(self._connection, stage, context)
        else:
            self._describe()
        return LoadResult(
            table=self.table,
            schema=self.schema,
            rows_inserted=inserted,
            rows_updated=updated,
            duration_ms=0.0,
            columns_dropped=self._dropped,
            method=self._settings.method,
            batches=self._batches,
            rows_unchanged=unchanged,
        )

    def _check_duplicates(self, stage: str, context: dict[str, Any]) -> None:
        if len(self._labels) == 1 and all(
            spec.kind in _EXACT_KEY_KINDS for spec in self._specs or () if spec.name in self.keys
        ):
            return  # one frame, already checked by values PostgreSQL compares the same way
        check_duplicates(
            self._connection,
            stage,
            self.keys,
            error_context=context,
            labels=self._label if self._name_labels else None,
        )

    def plan(self, *, preview_rows: int) -> LoadPlan:
        """What :meth:`merge` would do; writes nothing to the table (an append load's
        rows are already in it, inside the caller's transaction: roll it back)."""
        self._refuse_if_merged()
        self._describe()
        if self._direct is not None:
            raise DatabaseError(
                f"dry runs of upserts need PostgreSQL, not {self._connection.dialect.name}",
                table=self.table,
                schema=self.schema,
            )
        columns = [spec.name for spec in self._specs or ()]
        if self.keys and self._stage is not None and self._specs is not None:
            info, specs, stage = self._describe(), self._specs, self._stage
            with self._translated(specs) as context:
                self._check_duplicates(stage, context)
                return plan_from_stage(
                    self._connection,
                    info,
                    specs,
                    stage,
                    self.keys,
                    compared=compared_columns(info, specs, self.keys, self._ignore),
                    preview_rows=preview_rows,
                    error_context=context,
                )
        empty = pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
        inserts = empty
        if self._preview:  # an append, or an upsert into an empty table: all inserts
            inserts = pd.concat(self._preview).iloc[: max(preview_rows, 0)]
        return LoadPlan(
            rows_insert=self._rows,
            rows_update=0,
            rows_unchanged=0,
            inserts=inserts,
            updates=empty,
            unchanged=empty,
        )


def name_index_label(exc: DatabaseError, df: pd.DataFrame) -> None:
    """Add the failing row's index label to *exc* (the row a pipeline reported)."""
    if exc.row is not None and 0 <= exc.row < len(df):
        label = df.index[exc.row]
        # numpy scalars (np.int64(2)) would render as their repr; name the plain value
        exc.name_index_label(label.item() if isinstance(label, np.generic) else label)


def _holds_only(series: pd.Series, moment: pd.Timestamp) -> bool:
    """Whether every value of a prepared ``timestamptz`` column is *moment*."""
    if not isinstance(series.dtype, pd.DatetimeTZDtype) or series.empty:
        return False
    return bool((series == moment).all())
