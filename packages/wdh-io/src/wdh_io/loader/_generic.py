"""The portable path: SQLAlchemy Core ``insert()`` with bound parameters, batch by batch.

Works on PostgreSQL and SQLite. Values of the kinds both paths send as text (JSON, bytea,
uuid, arrays, interval: see ``_text_forms``) are bound as plain strings, which the
server parses by the column's type, exactly as it parses COPY's text.

* Appends insert the rows batch by batch; the count is what the database returned
  (``RETURNING`` where the dialect has it), so rows a trigger skipped are not counted.
* Upserts on PostgreSQL insert the rows batch by batch into a staging table
  (``generic_stage``), which the merge the COPY path runs too (``_staging``) then
  writes: the same statements decide what is stored, what is counted, and which keys
  are duplicates, whatever ``batch_size`` is.
* Upserts on SQLite (no staging, no ``xmax``) run ``on_conflict_do_update … WHERE`` a
  data column differs, per batch; inserts are counted from the table's row count before
  and after, updates from the rows SQLite changed, which is exact because duplicate keys
  within one call are rejected beforehand and SQLite admits one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._values import TEXT_FORM_KINDS, ColumnSpec, python_rows

__all__ = ["generic_append", "generic_stage", "sqlite_upsert", "supports_upsert"]


def supports_upsert(dialect_name: str) -> bool:
    """Dialects with ``INSERT … ON CONFLICT DO UPDATE`` in SQLAlchemy Core."""
    return dialect_name in ("postgresql", "sqlite")


def _batches(length: int, batch_size: int) -> list[tuple[int, int, int]]:
    return [
        (number, start, min(start + batch_size, length))
        for number, start in enumerate(range(0, length, batch_size), start=1)
    ]


def _target(
    info: TableInfo, specs: Sequence[ColumnSpec], *, name: str | None = None
) -> sa.TableClause:
    """The table (or a staging table *name*) with the loaded columns, text-form kinds
    typed as plain text so that SQLAlchemy binds the prepared strings unchanged."""
    columns = [
        sa.column(spec.name, sa.Text() if spec.kind in TEXT_FORM_KINDS else col.type)
        for spec in specs
        for col in (info.table.c[spec.name],)
    ]
    if name is not None:
        return sa.table(name, *columns)
    return sa.table(info.table.name, *columns, schema=info.table.schema)


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
    """Execute ``statement`` once per batch; return the rows returned (or the rowcount)."""
    stored = 0
    for number, start, stop in _batches(len(frame), batch_size):
        rows = python_rows(frame, specs, start, stop)
        try:
            result = connection.execute(statement, rows)
            stored += len(result.all()) if returning else max(int(result.rowcount), 0)
        except sa.exc.DBAPIError as exc:
            raise translate(exc, dialect=connection.dialect, batch=number, **error_context) from exc
    return stored


def generic_append(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    *,
    batch_size: int,
    error_context: dict[str, Any],
) -> int:
    """INSERT ``frame`` batch by batch; return the rows stored."""
    statement: sa.Executable = sa.insert(_target(info, specs))
    returning = bool(connection.dialect.insert_executemany_returning)
    if returning:
        statement = sa.insert(_target(info, specs)).returning(sa.literal_column("1"))
    return _run_batches(
        connection,
        statement,
        frame,
        specs,
        batch_size=batch_size,
        error_context=error_context,
        returning=returning,
    )


def _count_rows(connection: Connection, table: sa.Table, error_context: dict[str, Any]) -> int:
    try:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def generic_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    frame: pd.DataFrame,
    *,
    batch_size: int,
    error_context: dict[str, Any],
) -> int:
    """INSERT ``frame`` into a staging table (see ``_staging``) batch by batch; return
    the rows staged."""
    _run_batches(
        connection,
        sa.insert(_target(info, specs, name=stage.strip('"').replace('""', '"'))),
        frame,
        specs,
        batch_size=batch_size,
        error_context=error_context,
        returning=False,
    )
    return len(frame)


def sqlite_upsert(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    upsert_keys: Sequence[str],
    *,
    compared: Sequence[str],
    batch_size: int,
    error_context: dict[str, Any],
) -> tuple[int, int, int]:
    """Upsert ``frame`` on SQLite; return (inserted, updated, unchanged).

    A stored row whose *compared* columns all equal the frame's (``IS``: NULL equals
    NULL) is left alone and counted unchanged.
    """
    keys = set(upsert_keys)
    updated_columns = [s.name for s in specs if s.name not in keys]
    lite_statement = sqlite.insert(_target(info, specs))
    if compared:
        target = _target(info, specs)
        statement = lite_statement.on_conflict_do_update(
            index_elements=list(upsert_keys),
            set_={name: lite_statement.excluded[name] for name in updated_columns},
            where=sa.or_(
                *(target.c[n].is_distinct_from(lite_statement.excluded[n]) for n in compared)
            ),
        )
    else:
        statement = lite_statement.on_conflict_do_nothing(index_elements=list(upsert_keys))
    before = _count_rows(connection, info.table, error_context)
    written = _run_batches(
        connection,
        statement,
        frame,
        specs,
        batch_size=batch_size,
        error_context=error_context,
        returning=False,
    )
    inserted = _count_rows(connection, info.table, error_context) - before
    return inserted, written - inserted, len(frame) - written
