"""``WarehouseLoader``: all-or-nothing DataFrame loads into PostgreSQL (or SQLite).

One call of :meth:`WarehouseLoader.load_dataframe` is one transaction: reflect the table
(cached), project the frame onto its columns, validate and normalise the values, write
them by ``COPY`` (PostgreSQL, psycopg2) or by batched Core ``INSERT`` (any dialect), and
commit — or roll everything back and raise one :class:`~wdh_io.errors.DatabaseError`.
Connecting, the transaction, its timeouts and the error translation are the package's
one boundary (:mod:`wdh_io._boundary`). Transient failures
(:class:`~wdh_io.errors.TransientDatabaseError`: connection lost, serialization failure,
deadlock, lock timeout, pool exhausted, as classified by :mod:`wdh_io._translate`) re-run
the whole transaction with backoff. Nothing else is retried: not data or constraint
errors, not a refused login (:class:`~wdh_io.errors.DatabaseAccessError`), not a
statement timeout, and not a failure *during* COMMIT, which raises
:class:`~wdh_io.errors.CommitOutcomeUnknownError` because the rows may already be in and
running the load again could write them twice.

Several loads (and the audit row, through ``tx.connection``) share one transaction with
``with loader.transaction() as tx:``; ``loader.run_in_transaction(func)`` does the same
and retries ``func`` as a whole on transient errors.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Literal, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from structlog.stdlib import BoundLogger

from wdh_domain.pipelines import RetryConfig, execute_with_retry
from wdh_io._boundary import DEFAULT_TIMEOUTS, Timeouts, transaction_scope
from wdh_io._translate import secrets_of, translate
from wdh_io.database._engine import create_engine
from wdh_io.database._url import mask_url
from wdh_io.errors import DatabaseError, TransientDatabaseError, WdhIoError
from wdh_io.loader._copy import supports_copy
from wdh_io.loader._generic import supports_upsert
from wdh_io.loader._loading import Loading, LoadSettings, name_index_label
from wdh_io.loader._projection import Catalog, project
from wdh_io.loader._result import LoadMethod, LoadPlan, LoadResult
from wdh_io.loader._session import transaction_now
from wdh_io.loader._staged import StagedLoad
from wdh_logging import get_logger

__all__ = ["LoadTransaction", "WarehouseLoader"]

T = TypeVar("T")

_logger = get_logger(__name__)


def _is_transient(exc: BaseException) -> bool:
    """Whether running the whole transaction again may succeed (the only retried case)."""
    return isinstance(exc, TransientDatabaseError)


class LoadTransaction:
    """Loads that commit or roll back together; made by :meth:`WarehouseLoader.transaction`.

    ``connection`` is the transaction's SQLAlchemy connection, for writing other rows
    (an audit record) in the same transaction. After a failed load the transaction can
    only roll back: leaving the ``with`` block normally then raises instead of committing.
    """

    def __init__(self, loader: WarehouseLoader, connection: Connection) -> None:
        self._loader = loader
        self.connection = connection
        self.failed: BaseException | None = None

    def _refuse_if_failed(self, table: str, schema: str) -> None:
        if self.failed is not None:
            raise DatabaseError(
                "an earlier load in this transaction failed; it can only roll back",
                table=table,
                schema=schema,
            )

    def timestamp(self) -> pd.Timestamp:
        """When this transaction began, in UTC: PostgreSQL's ``now()``, the same in
        every statement of the transaction (elsewhere, the time of this call).

        Stamp a load's rows with it (``loaded_at``): a ``timestamptz`` column that
        defaults to ``now()`` and gets this value in every row is left to its default
        by COPY, which stores the same instant without a timestamp to parse per row.
        """
        if self.connection.dialect.name != "postgresql":
            return pd.Timestamp.now(tz="UTC")
        try:
            return transaction_now(self.connection)
        except sa.exc.DBAPIError as exc:
            self.failed = exc
            raise translate(
                exc,
                action="cannot read the transaction's time",
                dialect=self.connection.dialect,
                secrets=self._loader._secrets,
            ) from exc

    def staged_load(
        self,
        table: str,
        *,
        schema: str = "public",
        upsert_keys: Sequence[str] | None = None,
        compare_ignore: Sequence[str] = ("loaded_at",),
        plan_only: bool = False,
    ) -> StagedLoad:
        """A load fed chunk by chunk (:meth:`StagedLoad.append`) and written once
        (:meth:`StagedLoad.merge`) inside this transaction; see :class:`StagedLoad`.
        Upserts need PostgreSQL. ``plan_only``: the load is only to be planned
        (:meth:`StagedLoad.plan`, a dry run): an upsert's rows are staged even when the
        table is empty, so the table is neither written nor locked."""
        self._refuse_if_failed(table, schema)
        loading = self._loader._loading(
            self.connection,
            table,
            schema,
            upsert_keys,
            compare_ignore,
            name_labels=True,
            straight=not plan_only,
        )
        if upsert_keys and self.connection.dialect.name != "postgresql":
            raise DatabaseError(
                f"staged upserts need PostgreSQL, not {self.connection.dialect.name}",
                table=table,
                schema=schema,
            )
        return StagedLoad(self, loading)

    def load_dataframe(
        self,
        df: pd.DataFrame,
        table: str,
        schema: str = "public",
        upsert_keys: Sequence[str] | None = None,
        *,
        compare_ignore: Sequence[str] = ("loaded_at",),
    ) -> LoadResult:
        """Load ``df`` inside this transaction (see :meth:`WarehouseLoader.load_dataframe`)."""
        self._refuse_if_failed(table, schema)
        log = _logger.bind(table=table, schema=schema, in_transaction=True)
        try:
            return self._loader._logged_load(
                log,
                df,
                lambda: self._loader._load_on(
                    self.connection, df, table, schema, upsert_keys, compare_ignore=compare_ignore
                ),
                upsert=bool(upsert_keys),
            )
        except BaseException as exc:
            # Whatever the error and whether or not the caller catches it, the
            # transaction holds part of a failed load: it can only roll back.
            self.failed = exc
            raise


class WarehouseLoader:
    """Transactional DataFrame loading over one pooled SQLAlchemy engine.

    ``engine_or_url``: an :class:`~sqlalchemy.engine.Engine` (shared, never disposed by
    the loader) or a URL (the loader creates its own engine of ``pool_size`` connections
    and disposes it in :meth:`dispose` / on leaving ``with loader:``).
    ``batch_size``: rows per INSERT batch on the generic path; on both paths the unit in
    which errors and ``LoadResult.batches`` are counted.
    ``retry``: backoff for transient failures (its ``retriable_errors`` is ignored: only
    :class:`~wdh_io.errors.TransientDatabaseError` is ever retried).
    ``method``: ``"copy"`` (PostgreSQL with psycopg2 only), ``"generic"`` or ``"auto"``
    (COPY where available).
    ``lock_timeout_ms`` / ``statement_timeout_ms``: PostgreSQL's ``lock_timeout`` and
    ``statement_timeout`` for this loader's transactions (0 = no limit; defaults: one
    minute, one hour, as ``DB_LOCK_TIMEOUT_MS`` / ``DB_STATEMENT_TIMEOUT_MS``). A lock
    timeout is transient (retried), a statement timeout is not.
    """

    def __init__(
        self,
        engine_or_url: Engine | str | URL,
        *,
        pool_size: int = 10,
        batch_size: int = 1000,
        retry: RetryConfig | None = None,
        method: Literal["auto", "copy", "generic"] = "auto",
        sleep: Callable[[float], None] = time.sleep,
        lock_timeout_ms: int = DEFAULT_TIMEOUTS.lock_ms,
        statement_timeout_ms: int = DEFAULT_TIMEOUTS.statement_ms,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._timeouts = Timeouts(lock_ms=lock_timeout_ms, statement_ms=statement_timeout_ms)
        if isinstance(engine_or_url, Engine):
            self._engine = engine_or_url
            self._owns_engine = False
        else:
            self._engine = create_engine(engine_or_url, pool_size=pool_size)
            self._owns_engine = True
        dialect = self._engine.dialect
        resolved: LoadMethod
        if method == "auto":
            resolved = "copy" if supports_copy(dialect) else "generic"
        elif method == "copy":
            if not supports_copy(dialect):
                raise ValueError(
                    f"method='copy' needs PostgreSQL through psycopg2, not {dialect.name}"
                    f"+{dialect.driver}"
                )
            resolved = "copy"
        elif method == "generic":
            resolved = "generic"
        else:
            raise ValueError(f"method must be 'auto', 'copy' or 'generic', not {method!r}")
        self._method: LoadMethod = resolved
        self._batch_size = batch_size
        self._retry = dataclasses.replace(retry or RetryConfig(), retriable_errors=frozenset())
        self._sleep = sleep
        self._secrets = secrets_of(self._engine.url)
        self._catalog = Catalog(secrets=self._secrets)

    # ------------------------------------------------------------------ properties

    @property
    def engine(self) -> Engine:
        """The engine the loader writes through."""
        return self._engine

    @property
    def method(self) -> LoadMethod:
        """The load path in use: ``"copy"`` or ``"generic"``."""
        return self._method

    @property
    def lock_timeout_ms(self) -> int:
        """PostgreSQL ``lock_timeout`` of this loader's transactions (0 = none)."""
        return self._timeouts.lock_ms

    @property
    def statement_timeout_ms(self) -> int:
        """PostgreSQL ``statement_timeout`` of this loader's transactions (0 = none)."""
        return self._timeouts.statement_ms

    @property
    def batch_size(self) -> int:
        """Rows per batch."""
        return self._batch_size

    def __repr__(self) -> str:
        return (
            f"WarehouseLoader(url={mask_url(self._engine.url)!r}, method={self._method!r}, "
            f"batch_size={self._batch_size})"
        )

    # ------------------------------------------------------------------ lifecycle

    def dispose(self) -> None:
        """Close the pool if the loader created the engine; forget reflected tables."""
        self._catalog.clear()
        if self._owns_engine:
            self._engine.dispose()

    def __enter__(self) -> WarehouseLoader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.dispose()

    def clear_cache(self) -> None:
        """Forget reflected tables (after a migration changed a table this loader used)."""
        self._catalog.clear()

    # ------------------------------------------------------------------ projection

    def get_allowed_columns(self, table: str, schema: str = "public") -> list[str]:
        """The table's column names, in table order, by (cached) reflection.

        Raises :class:`~wdh_io.errors.TableNotFoundError` for an unknown table or schema.
        """
        return self._with_connection(
            lambda conn: self._catalog.describe(conn, table, schema).column_names
        )

    def project_columns(self, df: pd.DataFrame, table: str, schema: str = "public") -> pd.DataFrame:
        """``df`` restricted to the table's columns (in table order).

        Logs ``column_projection.many_removed`` when more than five columns are dropped;
        raises :class:`~wdh_io.errors.DataValidationError` when none matches.
        """
        info = self._with_connection(lambda conn: self._catalog.describe(conn, table, schema))
        projected, _, _ = project(df, info, table=table, schema=schema)
        return projected

    # ------------------------------------------------------------------ loading

    def load_dataframe(
        self,
        df: pd.DataFrame,
        table: str,
        schema: str = "public",
        upsert_keys: Sequence[str] | None = None,
        *,
        compare_ignore: Sequence[str] = ("loaded_at",),
    ) -> LoadResult:
        """Write ``df`` into ``schema.table`` in one transaction; all rows or none.

        Without ``upsert_keys`` the rows are appended. With them, rows whose key exists
        are updated (every other loaded column is overwritten) and the rest inserted,
        except rows whose data columns — the loaded columns other than the keys and
        ``compare_ignore`` — equal the stored row's (``IS NOT DISTINCT FROM``): those are
        not written at all and counted in ``rows_unchanged``;
        the keys need a unique constraint, must be present and non-NULL in every row,
        and must not repeat within ``df`` (rejected, naming the rows, whatever the batch
        boundaries).

        Empty frames: the table must exist in every case. A frame with no rows and no
        columns (``pd.DataFrame()``) writes nothing and returns zero counts. A frame with
        no rows but columns is projected and checked like any other (at least one
        column must match the table; upsert keys must be present), then writes nothing
        and returns zero counts. A frame with rows but no column matching the table
        raises :class:`~wdh_io.errors.DataValidationError`.

        Raises a :class:`~wdh_io.errors.DatabaseError` subclass; nothing of the call is
        committed. Its ``table`` and ``schema`` are always set, and ``column``, ``batch``
        and ``row`` wherever the failure can be placed: checks made before writing name
        the column and the first bad row; the generic path names the batch (and the
        column when the server does); COPY errors name the row, its batch and column.
        One gap: on the COPY upsert path a CHECK, foreign-key or unique violation (on a
        constraint other than the upsert keys') is raised by the single ``INSERT …
        SELECT`` from the staging table, which no row or batch can be attributed to, so
        ``row`` and ``batch`` are ``None`` there (the constraint is in the message) --
        except into a table never written to or truncated, where the upsert can only
        insert and the rows are copied straight into the table (COPY errors, located).
        """
        log = _logger.bind(table=table, schema=schema)

        def attempt() -> LoadResult:
            return self._in_transaction(
                lambda conn: self._load_on(
                    conn, df, table, schema, upsert_keys, compare_ignore=compare_ignore
                ),
                table=table,
                schema=schema,
            )

        return self._logged_load(
            log,
            df,
            lambda: self._with_retry(attempt, operation=f"load {schema}.{table}", log=log),
            upsert=bool(upsert_keys),
        )

    def plan_dataframe(
        self,
        df: pd.DataFrame,
        table: str,
        *,
        schema: str = "public",
        upsert_keys: Sequence[str] | None = None,
        preview_rows: int = 10,
        compare_ignore: Sequence[str] = ("loaded_at",),
    ) -> LoadPlan:
        """What ``load_dataframe(df, table, schema=schema, upsert_keys=upsert_keys)`` would
        do, found in a transaction that is rolled back: nothing is written.

        The frame is checked and staged as a load would (the same refusals), then the
        staged rows are compared with the stored ones; see :meth:`StagedLoad.plan`.
        Upserts need PostgreSQL.
        """
        log = _logger.bind(table=table, schema=schema, dry_run=True)

        def attempt() -> LoadPlan:
            with self._scope(action="dry run failed", table=table, schema=schema) as conn:
                # Undo everything below (on an error the whole transaction rolls back).
                savepoint = conn.begin_nested()
                loading = self._loading(
                    conn,
                    table,
                    schema,
                    upsert_keys,
                    compare_ignore,
                    name_labels=False,
                    straight=False,
                )
                loading.append(df)
                plan = loading.plan(preview_rows=preview_rows)
                savepoint.rollback()
                return plan

        try:
            plan = self._with_retry(attempt, operation=f"plan {schema}.{table}", log=log)
        except DatabaseError as exc:
            name_index_label(exc, df)
            raise
        log.info(
            "database.load.planned",
            rows_insert=plan.rows_insert,
            rows_update=plan.rows_update,
            rows_unchanged=plan.rows_unchanged,
        )
        return plan

    def _logged_load(
        self, log: BoundLogger, df: pd.DataFrame, load: Callable[[], LoadResult], *, upsert: bool
    ) -> LoadResult:
        """Run *load* between its ``database.load.started`` and ``completed``/``failed``
        events; the result's ``duration_ms`` covers the whole call, retries included, and
        an error names the failing row's index label (see :func:`name_index_label`)."""
        started = time.perf_counter()
        log.info("database.load.started", rows=len(df), method=self._method, upsert=upsert)
        try:
            result = load()
        except DatabaseError as exc:
            name_index_label(exc, df)
            self._log_failure(log, exc, started, rows=len(df))
            raise
        result = dataclasses.replace(result, duration_ms=_elapsed_ms(started))
        self._log_success(log, result)
        return result

    @contextmanager
    def transaction(self) -> Iterator[LoadTransaction]:
        """One transaction for several loads (and any statement on ``tx.connection``).

        Commits when the block ends normally, rolls back when it raises. It never commits
        part of a failed load and never reports a rollback as success: a load in it that
        failed (even if the caller caught the error), or a statement on ``tx.connection``
        that failed and whose error was swallowed, makes the normal exit roll back and
        raise a :class:`~wdh_io.errors.DatabaseError`. Not retried (a ``with`` block cannot
        be re-run): use :meth:`run_in_transaction` for that.
        """
        with self._scope(action="transaction failed") as connection:
            tx = LoadTransaction(self, connection)
            yield tx
            if tx.failed is not None:
                failed = tx.failed
                raise DatabaseError(
                    "transaction rolled back because a load in it failed "
                    f"({type(failed).__name__})",
                    table=getattr(failed, "table", None),
                    schema=getattr(failed, "schema", None),
                ) from failed

    def run_in_transaction(
        self, func: Callable[[LoadTransaction], T], *, operation: str = "transaction"
    ) -> T:
        """Run ``func(tx)`` in one transaction and commit; re-run it all on transient errors.

        ``func`` must be safe to run again from the start (it is, when it only writes
        through ``tx``: a failed attempt leaves nothing behind).
        """

        def attempt() -> T:
            with self.transaction() as tx:
                return func(tx)

        return self._with_retry(attempt, operation=operation, log=_logger)

    # ------------------------------------------------------------------ internals

    def _with_retry(self, func: Callable[[], T], *, operation: str, log: BoundLogger) -> T:
        """Call ``func`` (one whole transaction), re-running it only on transient errors."""
        return execute_with_retry(
            func,
            self._retry,
            operation=operation,
            is_retryable=_is_transient,
            sleep=self._sleep,
            logger=log,
        )

    def _scope(
        self, *, action: str, table: str | None = None, schema: str | None = None
    ) -> AbstractContextManager[Connection]:
        """This loader's transaction boundary (its secrets and timeouts)."""
        return transaction_scope(
            self._engine,
            action=action,
            table=table,
            schema=schema,
            secrets=self._secrets,
            timeouts=self._timeouts,
        )

    def _with_connection(self, func: Callable[[Connection], T]) -> T:
        with self._scope(action="database error") as connection:
            return func(connection)

    def _in_transaction(
        self, func: Callable[[Connection], T], *, table: str | None, schema: str | None
    ) -> T:
        with self._scope(action="load failed", table=table, schema=schema) as connection:
            return func(connection)

    def _settings(self) -> LoadSettings:
        return LoadSettings(
            catalog=self._catalog,
            method=self._method,
            batch_size=self._batch_size,
            secrets=self._secrets,
        )

    def _loading(
        self,
        connection: Connection,
        table: str,
        schema: str,
        upsert_keys: Sequence[str] | None,
        compare_ignore: Sequence[str],
        *,
        name_labels: bool,
        straight: bool = True,
    ) -> Loading:
        """A load on ``connection`` inside its open transaction; ``straight``: an upsert
        into an empty table may go straight into it (not for a plan)."""
        if upsert_keys and not supports_upsert(connection.dialect.name):
            raise DatabaseError(
                f"upserts are not supported on {connection.dialect.name}",
                table=table,
                schema=schema,
            )
        return Loading(
            connection,
            self._settings(),
            table,
            schema,
            upsert_keys=upsert_keys,
            compare_ignore=compare_ignore,
            name_labels=name_labels,
            straight=straight,
        )

    def _load_on(
        self,
        connection: Connection,
        df: pd.DataFrame,
        table: str,
        schema: str,
        upsert_keys: Sequence[str] | None,
        *,
        compare_ignore: Sequence[str],
    ) -> LoadResult:
        """Load ``df`` on ``connection`` inside its open transaction; no commit."""
        loading = self._loading(
            connection, table, schema, upsert_keys, compare_ignore, name_labels=False
        )
        loading.append(df)
        return loading.merge()

    def _log_success(self, log: BoundLogger, result: LoadResult) -> None:
        log.info(
            "database.load.completed",
            rows=result.rows_written,
            rows_inserted=result.rows_inserted,
            rows_updated=result.rows_updated,
            rows_unchanged=result.rows_unchanged,
            batches=result.batches,
            duration_ms=result.duration_ms,
            method=result.method,
            columns_dropped=list(result.columns_dropped),
        )

    def _log_failure(self, log: BoundLogger, exc: WdhIoError, started: float, *, rows: int) -> None:
        log.error(
            "database.load.failed",
            rows=rows,
            batches=math.ceil(rows / self._batch_size),
            error_type=type(exc).__name__,
            error=str(exc),
            batch=getattr(exc, "batch", None),
            row=getattr(exc, "row", None),
            duration_ms=_elapsed_ms(started),
            method=self._method,
        )


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)
