"""Engine creation: one pooled SQLAlchemy ``Engine`` per database URL (DESIGN decision 1).

The engine never lets a secret out:

* ``hide_parameters=True`` keeps bound values (row data) out of SQLAlchemy's error
  messages and logs;
* ``repr(engine)`` and ``str(engine.url)`` mask the password (SQLAlchemy does it; a test
  checks it); a password given as ``?password=`` is moved into the URL's password field
  first, since SQLAlchemy masks only that field;
* the pool events logged here name the driver, host, port and database, never the URL
  or the password.

Keeping one engine per URL (and disposing it at shutdown) is the caller's job.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine.interfaces import ExceptionContext

from wdh_io.database._url import parse_url, password_in_field
from wdh_logging import get_logger

__all__ = ["create_engine", "describe_url", "describe_url_text"]

_logger = get_logger(__name__)


def _query_host(url: URL) -> str | None:
    """``?host=`` of a libpq-style URL (a socket directory or a host name), if given."""
    value = url.query.get("host")
    if isinstance(value, tuple):  # ?host=a&host=b: libpq tries each in turn
        return ",".join(value) or None
    return value or None


def describe_url(url: URL) -> dict[str, Any]:
    """The log-safe parts of ``url``: driver, host, port and database (no user, no password).

    For structured log fields; :func:`describe_url_text` is the same as one line of text.
    """
    return {
        "driver": url.drivername,
        "host": url.host or _query_host(url),
        "port": url.port,
        "database": url.database,
    }


def describe_url_text(url: URL) -> str:
    """Where ``url`` points, as one line for messages: never the user or the password.

    * ``database 'wdh' on db.example:5432`` (the port only when the URL gives one);
    * ``database 'wdh' via the socket in /run/postgresql`` for ``?host=/run/postgresql``;
    * ``database 'wdh'`` when the URL names no host (SQLite, or libpq's default socket);
    * ``database (default)`` when it names no database either.
    """
    name = repr(url.database) if url.database else "(default)"
    host = url.host or _query_host(url)
    if host is None:
        return f"database {name}"
    if url.host is None and host.startswith("/"):
        return f"database {name} via the socket in {host}"
    port = f":{url.port}" if url.port else ""
    return f"database {name} on {host}{port}"


def create_engine(
    url: str | URL,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    pool_pre_ping: bool = True,
) -> Engine:
    """Create a pooled engine for ``url`` with bound parameters hidden and pool events logged.

    A malformed URL string raises :class:`~wdh_io.errors.DatabaseError` (see
    :func:`~wdh_io.database.parse_url`), never echoing the URL.

    ``pool_size`` and ``max_overflow`` size the ``QueuePool`` of server databases; SQLite
    keeps SQLAlchemy's own pool choice (a file or in-memory database has no server
    connections to size). ``pool_pre_ping`` tests a pooled connection before handing it
    out, so a connection the server dropped is replaced instead of failing the next load.
    """
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    if max_overflow < 0:
        raise ValueError(f"max_overflow must not be negative, got {max_overflow}")
    parsed = password_in_field(parse_url(url))
    kwargs: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": pool_pre_ping}
    if parsed.get_backend_name() != "sqlite":
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = max_overflow
    engine = sa.create_engine(parsed, **kwargs)
    _install_pool_logging(engine)
    return engine


def _install_pool_logging(engine: Engine) -> None:
    """Log pool connects, invalidations and connection errors without the URL or password."""
    where = describe_url(engine.url)

    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_connection: Any, _connection_record: Any) -> None:
        _logger.debug("database.pool.connected", **where)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(
        _dbapi_connection: Any, _connection_record: Any, exception: BaseException | None
    ) -> None:
        _logger.warning(
            "database.pool.invalidated",
            error_type=type(exception).__name__ if exception is not None else None,
            **where,
        )

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # Only connection-level failures are logged here (statement errors are the
        # caller's to report), and only their classification: a driver's message may
        # quote row values, and a connect error's text is not ours to vouch for.
        if context.is_pre_ping:
            return
        during_connect = context.connection is None
        if not (context.is_disconnect or during_connect):
            return
        original = context.original_exception
        _logger.warning(
            "database.connection.failed" if during_connect else "database.connection.lost",
            error_type=type(original).__name__,
            sqlstate=getattr(original, "pgcode", None),
            **where,
        )
