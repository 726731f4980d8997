"""PostgreSQL staging tables and the statements both upsert paths run on them.

Both paths upsert the same way on PostgreSQL (into a table that was empty, the COPY path
copies straight into it: ``_straight``): the rows go into a temporary staging table
(by COPY, or by batched INSERT on the generic path; one table for all the chunks of a
load), then one ``INSERT … SELECT … ON CONFLICT (keys) DO UPDATE … WHERE`` a data column
differs merges them. So what PostgreSQL stores and counts is decided by one statement,
whatever the path, the batch size or the chunks:

* **unchanged rows** (data columns ``IS NOT DISTINCT FROM`` the stored row's) are not
  written; :func:`compared_columns` says which columns count and how they are compared;
* **counts** are what the statement returned: on an ordinary table without ``BEFORE``
  row triggers ``RETURNING (xmax = 0)`` tells inserts from updates and every other
  staged row is unchanged; on partitioned tables, views (no ``xmax``) and tables whose
  triggers may skip rows, the stored rows before the statement (a CTE, which sees the
  statement's snapshot) are matched against the returned keys, and only rows equal to
  their stored row count as unchanged — a row a trigger skipped is in no count;
* **duplicate keys** are judged by PostgreSQL's own equality (``'ab'`` and ``'ab  '`` in a
  ``char(5)`` key, ``1.001`` and ``1.002`` in a ``numeric(10, 2)`` key): a unique index
  built on the staging table finds them (in a savepoint), and the staging table (whose
  physical order is the staged order) names the rows sharing a key;
* a **plan** (:func:`plan_from_stage`) counts and previews the same three kinds by
  joining the staging table to the table, writing nothing else.

Identifiers are always quoted by :func:`quote`; no data enters the SQL text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa
from psycopg2 import errorcodes
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._result import LoadPlan
from wdh_io.loader._values import ColumnSpec, duplicate_keys_error

__all__ = [
    "Compared",
    "check_duplicates",
    "compared_columns",
    "create_stage",
    "drop_stage",
    "execute",
    "insert_from_stage",
    "may_skip_rows",
    "merge_from_stage",
    "plan_from_stage",
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


def compared_columns(
    info: TableInfo, specs: Sequence[ColumnSpec], keys: Sequence[str], ignore: Sequence[str]
) -> tuple[Compared, ...]:
    """The data columns an upsert compares: the loaded columns other than the keys and
    *ignore*, each with whether it is compared as text (types without ``=``)."""
    skipped = set(keys) | set(ignore)
    return tuple(
        Compared(spec.name, not _has_equality(info.table.c[spec.name].type))
        for spec in specs
        if spec.name not in skipped
    )


def _has_equality(type_: Any) -> bool:
    """Whether PostgreSQL has ``=`` for the type: not ``json``, not types SQLAlchemy does
    not know (``point``, ``xml``…); arrays as their elements. Those are compared by their
    text, which can only call equal values changed, never changed values equal."""
    if isinstance(type_, sa.ARRAY):
        return _has_equality(type_.item_type)
    if isinstance(type_, sa.JSON):
        return isinstance(type_, postgresql.JSONB)
    return not isinstance(type_, sa.types.NullType)


class Compared(NamedTuple):
    """A compared data column."""

    name: str
    as_text: bool


def _row(alias: str, columns: Sequence[Compared]) -> str:
    """``(alias."a", alias."b"::text, …)``: a row of the compared columns."""
    refs = [f"{alias}.{quote(c.name)}" + ("::text" if c.as_text else "") for c in columns]
    return "(" + ", ".join(refs) + ")"


def _key_match(left: str, right: str, keys: Sequence[str]) -> str:
    return " AND ".join(f"{left}.{quote(key)} = {right}.{quote(key)}" for key in keys)


def _merge_statement(
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    keys: Sequence[str],
    compared: Sequence[Compared],
    *,
    skipping: bool,
) -> str:
    """The merge; it returns ``(inserted, updated, unchanged)``, the last ``NULL`` when
    it is the staged rows not returned (no trigger can skip a row)."""
    target = qualified(info.table)
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    key_set = set(keys)
    conflict = ", ".join(quote(key) for key in keys)
    if compared:
        # Every loaded column is written, but only where a data column differs: a row
        # equal to the stored one is not written at all (no new row version).
        assignments = ", ".join(
            f"{quote(spec.name)} = EXCLUDED.{quote(spec.name)}"
            for spec in specs
            if spec.name not in key_set
        )
        action = (
            f"DO UPDATE SET {assignments} "
            f"WHERE {_row('wdh_target', compared)} IS DISTINCT FROM {_row('EXCLUDED', compared)}"
        )
    else:
        action = "DO NOTHING"  # nothing to compare: a stored key is an unchanged row
    insert = (
        f"INSERT INTO {target} AS wdh_target ({columns_sql}) "  # noqa: S608
        f"SELECT {columns_sql} FROM {stage} ON CONFLICT ({conflict}) {action}"
    )
    if info.relkind == "r" and not skipping:
        return (
            f"WITH written AS ({insert} RETURNING (xmax = 0) AS inserted) "  # noqa: S608
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
            "NULL FROM written"
        )
    # Partitioned tables and views have no xmax in RETURNING, and where a BEFORE trigger
    # may skip rows, a row not returned is not necessarily unchanged. The CTE "existing"
    # sees the snapshot the whole statement started from: the stored rows before the
    # insert, each with whether it equals its staged row.
    same = (
        f"{_row('t', compared)} IS NOT DISTINCT FROM {_row('s', compared)}" if compared else "true"
    )
    s_keys = ", ".join(f"s.{quote(key)}" for key in keys)
    return (
        f"WITH existing AS (SELECT {s_keys}, {same} AS same "  # noqa: S608
        f"FROM {stage} s JOIN {target} t ON {_key_match('t', 's', keys)}), "
        f"written AS ({insert} RETURNING {conflict}) "
        "SELECT count(*) FILTER (WHERE e.same IS NULL), "
        "count(*) FILTER (WHERE e.same IS NOT NULL), "
        "(SELECT count(*) FROM existing x WHERE x.same AND NOT EXISTS "
        f"(SELECT 1 FROM written y WHERE {_key_match('y', 'x', keys)})) "
        f"FROM written w LEFT JOIN existing e ON {_key_match('e', 'w', keys)}"
    )


def may_skip_rows(connection: Connection, info: TableInfo, error_context: dict[str, Any]) -> bool:
    """Whether a ``BEFORE`` row trigger on INSERT or UPDATE (on the table or any of its
    partitions) could skip a row; a view is assumed to (its base table's triggers)."""
    if info.relkind not in ("r", "p"):
        return True
    try:
        return bool(
            connection.execute(
                sa.text(
                    "SELECT EXISTS (SELECT 1 FROM pg_trigger g "
                    "WHERE (g.tgrelid = to_regclass(:rel) OR g.tgrelid IN "
                    "(SELECT relid FROM pg_partition_tree(to_regclass(:rel)))) "
                    "AND NOT g.tgisinternal AND g.tgenabled <> 'D' "
                    # tgtype bits: 1 row, 2 before, 4 insert, 16 update
                    "AND (g.tgtype & 3) = 3 AND (g.tgtype & 20) <> 0)"
                ),
                {"rel": qualified(info.table)},
            ).scalar_one()
        )
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def _duplicate_rows(connection: Connection, stage: str, keys: Sequence[str]) -> list[int]:
    """Positions (0-based, ascending) of staged rows whose key another row shares.

    A fresh temporary table that was only inserted into keeps its rows in insertion
    order, so ``ctid`` order is the order the rows were staged in.
    """
    conflict = ", ".join(quote(key) for key in keys)
    result = connection.exec_driver_sql(
        "SELECT line FROM (SELECT row_number() OVER (ORDER BY ctid) - 1 AS line, "  # noqa: S608
        f"count(*) OVER (PARTITION BY {conflict}) AS n FROM {stage}) AS s "
        f"WHERE n > 1 ORDER BY line LIMIT {_MAX_ROWS_LISTED}",
        execution_options=_NO_PARAMETERS,
    )
    return [int(row[0]) for row in result]


def check_duplicates(
    connection: Connection,
    stage: str,
    keys: Sequence[str],
    *,
    error_context: dict[str, Any],
    labels: Callable[[int], Hashable] | None = None,
) -> None:
    """Refuse staged rows that share a key by PostgreSQL's equality (``'ab'`` and
    ``'ab  '`` in a ``char(5)`` key), naming them; *labels* maps a staged position to
    the caller's index label (listed instead of positions when given).

    A unique index on the staging table finds them (building it sorts the keys once,
    cheaper than grouping them) and judges equality as the table's unique index does.
    The merge relies on this: where a repeated key's first row equals the stored row it
    is skipped, and PostgreSQL would then not see the key "affected twice".
    """
    conflict = ", ".join(quote(key) for key in keys)
    index = quote(stage.strip('"') + "_keys")  # our own name: no quote inside
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(
            f"CREATE UNIQUE INDEX {index} ON {stage} ({conflict})",
            execution_options=_NO_PARAMETERS,
        )
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if getattr(exc.orig, "pgcode", None) != errorcodes.UNIQUE_VIOLATION:
            raise translate(exc, dialect=connection.dialect, **error_context) from exc
        try:
            rows = _duplicate_rows(connection, stage, keys)
        except sa.exc.DBAPIError as inner:
            raise translate(inner, dialect=connection.dialect, **error_context) from inner
        # The driver's message quotes the key's values: it stays in the chained error only.
        raise duplicate_keys_error(
            rows,
            keys,
            error_context["table"],
            error_context["schema"],
            labels=None if labels is None else [labels(row) for row in rows],
        ) from exc
    savepoint.commit()
    # Dropped again so that later appends (after a plan) stream without index upkeep.
    execute(connection, f"DROP INDEX {index}", error_context)


def merge_from_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    keys: Sequence[str],
    *,
    compared: Sequence[Compared],
    staged_rows: int,
    error_context: dict[str, Any],
) -> tuple[int, int, int]:
    """Upsert the staged rows (already checked for duplicate keys) into the table;
    return ``(rows_inserted, rows_updated, rows_unchanged)``."""
    skipping = may_skip_rows(connection, info, error_context)
    statement = _merge_statement(info, specs, stage, keys, compared, skipping=skipping)
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
    inserted, updated = int(counts[0]), int(counts[1])
    unchanged = staged_rows - inserted - updated if counts[2] is None else int(counts[2])
    return inserted, updated, unchanged


