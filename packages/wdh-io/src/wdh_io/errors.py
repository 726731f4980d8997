"""Errors raised by wdh_io: one root, typed keyword-only context, messages a user can act on.

Every error that leaves ``wdh_io`` is a :class:`WdhIoError`. Driver exceptions
(psycopg2, SQLAlchemy) are translated at the adapter boundary with
``raise … from exc`` so callers never need to import a driver to catch a failure.

Messages name *what* and *where* (table, schema, column, batch, row, file, line) and
never contain a password, a database URL or the values of rows other than the one
at fault.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = [
    "CommitOutcomeUnknownError",
    "ConnectionLostError",
    "ConstraintViolationError",
    "DataValidationError",
    "DatabaseAccessError",
    "DatabaseError",
    "EmbeddedDatabaseError",
    "MigrationError",
    "ReaderError",
    "TableNotFoundError",
    "TransientDatabaseError",
    "WdhIoError",
]


class WdhIoError(Exception):
    """Root of every error raised by ``wdh_io``."""


class DatabaseError(WdhIoError):
    """A database operation failed; nothing of the failed transaction was committed.

    The context fields say where it happened; ``str(err)`` joins the message with them,
    e.g. ``value too long for column | table: public.sample_data | column: name | batch: 3``.
    ``row`` is the 0-based position in the DataFrame given to the loader; ``index`` is
    that row's index label when it differs from the position (a pipeline's output keeps
    its input row numbers as labels, so ``index`` is the row the pipeline reported).
    """

    def __init__(
        self,
        message: str,
        *,
        table: str | None = None,
        schema: str | None = None,
        column: str | None = None,
        batch: int | None = None,
        row: int | None = None,
        index: Hashable | None = None,
        sqlstate: str | None = None,
    ) -> None:
        self.message = message
        self.table = table
        self.schema = schema
        self.column = column
        self.batch = batch
        self.row = row
        self.index = index
        self.sqlstate = sqlstate
        super().__init__(self._render())

    def name_index_label(self, label: Hashable) -> None:
        """Record the index label of ``row`` when it is not the position itself.

        Called by the loader as the error leaves ``load_dataframe``; the message
        (``str(err)``) is re-rendered with ``index: <label>``.
        """
        if self.row is None or self.index is not None or label == self.row:
            return
        self.index = label
        self.args = (self._render(),)

    def _render(self) -> str:
        parts = [self.message]
        if self.table is not None:
            qualified = f"{self.schema}.{self.table}" if self.schema else self.table
            parts.append(f"table: {qualified}")
        if self.column is not None:
            parts.append(f"column: {self.column}")
        if self.batch is not None:
            parts.append(f"batch: {self.batch}")
        if self.row is not None:
            parts.append(f"row: {self.row}")
        if self.index is not None:
            parts.append(f"index: {self.index!r}")
        if self.sqlstate is not None:
            parts.append(f"sqlstate: {self.sqlstate}")
        return " | ".join(parts)


class TableNotFoundError(DatabaseError):
    """The target table or schema does not exist (or is not visible to this role)."""


class DataValidationError(DatabaseError):
    """The data cannot be stored as given: missing or unmatched columns, a NUL byte,
    infinity, a value too large for its column, duplicate upsert keys, an empty key.

    The *load-time* validation error of ``wdh_io`` (a :class:`DatabaseError`, raised by
    the loader and the audit recorder). It is unrelated to
    ``wdh_domain.errors.DataValidationError``, the row-validation error of the domain
    pipelines, despite the shared name: catch each from its own module.
    """


class DatabaseAccessError(DatabaseError):
    """The database refused the connection for good: the database does not exist, the
    role does not exist, or the password was wrong.

    Permanent, so never retried (deliberately not a :class:`TransientDatabaseError`): the
    message says what to check in ``DATABASE_URL`` (database name, user, password) and
    names the database and host, never the password.
    """


class ConstraintViolationError(DatabaseError):
    """The database rejected the rows: unique, foreign-key, not-null or check constraint."""


class TransientDatabaseError(DatabaseError):
    """A failure that may succeed when the whole transaction is tried again
    (serialization failure, deadlock, a lock not granted within ``lock_timeout``, no
    pooled connection free in time, server shutting down)."""


class ConnectionLostError(TransientDatabaseError):
    """The connection was lost or could not be opened."""


class CommitOutcomeUnknownError(DatabaseError):
    """The connection failed while COMMIT was in flight: the transaction may or may not
    have been committed. Deliberately *not* transient, so it is never retried blindly;
    check the target table before loading the same rows again."""


class MigrationError(DatabaseError):
    """An Alembic migration could not be applied or reverted."""


class EmbeddedDatabaseError(DatabaseError):
    """The embedded development PostgreSQL could not be started or reached."""


class ReaderError(WdhIoError):
    """An input file cannot be read as asked: missing, undecodable, malformed.

    ``str(err)`` names the file and, where known, the line:
    ``expected 5 fields, saw 7 | file: data/in.csv | line: 12``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        parts = [message]
        if path is not None:
            parts.append(f"file: {path}")
        if line is not None:
            parts.append(f"line: {line}")
        if column is not None:
            parts.append(f"column: {column}")
        super().__init__(" | ".join(parts))
