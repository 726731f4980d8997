"""The audit trail of a Dagster run: its execution id and the ``failed`` row of a failed run.

Every op opens the run's ``running`` row if it is not there yet (``op_scope``); the
``success`` row is written by ``load_to_db_op`` in the same transaction as the rows it
describes; a run that fails anywhere is completed as ``failed`` by
:data:`record_failed_run`, a failure hook every op of the job carries.
"""

from __future__ import annotations

import structlog
from dagster import HookContext, OpExecutionContext, failure_hook
from sqlalchemy.exc import SQLAlchemyError

from wdh_domain.pipelines import new_execution_id
from wdh_io.errors import WdhIoError
from wdh_orchestration._failures import describe_failure

__all__ = ["execution_id_for", "record_failed_run"]

_log = structlog.get_logger(__name__)


def execution_id_for(context: OpExecutionContext | HookContext) -> str:
    """The run's audit execution id: ``exec_<run created, UTC %Y%m%d_%H%M%S>_<Dagster run id>``.

    Derived from the run alone, so every op and hook of a run (each maybe in its own
    process) computes the same id; the Dagster run id in it is the random suffix that
    keeps two runs started in the same second apart, and the link back to Dagster.
    """
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record is not None else None  # None: now, UTC
    return new_execution_id(created, suffix=context.run_id)


@failure_hook(required_resource_keys={"warehouse"})
def record_failed_run(context: HookContext) -> None:
    """Complete the run's audit row as ``failed`` with the failing op and its reason.

    Runs once, after the op's last attempt (Dagster does not fire failure hooks for
    attempts it retries). The row is opened first if no op of this run got to open it
    (a step that failed before its body ran, or whose opening insert failed), in the
    same transaction as its completion. A failure to write the audit row is logged, not
    raised: the op's own error is the one the user must see.
    """
    exc = context.op_exception
    reason = describe_failure(exc) if exc is not None else "no exception recorded"
    message = f"{context.op.name}: {reason}"
    execution_id = execution_id_for(context)
    warehouse = context.resources.warehouse
    try:
        audit = warehouse.audit()
        with warehouse.engine.begin() as conn:
            audit.ensure_run(
                execution_id=execution_id, pipeline_name=context.job_name, connection=conn
            )
            audit.complete_run(
                execution_id=execution_id,
                status="failed",
                error_message=message,
                connection=conn,
            )
    except (WdhIoError, SQLAlchemyError) as audit_error:
        _log.error(
            "audit.run.failure_not_recorded",
            execution_id=execution_id,
            op=context.op.name,
            error=describe_failure(audit_error),
        )
