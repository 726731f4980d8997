"""Upserts into an empty table: ``COPY`` straight into the table, no staging and no merge.

An upsert into a table that holds no row can only insert, so its rows may go into the
table as they come -- which is what a domain's first load, or a reload after
``TRUNCATE``, does. That saves the staging table and the merge statement (on a
sample-shaped file, more than the ``COPY`` itself costs). It is taken only when it
changes nothing but the speed (:func:`copy_straight_allowed`):

* the table is an ordinary table (not partitioned, not a view), without row-level
  security (``COPY`` refuses it) and without a ``BEFORE`` row trigger that could skip a
  row (the staged positions must be the rows' positions);
* ``ON CONFLICT (keys)`` has its arbiter: PostgreSQL plans the statement (a load without
  one fails as before, at the merge);
* the table has never been written to, or was truncated: its heap has no page, so the
  rows stored are exactly this load's, in the order they were sent (nothing to compare
  against, and the positions of the rows sharing a key can be named, see below);
* it stays so: ``SHARE ROW EXCLUSIVE`` is taken before the size is read again, and
  held to the end of the transaction (released at once if the table is not empty any
  more). Readers go on; another writer waits for this load to commit, and its own
  upsert then sees these rows.

A key repeated in the file then fails the ``COPY`` with a unique violation, by the same
equality as the staging table's unique index. :func:`refuse_duplicate_keys` names the
rows as the staged path does: the rows already stored (in their order) and the failing
chunk go into a staging table, whose duplicate keys are listed. Any other unique index
of the table fails the ``COPY`` too, as it would fail the merge.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from psycopg2 import errorcodes
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.errors import DatabaseError
from wdh_io.loader._copy import copy_stage
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._staging import (
    check_duplicates,
    create_stage,
    execute,
    may_skip_rows,
    qualified,
    quote,
)
from wdh_io.loader._values import ColumnSpec

__all__ = ["copy_straight_allowed", "is_unique_violation", "refuse_duplicate_keys"]


def _heap_is_empty(connection: Connection, info: TableInfo) -> bool:
    size = connection.execute(
        sa.text("SELECT pg_relation_size(to_regclass(:rel))"), {"rel": qualified(info.table)}
    ).scalar_one()
    return int(size) == 0


def _row_security(connection: Connection, info: TableInfo) -> bool:
    return bool(
        connection.execute(
            sa.text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass(:rel)"),
            {"rel": qualified(info.table)},
        ).scalar_one()
    )


def _has_arbiter(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    keys: Sequence[str],
) -> bool:
    """Whether ``ON CONFLICT (keys)`` finds its unique index: PostgreSQL plans it."""
    columns = ", ".join(quote(spec.name) for spec in specs)
    conflict = ", ".join(quote(key) for key in keys)
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(
            f"EXPLAIN INSERT INTO {qualified(info.table)} ({columns}) "  # noqa: S608
            f"SELECT {columns} FROM {qualified(info.table)} WHERE false "
            f"ON CONFLICT ({conflict}) DO NOTHING",
            execution_options={"no_parameters": True},
        )
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return False
    savepoint.commit()
    return True


def copy_straight_allowed(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    keys: Sequence[str],
    error_context: dict[str, Any],
) -> bool:
    """Whether this upsert may ``COPY`` straight into the table (see the module
    docstring); when it may, the table is locked against other writers until the
    transaction ends."""
    if info.relkind != "r":
        return False
    try:
        if not _heap_is_empty(connection, info) or _row_security(connection, info):
            return False
        if may_skip_rows(connection, info, error_context):
            return False
        if not _has_arbiter(connection, info, specs, keys):
            return False
        return _locked_while_empty(connection, info)
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def _locked_while_empty(connection: Connection, info: TableInfo) -> bool:
    """Take SHARE ROW EXCLUSIVE and read the size again (another writer may have written
    since); keep the lock only when the table is still empty.

    The lock is taken in a savepoint, so that rolling it back releases the lock when
    the table is not empty any more, and when the role may insert but not lock so (the
    mode needs UPDATE, DELETE or TRUNCATE; the staged path needs neither).
    """
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(
            f"LOCK TABLE {qualified(info.table)} IN SHARE ROW EXCLUSIVE MODE",
            execution_options={"no_parameters": True},
        )
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) == errorcodes.INSUFFICIENT_PRIVILEGE:
            return False
        raise
    if not _heap_is_empty(connection, info):
        savepoint.rollback()
        return False
    savepoint.commit()  # a released savepoint's locks stay with the transaction
    return True


def is_unique_violation(exc: DatabaseError) -> bool:
    """Whether *exc* was raised for PostgreSQL's unique violation (``23505``)."""
    return getattr(exc.__cause__, "pgcode", None) == errorcodes.UNIQUE_VIOLATION


def refuse_duplicate_keys(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    keys: Sequence[str],
    chunk: pd.DataFrame,
    *,
    error_context: dict[str, Any],
    labels: Callable[[int], Hashable] | None,
) -> None:
    """After a straight ``COPY`` of *chunk* failed on a unique index (and its savepoint
    was rolled back): raise the staged path's duplicate-key error if rows of the load
    share a key; return if none do (another unique index failed).

    The rows stored so far (in the order they were sent: the heap was empty) and then
    *chunk* (already prepared) are staged; *labels* maps a staged position to its index
    label.
    """
    stage = create_stage(connection, info, specs, error_context)
    columns = ", ".join(quote(spec.name) for spec in specs)
    execute(
        connection,
        f"INSERT INTO {stage} ({columns}) "  # noqa: S608
        f"SELECT {columns} FROM {qualified(info.table)} ORDER BY ctid",
        error_context,
    )
    copy_stage(connection, stage, specs, chunk, error_context=error_context)
    check_duplicates(connection, stage, keys, error_context=error_context, labels=labels)
