"""The one transaction and error boundary of ``wdh_io``: connect, begin, commit, roll back,
translate.

:func:`transaction_scope` is used by the loader (one load, a ``LoadTransaction``), the
audit recorder and nothing else writes its own ``begin``/``commit``. It guarantees:

* every driver or SQLAlchemy exception leaving the block is a
  :class:`~wdh_io.errors.DatabaseError` subclass (translated by :mod:`wdh_io._translate`,
  chained with ``from``); ``WdhIoError`` and non-database exceptions pass unchanged;
* any exception leaving the block rolls the transaction back;
* a statement that failed inside the block and whose error the caller swallowed makes
  the normal exit raise instead of committing: PostgreSQL would silently turn that
  COMMIT into a ROLLBACK (and SQLite would commit the statements around the failure);
* a connection lost during COMMIT is
  :class:`~wdh_io.errors.CommitOutcomeUnknownError` (the rows may be in);
* no pooled connection free in time is logged (``database.pool.exhausted``) and raised
  as a transient error;
* on PostgreSQL, ``lock_timeout`` and ``statement_timeout`` are set for the transaction
  only (``set_config(…, true)``): the pooled session keeps its own settings.

Passing ``connection`` joins the caller's open transaction instead: errors are translated
the same way; committing is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg2
import sqlalchemy as sa
from psycopg2 import extensions as pg_extensions
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.engine.interfaces import ExceptionContext

from wdh_io._translate import translate
from wdh_io.errors import DatabaseError
from wdh_logging import get_logger

__all__ = ["DEFAULT_TIMEOUTS", "Timeouts", "transaction_scope"]

_logger = get_logger(__name__)

#: Key in ``Connection.info`` (the pooled DB-API connection's dict): a statement failed
#: since the current transaction began.
_FAILED = "wdh_statement_failed"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """PostgreSQL ``lock_timeout`` / ``statement_timeout`` in milliseconds; 0 = no limit.

    A lock not granted within ``lock_ms`` fails the statement with SQLSTATE 55P03, which
    is transient (retried); a statement running longer than ``statement_ms`` is cancelled
    with 57014, which is not (it would only time out again).
    """

    lock_ms: int = 60_000
    statement_ms: int = 3_600_000

    def __post_init__(self) -> None:
        for name, value in (
            ("lock_timeout_ms", self.lock_ms),
            ("statement_timeout_ms", self.statement_ms),
        ):
            if value < 0 or type(value) is not int:
                raise ValueError(f"{name} must be a non-negative integer (0 = none), got {value!r}")


#: One minute for a lock, one hour for a statement (the settings' defaults too).
DEFAULT_TIMEOUTS = Timeouts()


def _mark_failed(context: ExceptionContext) -> None:
    connection = context.connection
    if connection is not None and not context.is_pre_ping:
        connection.info[_FAILED] = True


def _watch(engine: Engine) -> None:
    """Install the listener that notes failed statements (once per engine)."""
    if not event.contains(engine, "handle_error", _mark_failed):
        event.listen(engine, "handle_error", _mark_failed)


def _swallowed_failure(connection: Connection) -> bool:
    """Whether a statement failed in the current transaction although nothing was raised.

    On PostgreSQL the driver's transaction status says it exactly (``INERROR``: COMMIT
    would roll back), and it also sees failures SQLAlchemy never saw (a raw cursor on
    ``tx.connection``); a failure rolled back to a savepoint is correctly not one. Other
    databases keep a transaction usable after a failed statement, so there a failed
    statement noted by the ``handle_error`` listener counts.
    """
    raw: Any = connection.connection.driver_connection
    if isinstance(raw, pg_extensions.connection):
        return bool(raw.get_transaction_status() == pg_extensions.TRANSACTION_STATUS_INERROR)
    return bool(connection.info.get(_FAILED))


def _set_timeouts(connection: Connection, timeouts: Timeouts) -> None:
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        sa.text(
            "SELECT set_config('lock_timeout', :lock, true), "
            "set_config('statement_timeout', :statement, true)"
        ),
        {"lock": str(timeouts.lock_ms), "statement": str(timeouts.statement_ms)},
    )


def _rollback_quietly(transaction: RootTransaction) -> None:
    """Roll back; a dead connection has nothing left to roll back, so errors are moot."""
    try:
        if transaction.is_active:
            transaction.rollback()
    except (sa.exc.SQLAlchemyError, psycopg2.Error):
        _logger.debug("database.rollback.failed")


def _connect(engine: Engine, where: dict[str, Any]) -> Connection:
    try:
        return engine.connect()
    except sa.exc.TimeoutError as exc:
        pool: Any = engine.pool
        _logger.warning(
            "database.pool.exhausted",
            pool_size=getattr(pool, "size", lambda: None)(),
            checked_out=getattr(pool, "checkedout", lambda: None)(),
            timeout_s=getattr(pool, "_timeout", None),
        )
        raise translate(exc, dialect=engine.dialect, **where) from exc
    except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:
        raise translate(exc, dialect=engine.dialect, **where) from exc


@contextmanager
def transaction_scope(
    engine: Engine,
    *,
    action: str,
    table: str | None = None,
    schema: str | None = None,
    secrets: Iterable[str] = (),
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    connection: Connection | None = None,
) -> Iterator[Connection]:
    """A connection inside one transaction that commits when the block ends normally.

    *action* leads translated messages (``"load failed"``). See the module docstring for
    the guarantees.
    """
    where: dict[str, Any] = {
        "action": action,
        "table": table,
        "schema": schema,
        "secrets": tuple(secrets),
    }
    if connection is not None:
        try:
            yield connection
        except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:
            raise translate(exc, dialect=engine.dialect, **where) from exc
        return
    _watch(engine)
    own = _connect(engine, where)
    try:
        try:
            transaction = own.begin()
            own.info[_FAILED] = False
            _set_timeouts(own, timeouts)
        except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:
            raise translate(exc, dialect=engine.dialect, **where) from exc
        try:
            yield own
        except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:
            _rollback_quietly(transaction)
            raise translate(exc, dialect=engine.dialect, **where) from exc
        except BaseException:
            _rollback_quietly(transaction)
            raise
        if _swallowed_failure(own):
            _rollback_quietly(transaction)
            raise DatabaseError(
                f"{action}: a statement in the transaction failed and its error was "
                "caught without rolling back; rolled back, nothing was committed",
                table=table,
                schema=schema,
            )
        try:
            transaction.commit()
        except (sa.exc.SQLAlchemyError, psycopg2.Error) as exc:
            _rollback_quietly(transaction)
            raise translate(exc, dialect=engine.dialect, during_commit=True, **where) from exc
    finally:
        own.close()
