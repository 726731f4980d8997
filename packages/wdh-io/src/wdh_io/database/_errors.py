"""Translate SQLAlchemy/driver exceptions into ``wdh_io`` errors without leaking data.

Only the driver's *primary* message and the SQLSTATE are kept: PostgreSQL's DETAIL
line carries row values (``Key (id)=(42) already exists``) and SQLAlchemy's rendering
carries the statement and its parameters, so neither goes into the message. Any URL
password that still shows up in the text is masked.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from wdh_io.errors import (
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
    TransientDatabaseError,
)
from wdh_logging import redact_text

__all__ = ["primary_message", "translate_database_error"]

_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})
_UNDEFINED_OBJECT_SQLSTATES = frozenset({"42P01", "3F000"})


def primary_message(exc: BaseException) -> str:
    """The first line of the driver's message (no DETAIL, SQL or parameters), redacted."""
    orig = getattr(exc, "orig", None)
    diag = getattr(orig, "diag", None)
    text = getattr(diag, "message_primary", None) if diag is not None else None
    if not text:
        source = orig if orig is not None else exc
        lines = [line for line in str(source).splitlines() if line.strip()]
        text = lines[0] if lines else type(source).__name__
    return redact_text(text.strip())


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(getattr(exc, "orig", None), "pgcode", None)
    return code if isinstance(code, str) else None


def translate_database_error(
    exc: sa_exc.SQLAlchemyError,
    *,
    action: str,
    table: str | None = None,
    schema: str | None = None,
) -> DatabaseError:
    """Build the ``DatabaseError`` subclass that fits *exc*; the caller raises it ``from exc``.

    *action* says what was being done (``"record the start of run 'x'"``) and leads
    the message.
    """
    sqlstate = _sqlstate(exc)
    message = f"could not {action}: {primary_message(exc)}"
    kind: type[DatabaseError] = DatabaseError
    invalidated = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    if invalidated or (sqlstate or "").startswith("08") or sqlstate == "57P01":
        kind = ConnectionLostError
    elif sqlstate in _TRANSIENT_SQLSTATES:
        kind = TransientDatabaseError
    elif sqlstate in _UNDEFINED_OBJECT_SQLSTATES:
        kind = TableNotFoundError
    elif isinstance(exc, sa_exc.IntegrityError) or (sqlstate or "").startswith("23"):
        kind = ConstraintViolationError
    elif isinstance(exc, sa_exc.DataError) or (sqlstate or "").startswith("22"):
        kind = DataValidationError
    elif isinstance(exc, sa_exc.OperationalError) and sqlstate is None:
        # No SQLSTATE: the driver failed before the server answered (connect, socket).
        kind = ConnectionLostError
    return kind(message, table=table, schema=schema, sqlstate=sqlstate)
