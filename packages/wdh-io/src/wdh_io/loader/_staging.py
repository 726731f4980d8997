"""PostgreSQL staging tables and the one ``INSERT … ON CONFLICT`` both upsert paths run.

Both paths upsert the same way on PostgreSQL: the rows go into a temporary staging table
(by COPY, or by batched INSERT on the generic path), then one
``INSERT … SELECT … ON CONFLICT (keys) DO UPDATE`` merges them. So what PostgreSQL
stores and counts is decided by one statement, whatever the path or the batch size:

* **counts** are what the statement returned: rows a ``BEFORE`` trigger skipped are
  in neither count. On an ordinary table ``RETURNING (xmax = 0)`` tells inserts from
  updates; partitioned tables and views have no ``xmax`` to read, so there the keys
  that existed before the statement (a CTE, which sees the statement's snapshot) are
  matched against the returned keys;
* **duplicate keys** are judged by PostgreSQL's own equality (``'ab'`` and ``'ab  '`` in a
  ``char(5)`` key, ``1.001`` and ``1.002`` in a ``numeric(10, 2)`` key): the merge fails
  with ``21000``, is rolled back to a savepoint, and the staging table (whose physical
  order is the frame's row order) names the rows sharing a key.

Identifiers are always quoted by :func:`quote`; no data enters the SQL text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg2 import errorcodes
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._values import ColumnSpec, duplicate_keys_error

__all__ = [
    "create_stage",
    "execute",
    "insert_from_stage",
    "merge_from_stage",
    "qualified",
    "quote",
]

_NO_PARAMETERS = {"no_parameters": True}  # identifiers may hold '%': no driver formatting
_MAX_ROWS_LISTED = 11


def quote(name: str) -> str:
    """A PostgreSQL identifier, always quoted: ``"`` doubled, nothing else touched.

    (SQLAlchemy's preparer also doubles ``%`` for the driver's parameter formatting;
    these statements are never formatted, so that would change the name.)
    """
    return '"' + name.replace('"', '""') + '"'


def qualified(table: sa.Table) -> str:
    """``"schema"."table"`` (or just ``"table"``), quoted."""
    return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)


def execute(connection: Connection, statement: str, error_context: dict[str, Any]) -> Any:
    """Run one statement of identifiers only; driver errors translated."""
    try:
        return connection.exec_driver_sql(statement, execution_options=_NO_PARAMETERS)
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def create_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    error_context: dict[str, Any],
) -> str:
    """A temporary table with the loaded columns' types (and NOT NULLs), dropped at
    commit; returns its quoted name."""
    stage = quote(f"wdh_stage_{uuid.uuid4().hex[:16]}")
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    execute(
        connection,
        # Identifiers only, each quoted by quote(); no data enters the SQL text.
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {columns_sql} FROM {qualified(info.table)} WITH NO DATA",
        error_context,
    )
    required = [spec.name for spec in specs if not spec.nullable]
    if required:
        # NOT NULL on the staging table makes the load report the offending row and column.
        clauses = ", ".join(f"ALTER COLUMN {quote(name)} SET NOT NULL" for name in required)
        execute(connection, f"ALTER TABLE {stage} {clauses}", error_context)
    return stage


def _merge_statement(
    info: TableInfo, specs: Sequence[ColumnSpec], stage: str, keys: Sequence[str]
) -> str:
    target = qualified(info.table)
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    key_set = set(keys)
    updated = [spec.name for spec in specs if spec.name not in key_set] or [keys[0]]
    assignments = ", ".join(f"{quote(name)} = EXCLUDED.{quote(name)}" for name in updated)
    conflict = ", ".join(quote(key) for key in keys)
    insert = (
        f"INSERT INTO {target} ({columns_sql}) SELECT {columns_sql} FROM {stage} "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
    )
    if info.relkind == "r":
        return (
            f"WITH written AS ({insert} RETURNING (xmax = 0) AS inserted) "  # noqa: S608
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
            "FROM written"
        )
    # Partitioned tables and views: no xmax in RETURNING. The CTE "existing" sees the
    # snapshot the whole statement started from, i.e. the keys present before the insert.
    match = " AND ".join(f"e.{quote(key)} = w.{quote(key)}" for key in keys)
    return (
        f"WITH existing AS (SELECT {conflict}, true AS hit FROM {target} "  # noqa: S608
        f"WHERE ({conflict}) IN (SELECT {conflict} FROM {stage})), "
        f"written AS ({insert} RETURNING {conflict}) "
        "SELECT count(*) FILTER (WHERE e.hit IS NULL), count(*) FILTER (WHERE e.hit) "
        f"FROM written w LEFT JOIN existing e ON {match}"
    )


def _duplicate_rows(connection: Connection, stage: str, keys: Sequence[str]) -> list[int]:
    """Positions (0-based, ascending) of staged rows whose key another row shares.

    A fresh temporary table that was only inserted into keeps its rows in insertion
    order, so ``ctid`` order is the frame's row order.
    """
    conflict = ", ".join(quote(key) for key in keys)
    result = connection.exec_driver_sql(
        "SELECT line FROM (SELECT row_number() OVER (ORDER BY ctid) - 1 AS line, "  # noqa: S608
        f"count(*) OVER (PARTITION BY {conflict}) AS n FROM {stage}) AS s "
        f"WHERE n > 1 ORDER BY line LIMIT {_MAX_ROWS_LISTED}",
        execution_options=_NO_PARAMETERS,
    )
    return [int(row[0]) for row in result]


def merge_from_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    keys: Sequence[str],
    *,
    error_context: dict[str, Any],
) -> tuple[int, int]:
    """Upsert the staged rows into the table; return ``(rows_inserted, rows_updated)``."""
    statement = _merge_statement(info, specs, stage, keys)
    savepoint = connection.begin_nested()
    try:
        counts = connection.exec_driver_sql(statement, execution_options=_NO_PARAMETERS).one()
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) == errorcodes.CARDINALITY_VIOLATION:
            rows = _duplicate_rows(connection, stage, keys)
            if rows:
                raise duplicate_keys_error(
                    rows, keys, error_context["table"], error_context["schema"]
                ) from exc
        raise translate(exc, dialect=connection.dialect, **error_context) from exc
    savepoint.commit()
    execute(connection, f"DROP TABLE {stage}", error_context)
    return int(counts[0]), int(counts[1])


def insert_from_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    *,
    error_context: dict[str, Any],
) -> int:
    """Append the staged rows (the way into a view, which COPY cannot target); return
    the rows stored (a trigger may skip some)."""
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    result = execute(
        connection,
        f"INSERT INTO {qualified(info.table)} ({columns_sql}) "  # noqa: S608
        f"SELECT {columns_sql} FROM {stage}",
        error_context,
    )
    execute(connection, f"DROP TABLE {stage}", error_context)
    return int(result.rowcount)
