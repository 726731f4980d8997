"""Driver errors → ``wdh_io.errors``: classified by SQLSTATE, located, scrubbed of secrets.

The message is the server's primary message only (PostgreSQL's ``DETAIL`` is left out on
purpose: "Failing row contains (…)" would print a whole row). For COPY errors the row and
column come from the error's ``CONTEXT`` line (``COPY t, line 5, column c: …``); the
quoted value after it is dropped.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from wdh_io.errors import (
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
    TransientDatabaseError,
)

__all__ = ["is_disconnect", "sqlstate_of", "translate"]

#: Serialization failure and deadlock: the server rolled back; running again may succeed.
_TRANSIENT = frozenset({"40001", "40P01"})
#: Server shutting down / crashed / not yet accepting connections.
_CONNECTION = frozenset({"57P01", "57P02", "57P03"})
_NOT_FOUND = frozenset({"42P01", "3F000"})
#: Data the statement cannot take: bad ON CONFLICT target, unknown column.
_DATA = frozenset({"42P10", "42703", "21000"})
_COPY_CONTEXT = re.compile(r"^COPY .*?, line (\d+)(?:, column (.+?))?(?::|$)", re.MULTILINE)


def _original(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a (wrapped) driver error, when the server sent one."""
    code = getattr(_original(exc), "pgcode", None)
    return str(code) if code else None


def is_disconnect(exc: BaseException, dialect: Dialect | None = None) -> bool:
    """Whether ``exc`` means the connection is gone (as SQLAlchemy or the dialect judge it)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = sqlstate_of(exc)
    if code is not None:
        return code.startswith("08") or code in _CONNECTION
    original = _original(exc)
    if dialect is not None and isinstance(original, dialect.loaded_dbapi.Error):
        return bool(dialect.is_disconnect(original, None, None))
    return False


def _primary_message(original: BaseException) -> str:
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return str(primary)
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


def _scrub(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def translate(
    exc: BaseException,
    *,
    table: str | None,
    schema: str | None,
    dialect: Dialect | None = None,
    batch: int | None = None,
    batch_size: int | None = None,
    secrets: tuple[str, ...] = (),
    action: str = "load failed",
) -> DatabaseError:
    """Turn a driver/SQLAlchemy error into the matching :class:`DatabaseError` subclass."""
    original = _original(exc)
    code = sqlstate_of(exc)
    diag: Any = getattr(original, "diag", None)
    message = _scrub(f"{action}: {_primary_message(original)}", secrets)
    column: str | None = getattr(diag, "column_name", None) if diag is not None else None
    row: int | None = None
    context = getattr(diag, "context", None) if diag is not None else None
    if context:
        match = _COPY_CONTEXT.search(str(context))
        if match:
            row = int(match.group(1)) - 1  # COPY lines are 1-based; there is no header
            column = column or match.group(2)
            if batch is None and batch_size:
                batch = row // batch_size + 1
    fields: dict[str, Any] = {
        "table": table,
        "schema": schema,
        "column": column,
        "batch": batch,
        "row": row,
        "sqlstate": code,
    }
    error_type: type[DatabaseError]
    if is_disconnect(exc, dialect):
        error_type = ConnectionLostError
    elif code in _TRANSIENT:
        error_type = TransientDatabaseError
    elif code in _NOT_FOUND:
        error_type = TableNotFoundError
    elif code is not None and code.startswith("23"):
        error_type = ConstraintViolationError
    elif code is not None and (code.startswith("22") or code in _DATA):
        error_type = DataValidationError
    elif isinstance(exc, sa.exc.IntegrityError):
        error_type = ConstraintViolationError
    elif "database is locked" in message:  # SQLite's busy writer: try the transaction again
        error_type = TransientDatabaseError
    else:
        error_type = DatabaseError
    return error_type(message, **fields)
