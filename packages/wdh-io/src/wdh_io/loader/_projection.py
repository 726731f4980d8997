"""Target tables by reflection (cached per table) and column projection onto them.

Projection keeps the frame's columns that exist in the table, in the table's column
order, and drops the rest (logging ``column_projection.many_removed`` when more than five
go). A frame with no matching column, duplicate column names, or an upsert key that is
missing from the frame or the table is rejected before any row is written.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.errors import DatabaseError, DataValidationError, TableNotFoundError
from wdh_io.loader._values import ColumnSpec, column_spec
from wdh_logging import get_logger

__all__ = ["Catalog", "TableInfo", "project"]

_logger = get_logger(__name__)
_MANY_REMOVED = 5


def _db_schema(dialect_name: str, schema: str | None) -> str | None:
    """The schema to reflect: SQLite has only ``main``, so ``public`` means the default."""
    if dialect_name == "sqlite" and schema in (None, "public", "main"):
        return None
    return schema


@dataclass(frozen=True)
class TableInfo:
    """A reflected table and its columns, in table order."""

    table: sa.Table
    columns: tuple[ColumnSpec, ...]
    #: PostgreSQL's ``pg_class.relkind``: ``r`` table, ``p`` partitioned table, ``v``
    #: view, ``f`` foreign table…; ``r`` on other databases.
    relkind: str = "r"

    @property
    def column_names(self) -> list[str]:
        return [spec.name for spec in self.columns]


class Catalog:
    """Reflects tables once and remembers them (thread-safe); ``clear()`` forgets them.

    *secrets* (the engine URL's password) are masked in reflection errors, as in every
    other error the loader raises.
    """

    def __init__(self, *, secrets: Sequence[str] = ()) -> None:
        self._tables: dict[tuple[str | None, str], TableInfo] = {}
        self._lock = threading.Lock()
        self._secrets = tuple(secrets)

    def clear(self) -> None:
        """Forget every reflected table (call after DDL changed a table this loader used)."""
        with self._lock:
            self._tables.clear()

    def describe(self, connection: Connection, table: str, schema: str | None) -> TableInfo:
        """The reflected ``schema.table``; :class:`TableNotFoundError` when it does not exist."""
        dialect_name = connection.dialect.name
        target_schema = _db_schema(dialect_name, schema)
        key = (target_schema, table)
        with self._lock:
            cached = self._tables.get(key)
        if cached is not None:
            return cached
        try:
            reflected = sa.Table(
                table,
                sa.MetaData(),
                schema=target_schema,
                autoload_with=connection,
                resolve_fks=False,
            )
        except sa.exc.NoSuchTableError as exc:
            inspector = sa.inspect(connection)
            if target_schema is not None and not inspector.has_schema(target_schema):
                raise TableNotFoundError(
                    f"schema {target_schema!r} does not exist", table=table, schema=schema
                ) from exc
            raise TableNotFoundError(
                f"table {table!r} does not exist", table=table, schema=schema
            ) from exc
        except sa.exc.DBAPIError as exc:
            raise self._reflection_error(exc, connection, table, schema) from exc
        info = TableInfo(
            table=reflected,
            columns=tuple(column_spec(column, dialect_name) for column in reflected.columns),
            relkind=self._relkind(connection, table, target_schema),
        )
        with self._lock:
            self._tables[key] = info
        return info

    def _relkind(self, connection: Connection, table: str, schema: str | None) -> str:
        if connection.dialect.name != "postgresql":
            return "r"
        try:
            kind = connection.execute(
                sa.text(
                    "SELECT c.relkind FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relname = :table AND n.nspname = coalesce(:schema, current_schema())"
                ),
                {"table": table, "schema": schema},
            ).scalar()
        except sa.exc.DBAPIError as exc:
            raise self._reflection_error(exc, connection, table, schema) from exc
        return str(kind) if kind is not None else "r"

    def _reflection_error(
        self, exc: sa.exc.DBAPIError, connection: Connection, table: str, schema: str | None
    ) -> DatabaseError:
        return translate(
            exc,
            table=table,
            schema=schema,
            dialect=connection.dialect,
            secrets=self._secrets,
            action="reflection failed",
        )


def project(
    frame: pd.DataFrame,
    info: TableInfo,
    *,
    table: str,
    schema: str | None,
    upsert_keys: Sequence[str] = (),
) -> tuple[pd.DataFrame, tuple[ColumnSpec, ...], tuple[str, ...]]:
    """Keep the table's columns present in ``frame``; return (frame, their specs, dropped)."""
    names = [str(name) for name in frame.columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataValidationError(
            f"the DataFrame has duplicate column names: {', '.join(duplicates)}",
            table=table,
            schema=schema,
            column=duplicates[0],
        )
    present = set(frame.columns)
    specs = tuple(spec for spec in info.columns if spec.name in present)
    allowed = {spec.name for spec in info.columns}
    dropped = tuple(name for name in names if name not in allowed)
    for key in upsert_keys:
        if key not in allowed:
            raise DataValidationError(
                "upsert key is not a column of the table", table=table, schema=schema, column=key
            )
        if key not in present:
            raise DataValidationError(
                "upsert key column is missing from the DataFrame",
                table=table,
                schema=schema,
                column=key,
            )
    if not specs:
        raise DataValidationError(
            "no column of the DataFrame matches the table "
            f"(DataFrame: {', '.join(names) or 'none'}; "
            f"table: {', '.join(info.column_names)})",
            table=table,
            schema=schema,
        )
    if len(dropped) > _MANY_REMOVED:
        _logger.warning(
            "column_projection.many_removed",
            table=table,
            schema=schema,
            removed_count=len(dropped),
            removed=list(dropped),
        )
    order = [spec.name for spec in specs]
    projected = frame if names == order else frame[order]
    return projected, specs, dropped