def drop_stage(connection: Connection, stage: str, error_context: dict[str, Any]) -> None:
    """Drop a staging table before the commit would (frees its space early)."""
    execute(connection, f"DROP TABLE {stage}", error_context)


def plan_from_stage(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    stage: str,
    keys: Sequence[str],
    *,
    compared: Sequence[Compared],
    preview_rows: int,
    error_context: dict[str, Any],
) -> LoadPlan:
    """What :func:`merge_from_stage` would do, read without writing to the table.

    Staged values are compared as staged: a ``BEFORE`` trigger that would change or
    skip a row is not run.
    """
    target = qualified(info.table)
    hit = f"t.{quote(keys[0])} IS NOT NULL"  # a matched key is never NULL
    same = (
        f"{_row('t', compared)} IS NOT DISTINCT FROM {_row('s', compared)}" if compared else "true"
    )
    source = f"{stage} s LEFT JOIN {target} t ON {_key_match('t', 's', keys)}"
    counts = execute(
        connection,
        f"SELECT count(*) FILTER (WHERE NOT {hit}), "  # noqa: S608
        f"count(*) FILTER (WHERE {hit} AND NOT ({same})), "
        f"count(*) FILTER (WHERE {hit} AND {same}) FROM {source}",
        error_context,
    ).one()
    columns = [spec.name for spec in specs]
    selected = ", ".join(f"s.{quote(name)}" for name in columns)

    def preview(condition: str, total: int) -> pd.DataFrame:
        if total == 0 or preview_rows <= 0:
            return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
        # LIMIT without ORDER BY lets PostgreSQL stop early; a staging table that was only
        # inserted into is scanned in the order its rows were staged.
        result = execute(
            connection,
            f"SELECT {selected} FROM {source} WHERE {condition} "  # noqa: S608
            f"LIMIT {int(preview_rows)}",
            error_context,
        )
        return pd.DataFrame([tuple(row) for row in result], columns=columns)

    inserts, updates, unchanged = (int(counts[0]), int(counts[1]), int(counts[2]))
    return LoadPlan(
        rows_insert=inserts,
        rows_update=updates,
        rows_unchanged=unchanged,
        inserts=preview(f"NOT {hit}", inserts),
        updates=preview(f"{hit} AND NOT ({same})", updates),
        unchanged=preview(f"{hit} AND {same}", unchanged),
    )


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
