"""The portable path: SQLAlchemy Core ``insert()`` with bound parameters, batch by batch.

Works on PostgreSQL and SQLite. Upserts use the dialect's ``on_conflict_do_update``.
Inserted and updated rows are counted exactly: on PostgreSQL from
``RETURNING (xmax = 0)``; on SQLite (which has no ``xmax``) from the table's row count
before and after, which is exact because duplicate keys within one call are rejected
beforehand and SQLite admits one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.errors import DatabaseError
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._values import ColumnSpec, python_rows

__all__ = ["generic_append", "generic_upsert", "supports_upsert"]


def supports_upsert(dialect_name: str) -> bool:
    """Dialects with ``INSERT … ON CONFLICT DO UPDATE`` in SQLAlchemy Core."""
    return dialect_name in ("postgresql", "sqlite")


def _batches(length: int, batch_size: int) -> list[tuple[int, int, int]]:
    return [
        (number, start, min(start + batch_size, length))
        for number, start in enumerate(range(0, length, batch_size), start=1)
    ]


def _run_batches(
    connection: Connection,
    statement: sa.Executable,
    frame: pd.DataFrame,
    specs: Sequence[ColumnSpec],
    *,
    batch_size: int,
    error_context: dict[str, Any],
    returning: bool,
) -> int:
    """Execute ``statement`` once per batch; return the count of true RETURNING flags."""
    flagged = 0
    for number, start, stop in _batches(len(frame), batch_size):
        rows = python_rows(frame, specs, start, stop)
        try:
            result = connection.execute(statement, rows)
            if returning:
                flagged += sum(1 for flag in result.scalars() if flag)
        except sa.exc.DBAPIError as exc:
            raise translate(exc, dialect=connection.dialect, batch=number, **error_context) from exc
    return flagged


def generic_append(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    *,
    batch_size: int,
    error_context: dict[str, Any],
) -> int:
    """INSERT ``frame`` batch by batch; return the number of rows written."""
    _run_batches(
        connection,
        sa.insert(info.table),
        frame,
        specs,
        batch_size=batch_size,
        error_context=error_context,
        returning=False,
    )
    return len(frame)


def _count_rows(connection: Connection, table: sa.Table, error_context: dict[str, Any]) -> int:
    try:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def generic_upsert(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    upsert_keys: Sequence[str],
    *,
    batch_size: int,
    error_context: dict[str, Any],
) -> tuple[int, int]:
    """INSERT … ON CONFLICT DO UPDATE batch by batch; return (inserted, updated)."""
    dialect_name = connection.dialect.name
    keys = set(upsert_keys)
    updated_columns = [spec.name for spec in specs if spec.name not in keys] or [upsert_keys[0]]
    if dialect_name == "postgresql":
        pg_statement = postgresql.insert(info.table)
        statement: sa.Executable = pg_statement.on_conflict_do_update(
            index_elements=list(upsert_keys),
            set_={name: pg_statement.excluded[name] for name in updated_columns},
        ).returning(sa.literal_column("(xmax = 0)", sa.Boolean).label("inserted"))
        inserted = _run_batches(
            connection,
            statement,
            frame,
            specs,
            batch_size=batch_size,
            error_context=error_context,
            returning=True,
        )
        return inserted, len(frame) - inserted
    if dialect_name == "sqlite":
        lite_statement = sqlite.insert(info.table)
        statement = lite_statement.on_conflict_do_update(
            index_elements=list(upsert_keys),
            set_={name: lite_statement.excluded[name] for name in updated_columns},
        )
        before = _count_rows(connection, info.table, error_context)
        _run_batches(
            connection,
            statement,
            frame,
            specs,
            batch_size=batch_size,
            error_context=error_context,
            returning=False,
        )
        inserted = _count_rows(connection, info.table, error_context) - before
        return inserted, len(frame) - inserted
    raise DatabaseError(
        f"upserts are not supported on {dialect_name}",
        table=error_context["table"],
        schema=error_context["schema"],
    )
