"""The audit trail of pipeline runs: ``pipeline_executions`` and ``data_quality_metrics``.

Every call runs in a transaction of its own and commits at once, unless a
``connection`` is passed, in which case it joins that connection's transaction (to
commit the audit row together with the loads it describes). So a run whose load
fails and rolls back still leaves its ``running`` row and, after :meth:`complete_run`,
a ``failed`` one.

Times come from the database clock (``clock_timestamp()``), so ``duration_ms`` is right
even when the caller's clock is not and even when start and completion share one
transaction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final, Literal, get_args

from sqlalchemy import Connection, Engine, Executable, cast, func, literal, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import BigInteger

from wdh_io._boundary import DEFAULT_TIMEOUTS, Timeouts, transaction_scope
from wdh_io._translate import secrets_of
from wdh_io.database._url import mask_url
from wdh_io.errors import DatabaseError, DataValidationError, TableNotFoundError
from wdh_io.schema import ExecutionStatus, data_quality_metrics, pipeline_executions
from wdh_logging import get_logger, redact_text

__all__ = ["MAX_ERROR_MESSAGE_LENGTH", "AuditRecorder", "FinalStatus"]

_log = get_logger(__name__)

#: ``error_message`` is cut to this many characters (a traceback is not an audit record).
MAX_ERROR_MESSAGE_LENGTH: Final = 4000

_TRUNCATED: Final = " …[truncated]"
#: How a user migrates the warehouse, from the repository root.
_MIGRATE_COMMAND: Final = "uv run alembic -c packages/wdh-io/alembic.ini upgrade head"
_NAME_LIMIT: Final = 100  # execution_id, pipeline_name, domain, metric_name: VARCHAR(100)

#: The status a run is completed with: every :data:`~wdh_io.schema.EXECUTION_STATUSES`
#: value but ``running`` (a test checks the two agree).
FinalStatus = Literal["success", "failed"]
_FINAL_STATUSES: Final[tuple[FinalStatus, ...]] = get_args(FinalStatus)
_RUNNING: Final[ExecutionStatus] = "running"


def _check_name(field: str, value: str, table: str) -> None:
    if not value:
        raise DataValidationError(f"{field} must not be empty", table=table, column=field)
    if len(value) > _NAME_LIMIT:
        raise DataValidationError(
            f"{field} is {len(value)} characters long, the limit is {_NAME_LIMIT}",
            table=table,
            column=field,
        )


def _check_count(field: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or value < 0):
        raise DataValidationError(
            f"{field} must be a non-negative integer, got {value!r}",
            table=pipeline_executions.name,
            column=field,
        )


def _clean_error_message(message: str | None) -> str | None:
    if message is None:
        return None
    cleaned = redact_text(message).replace("\x00", "")
    if len(cleaned) > MAX_ERROR_MESSAGE_LENGTH:
        cleaned = cleaned[: MAX_ERROR_MESSAGE_LENGTH - len(_TRUNCATED)] + _TRUNCATED
    return cleaned


class AuditRecorder:
    """Writes the audit rows of pipeline runs through *engine*.

    Example::

        audit = AuditRecorder(engine)
        audit.start_run(execution_id=run_id, pipeline_name="sample", input_file_path=path)
        ...
        audit.complete_run(execution_id=run_id, status="success", rows_input=10, rows_output=10)
        audit.record_metrics(execution_id=run_id, domain="sample", metrics={"error_rate": 0.0})
    """

    def __init__(
        self,
        engine: Engine,
        *,
        lock_timeout_ms: int = DEFAULT_TIMEOUTS.lock_ms,
        statement_timeout_ms: int = DEFAULT_TIMEOUTS.statement_ms,
    ) -> None:
        self._engine = engine
        self._timeouts = Timeouts(lock_ms=lock_timeout_ms, statement_ms=statement_timeout_ms)

    def __repr__(self) -> str:
        return f"AuditRecorder(url={mask_url(self._engine.url)!r})"

    def _execute(
        self, statement: Executable, connection: Connection | None, *, action: str, table: str
    ) -> int:
        """Run *statement* on *connection* (the caller's transaction) or in one of its own.

        Returns the affected row count. Both go through the package's one transaction
        boundary: errors become ``DatabaseError`` subclasses; a connection lost during this
        call's own COMMIT is :class:`~wdh_io.errors.CommitOutcomeUnknownError` (the row
        may be written).
        """
        try:
            with transaction_scope(
                self._engine,
                action=action,
                table=table,
                secrets=secrets_of(self._engine.url),
                timeouts=self._timeouts,
                connection=connection,
            ) as scoped:
                return int(scoped.execute(statement).rowcount)
        except TableNotFoundError as exc:
            # The audit tables come with the migrations: a database without them was
            # never migrated, and that, not the missing table, is what to fix.
            raise TableNotFoundError(
                f"{exc.message}: this database has not been migrated; run "
                f"'{_MIGRATE_COMMAND}' against it first",
                table=exc.table,
                schema=exc.schema,
                sqlstate=exc.sqlstate,
            ) from exc

    def start_run(
        self,
        *,
        execution_id: str,
        pipeline_name: str,
        input_file_path: str | None = None,
        connection: Connection | None = None,
    ) -> None:
        """Insert the run's ``running`` row (``started_at`` = now).

        Raises:
            DataValidationError: an id or name is empty or longer than 100 characters.
            ConstraintViolationError: a run with this execution id is already recorded.
            DatabaseError: (subclasses) the database failed; nothing was written.
        """
        table = pipeline_executions.name
        _check_name("execution_id", execution_id, table)
        _check_name("pipeline_name", pipeline_name, table)
        statement = pipeline_executions.insert().values(
            execution_id=execution_id,
            pipeline_name=pipeline_name,
            status=_RUNNING,
            started_at=func.clock_timestamp(),
            input_file_path=input_file_path,
        )
        self._execute(
            statement,
            connection,
            action=f"could not record the start of run {execution_id!r}",
            table=table,
        )
        _log.info("audit.run.started", execution_id=execution_id, pipeline_name=pipeline_name)

    def ensure_run(
        self,
        *,
        execution_id: str,
        pipeline_name: str,
        input_file_path: str | None = None,
        connection: Connection | None = None,
    ) -> bool:
        """Insert the run's ``running`` row unless a row with *execution_id* exists.

        Idempotent (``INSERT … ON CONFLICT DO NOTHING``): for callers that cannot know
        whether they are the first to touch the run — e.g. every op of a Dagster run,
        since a "re-execute from failure" skips the op that would have started it. A row
        that is already ``success`` or ``failed`` is left as it is. Returns whether this
        call created the row.

        Raises:
            DataValidationError: an id or name is empty or longer than 100 characters.
            DatabaseError: (subclasses) the database failed; nothing was written.
        """
        table = pipeline_executions.name
        _check_name("execution_id", execution_id, table)
        _check_name("pipeline_name", pipeline_name, table)
        statement = (
            pg_insert(pipeline_executions)
            .values(
                execution_id=execution_id,
                pipeline_name=pipeline_name,
                status=_RUNNING,
                started_at=func.clock_timestamp(),
                input_file_path=input_file_path,
            )
            .on_conflict_do_nothing(index_elements=[pipeline_executions.c.execution_id])
        )
        created = (
            self._execute(
                statement,
                connection,
                action=f"could not open the audit row of run {execution_id!r}",
                table=table,
            )
            == 1
        )
        if created:
            _log.info("audit.run.started", execution_id=execution_id, pipeline_name=pipeline_name)
        return created

    def complete_run(
        self,
        *,
        execution_id: str,
        status: FinalStatus,
        rows_input: int | None = None,
        rows_output: int | None = None,
        rows_failed: int | None = None,
        error_message: str | None = None,
        connection: Connection | None = None,
    ) -> None:
        """Set the run's final *status*, ``completed_at``, ``duration_ms`` and counts.

        *error_message* is stored with secrets (URL passwords, ``password=...``) masked,
        NUL bytes removed and cut to :data:`MAX_ERROR_MESSAGE_LENGTH` characters. Only a
        ``running`` row is completed: completing a run twice is an error.

        Raises:
            ValueError: *status* is not ``"success"`` or ``"failed"``.
            DataValidationError: a count is negative.
            DatabaseError: no ``running`` row has this execution id, or the database failed.
        """
        if status not in _FINAL_STATUSES:
            allowed = " or ".join(repr(final) for final in _FINAL_STATUSES)
            raise ValueError(f"status must be {allowed}, got {status!r}")
        for field, value in (
            ("rows_input", rows_input),
            ("rows_output", rows_output),
            ("rows_failed", rows_failed),
        ):
            _check_count(field, value)
        table = pipeline_executions.name
        now = func.clock_timestamp()
        elapsed_ms = func.floor(
            func.extract("epoch", now - pipeline_executions.c.started_at) * literal(1000)
        )
        statement = (
            update(pipeline_executions)
            .where(
                pipeline_executions.c.execution_id == execution_id,
                pipeline_executions.c.status == _RUNNING,
            )
            .values(
                status=status,
                completed_at=now,
                duration_ms=func.greatest(cast(elapsed_ms, BigInteger), 0),
                rows_input=rows_input,
                rows_output=rows_output,
                rows_failed=rows_failed,
                error_message=_clean_error_message(error_message),
            )
        )
        updated = self._execute(
            statement,
            connection,
            action=f"could not record the end of run {execution_id!r}",
            table=table,
        )
        if updated != 1:
            raise DatabaseError(
                f"no running execution {execution_id!r} to complete "
                "(never started, or already completed)",
                table=table,
            )
        _log.info("audit.run.completed", execution_id=execution_id, status=status)

    def record_metrics(
        self,
        *,
        execution_id: str,
        domain: str,
        metrics: Mapping[str, float | int],
        connection: Connection | None = None,
    ) -> None:
        """Store one ``data_quality_metrics`` row per metric of the run.

        Recording a metric again for the same run and domain replaces its value (a
        retried step does not double-count). An empty mapping writes nothing. NaN is
        stored as NULL (no value); infinity is refused.

        Raises:
            DataValidationError: a name is empty or too long, or a value is not a finite
                number.
            ConstraintViolationError: no run with this execution id is recorded.
            DatabaseError: the database failed; none of the metrics was written.
        """
        table = data_quality_metrics.name
        _check_name("domain", domain, table)
        rows = []
        for name, value in metrics.items():
            _check_name("metric_name", name, table)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataValidationError(
                    f"metric {name!r} is not a number: {type(value).__name__}",
                    table=table,
                    column="metric_value",
                )
            if isinstance(value, float) and math.isinf(value):
                raise DataValidationError(
                    f"metric {name!r} is infinite", table=table, column="metric_value"
                )
            stored = None if isinstance(value, float) and math.isnan(value) else value
            rows.append(
                {
                    "execution_id": execution_id,
                    "domain": domain,
                    "metric_name": name,
                    "metric_value": stored,
                }
            )
        if not rows:
            return
        insert = pg_insert(data_quality_metrics).values(rows)
        statement = insert.on_conflict_do_update(
            constraint="uq_data_quality_metrics_execution_id_domain_metric_name",
            set_={
                "metric_value": insert.excluded.metric_value,
                "recorded_at": func.clock_timestamp(),
            },
        )
        self._execute(
            statement,
            connection,
            action=f"could not record the metrics of run {execution_id!r}",
            table=table,
        )
        _log.info(
            "audit.metrics.recorded", execution_id=execution_id, domain=domain, count=len(rows)
        )
