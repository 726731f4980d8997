"""Driver errors → ``wdh_io.errors``: one translation for the loader, audit and database code.

Classification, first match wins:

* the connection went away while COMMIT ran → :class:`CommitOutcomeUnknownError`
  (deliberately not transient: the rows may be in, so it is never retried blindly);
* the server refused the login for good — unknown database (``3D000``), failed
  authentication (``28P01``, ``28000``), unknown role; psycopg2 reports these at connect
  time without a SQLSTATE, so the server's ``FATAL`` text is matched too →
  :class:`DatabaseAccessError` (permanent, never retried);
* SQLSTATE class ``08``, ``57P01`` to ``57P03`` (terminated, crash, not accepting yet),
  an invalidated connection, a DB-API connection reporting itself closed, a dialect-
  recognised disconnect, or an ``OperationalError`` with no SQLSTATE from a server
  driver → :class:`ConnectionLostError` (transient);
* ``40001`` (serialization failure), ``40P01`` (deadlock), ``55P03`` (lock not
  available: ``lock_timeout`` expired), SQLite's "database is locked" and SQLAlchemy's
  pool timeout (no pooled connection free in time) → :class:`TransientDatabaseError`;
* ``42P01``, ``3F000`` and SQLite's "no such table" → :class:`TableNotFoundError`;
* class ``23`` or an ``IntegrityError`` → :class:`ConstraintViolationError`;
* class ``22``, ``42P10``, ``42703``, ``21000``, a ``DataError`` or a value SQLAlchemy
  could not bind (``StatementError`` without a driver error, e.g. a ``datetime`` inside
  a JSON document) → :class:`DataValidationError`;
* ``57014`` (statement timeout or cancel) and anything else (other SQLite
  ``OperationalError`` included) → :class:`DatabaseError`: not retried.

SQLSTATEs are named with :mod:`psycopg2.errorcodes`.

The message is ``"<action>: <the server's primary message>"``. PostgreSQL's ``DETAIL``
(``Key (id)=(42) already exists``, ``Failing row contains (…)``) and SQLAlchemy's
rendering of the statement and its parameters are left out, so no row value gets in.
Secrets are masked by structure (:func:`scrub`): the engine URL's exact password where
it stands as a password (``user:…@``, ``password=…``), then
:func:`wdh_logging.redact_text` (URL passwords, ``password=…`` pairs); never every
occurrence of the password's text, which would garble messages that merely contain
the same word (a host or port) and reveal the password by doing so.

For COPY errors the row and column come from the ``CONTEXT`` line
(``COPY t, line 5, column c: …``); the quoted value is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg2
import sqlalchemy as sa
from psycopg2 import errorcodes
from sqlalchemy.engine import URL, Dialect

from wdh_io.errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseAccessError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
    TransientDatabaseError,
)
from wdh_logging import redact_text

__all__ = [
    "is_disconnect",
    "primary_message",
    "scrub",
    "secrets_of",
    "translate",
]

#: The server rolled back or refused a lock in time; running again may succeed.
_TRANSIENT = frozenset(
    {
        errorcodes.SERIALIZATION_FAILURE,
        errorcodes.DEADLOCK_DETECTED,
        errorcodes.LOCK_NOT_AVAILABLE,
    }
)
#: Admin shutdown (``pg_terminate_backend``), crash shutdown, not accepting connections yet.
_CONNECTION = frozenset(
    {errorcodes.ADMIN_SHUTDOWN, errorcodes.CRASH_SHUTDOWN, errorcodes.CANNOT_CONNECT_NOW}
)
#: The login was refused for good: unknown database, bad password, unknown role.
_ACCESS = frozenset(
    {
        errorcodes.INVALID_CATALOG_NAME,
        errorcodes.INVALID_PASSWORD,
        errorcodes.INVALID_AUTHORIZATION_SPECIFICATION,
    }
)
#: The same refusals as psycopg2 reports them at connect time (no SQLSTATE), with what
#: the user should check.
_ACCESS_TEXT = (
    (re.compile(r'database ".*" does not exist'), "the database name"),
    (re.compile(r'role ".*" does not exist'), "the user name"),
    (re.compile(r"password authentication failed|no password supplied"), "the user and password"),
    (re.compile(r"no pg_hba\.conf entry"), "the user, database and host (pg_hba.conf)"),
)
_ACCESS_ADVICE = {
    errorcodes.INVALID_CATALOG_NAME: "the database name",
    errorcodes.INVALID_PASSWORD: "the user and password",  # pragma: allowlist secret
    errorcodes.INVALID_AUTHORIZATION_SPECIFICATION: "the user name",
}
_NOT_FOUND = frozenset({errorcodes.UNDEFINED_TABLE, errorcodes.INVALID_SCHEMA_NAME})
#: Data the statement cannot take: bad ON CONFLICT target, unknown column, a row
#: affected twice by one statement.
_DATA = frozenset(
    {
        errorcodes.INVALID_COLUMN_REFERENCE,
        errorcodes.UNDEFINED_COLUMN,
        errorcodes.CARDINALITY_VIOLATION,
    }
)
_CLASS_CONNECTION = errorcodes.CLASS_CONNECTION_EXCEPTION
_CLASS_CONSTRAINT = errorcodes.CLASS_INTEGRITY_CONSTRAINT_VIOLATION
_CLASS_DATA = errorcodes.CLASS_DATA_EXCEPTION
_COPY_CONTEXT = re.compile(r"^COPY .*?, line (\d+)(?:, column (.+?))?(?::|$)", re.MULTILINE)
_MASK = "***"


def secrets_of(url: URL | None) -> tuple[str, ...]:
    """The exact secrets of *url* to mask in messages: its password and a ``?password=``
    query parameter, if any."""
    if url is None:
        return ()
    query = url.query.get("password")
    found = [url.password, *(query if isinstance(query, tuple) else (query,))]
    return tuple(str(secret) for secret in found if secret)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """*text* with passwords masked where they stand as passwords, never elsewhere.

    Masking is by structure, not by search-and-replace: each exact secret given (the
    engine URL's password) is masked only in a password position — a URL's
    ``user:<secret>@`` or a ``password=<secret>`` / ``password: <secret>`` pair, the
    whole secret even when it holds spaces — and then :func:`wdh_logging.redact_text`
    masks the same positions generically. The same text elsewhere is left alone: a
    password ``postgres`` does not turn ``could not translate host name "postgres"``
    into ``"***"`` (which would garble the message and reveal the password too).
    """
    for secret in secrets:
        if secret:
            escaped = re.escape(secret)
            text = re.sub(rf"(?<=:){escaped}(?=@)", _MASK, text)
            text = re.sub(rf"(?i)(\bpassword\s*[=:]\s*['\"]?){escaped}", rf"\g<1>{_MASK}", text)
    return redact_text(text)


def _original(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc


def _sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a (wrapped) driver error, when the server sent one."""
    code = getattr(_original(exc), "pgcode", None)
    return str(code) if code else None


def is_disconnect(
    exc: BaseException, dialect: Dialect | None = None, raw_connection: Any = None
) -> bool:
    """Whether *exc* means the connection is gone.

    True when SQLAlchemy invalidated the connection, the SQLSTATE is class ``08`` or
    ``57P01`` to ``57P03``, the DB-API connection *raw_connection* reports itself closed
    (psycopg2 sets ``closed`` when the socket died, e.g. in the middle of a COPY, whose
    error then has no SQLSTATE), or the dialect recognises a disconnect message.
    """
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate_of(exc)
    if code is not None and (code.startswith(_CLASS_CONNECTION) or code in _CONNECTION):
        return True
    if raw_connection is not None and bool(getattr(raw_connection, "closed", False)):
        return True
    original = _original(exc)
    if dialect is not None and isinstance(original, dialect.loaded_dbapi.Error):
        return bool(dialect.is_disconnect(original, raw_connection, None))
    return False


def primary_message(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The first line of the driver's message (no DETAIL, SQL or parameters), scrubbed."""
    original = _original(exc)
    diag = getattr(original, "diag", None)
    text = getattr(diag, "message_primary", None) if diag is not None else None
    if not text:
        lines = [line for line in str(original).splitlines() if line.strip()]
        text = lines[0] if lines else type(original).__name__
    return scrub(str(text).strip(), secrets)


def _access_advice(exc: BaseException) -> str | None:
    """What to check in ``DATABASE_URL`` when *exc* is a permanent login refusal."""
    code = _sqlstate_of(exc)
    if code in _ACCESS_ADVICE:
        return _ACCESS_ADVICE[code]
    if code is not None or not isinstance(exc, sa.exc.OperationalError | psycopg2.OperationalError):
        return None
    text = str(_original(exc))
    for pattern, advice in _ACCESS_TEXT:
        if pattern.search(text):
            return advice
    return None


def _error_type(  # noqa: PLR0911
    exc: BaseException, code: str | None, disconnected: bool, *, during_commit: bool
) -> type[DatabaseError]:
    if code in _ACCESS or (code is None and _access_advice(exc) is not None):
        return DatabaseAccessError
    if disconnected:
        return CommitOutcomeUnknownError if during_commit else ConnectionLostError
    if isinstance(exc, sa.exc.TimeoutError) or code in _TRANSIENT:
        return TransientDatabaseError
    if code in _NOT_FOUND:
        return TableNotFoundError
    if (code is not None and code.startswith(_CLASS_CONSTRAINT)) or isinstance(
        exc, sa.exc.IntegrityError
    ):
        return ConstraintViolationError
    if (code is not None and (code.startswith(_CLASS_DATA) or code in _DATA)) or isinstance(
        exc, sa.exc.DataError
    ):
        return DataValidationError
    if isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError):
        return DataValidationError  # SQLAlchemy could not bind a value: nothing was sent
    if code is None and isinstance(exc, sa.exc.OperationalError):
        original = _original(exc)
        text = str(original)
        if "database is locked" in text:  # SQLite's busy writer
            return TransientDatabaseError
        if type(original).__module__.startswith("sqlite3"):
            # SQLite has no SQLSTATEs at all: its OperationalError is mostly a plain
            # statement error ("no such table", "no such column"), never a lost server.
            return TableNotFoundError if text.startswith("no such table") else DatabaseError
        # No SQLSTATE from a server driver: it failed before the server answered
        # (connect, socket).
        return CommitOutcomeUnknownError if during_commit else ConnectionLostError
    return DatabaseError


def translate(
    exc: BaseException,
    *,
    action: str = "database error",
    table: str | None = None,
    schema: str | None = None,
    dialect: Dialect | None = None,
    raw_connection: Any = None,
    batch: int | None = None,
    batch_size: int | None = None,
    secrets: Iterable[str] = (),
    during_commit: bool = False,
) -> DatabaseError:
    """The :class:`DatabaseError` subclass for *exc*; the caller raises it ``from exc``.

    *action* leads the message (``"load failed"``, ``"could not record the start of run
    'x'"``). *during_commit*: *exc* came from COMMIT, so a lost connection means the
    outcome is unknown (:class:`CommitOutcomeUnknownError`), not a retryable failure.
    """
    original = _original(exc)
    code = _sqlstate_of(exc)
    diag: Any = getattr(original, "diag", None)
    message = f"{action}: {primary_message(exc, secrets)}"
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
    disconnected = is_disconnect(exc, dialect, raw_connection)
    error_type = _error_type(exc, code, disconnected, during_commit=during_commit)
    if error_type is DatabaseAccessError:
        advice = _access_advice(exc) or "the user, password and database name"
        message = f"{message}; check {advice} in DATABASE_URL"
    elif isinstance(exc, sa.exc.TimeoutError):
        message = f"{action}: no pooled connection became free in time (pool exhausted)"
    elif code == errorcodes.QUERY_CANCELED:
        message = f"{message} (statement_timeout, or cancelled by an administrator)"
    if error_type is CommitOutcomeUnknownError:
        message = (
            f"{action}: connection lost during COMMIT: the rows may or may not have been "
            "committed; check the table before loading them again"
        )
    return error_type(
        message, table=table, schema=schema, column=column, batch=batch, row=row, sqlstate=code
    )
