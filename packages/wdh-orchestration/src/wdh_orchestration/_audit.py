"""The audit trail of a Dagster run: its execution id, and closing the row of a run that
did not succeed.

A domain's asset opens the run's ``running`` row (``op_scope``) and completes it as
``success`` in the same transaction as the rows it loads. A run that fails is completed
as ``failed`` twice over, whichever comes first: by :data:`record_failed_run`, a failure
hook on every step, and by the run-status sensors of ``_run_sensors``, which also close
the rows of cancelled runs (Dagster fires no failure hook for an interrupted step).
"""

from __future__ import annotations

import structlog
from dagster import DagsterInstance, HookContext, OpExecutionContext, failure_hook
from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from wdh_domain.pipelines import new_execution_id
from wdh_io.errors import WdhIoError
from wdh_io.schema import pipeline_executions
from wdh_orchestration._failures import describe_failure
from wdh_orchestration.resources import WarehouseResource

__all__ = [
    "close_run",
    "execution_id_for",
    "execution_id_of_run",
    "record_failed_run",
    "resolve_execution_id",
]

_log = structlog.get_logger(__name__)


def execution_id_of_run(instance: DagsterInstance, run_id: str) -> str:
    """The audit execution id of Dagster run *run_id*:
    ``exec_<run created, UTC %Y%m%d_%H%M%S>_<Dagster run id>``.

    Derived from the run alone, so every step, hook and sensor (each maybe in its own
    process) computes the same id; the Dagster run id in it is the random suffix that
    keeps two runs started in the same second apart, and the link back to Dagster.
    """
    record = instance.get_run_record_by_id(run_id)
    created = record.create_timestamp if record is not None else None  # None: now, UTC
    return new_execution_id(created, suffix=run_id)


def resolve_execution_id(connection: Connection, run: str) -> str:
    """The audit execution id *run* names: *run* itself when it is one, else the one
    execution id of Dagster run *run* (``exec_<time>_<run>``, what the UI and
    ``python -m wdh_orchestrator.run`` show); *run* unchanged when neither matches, so the
    caller's "no run" message quotes what the user typed."""
    ids = pipeline_executions.c.execution_id
    if connection.execute(select(ids).where(ids == run)).first() is not None:
        return run
    found = connection.execute(
        select(ids).where(ids.endswith(f"_{run}", autoescape=True)).limit(2)
    ).all()
    return str(found[0][0]) if len(found) == 1 else run


def execution_id_for(context: OpExecutionContext | HookContext) -> str:
    """The audit execution id of the run *context* belongs to."""
    return execution_id_of_run(context.instance, context.run_id)


def close_run(
    warehouse: WarehouseResource, *, execution_id: str, pipeline_name: str, reason: str
) -> bool:
    """Complete the run's audit row as ``failed`` with *reason*, unless it is closed.

    The row is opened first if nothing of the run got to open it, in the same
    transaction. Returns whether this call closed it (False: it was closed already).
    """
    audit = warehouse.audit()
    with warehouse.engine.begin() as conn:
        audit.ensure_run(execution_id=execution_id, pipeline_name=pipeline_name, connection=conn)
        # FOR UPDATE: the failure hook and the run-status sensor may close it at once.
        status = conn.execute(
            select(pipeline_executions.c.status)
            .where(pipeline_executions.c.execution_id == execution_id)
            .with_for_update()
        ).scalar_one()
        if status != "running":
            return False
        audit.complete_run(
            execution_id=execution_id, status="failed", error_message=reason, connection=conn
        )
    return True


@failure_hook(required_resource_keys={"warehouse"})
def record_failed_run(context: HookContext) -> None:
    """Complete the run's audit row as ``failed`` with the failing step and its reason.

    Runs once, after the step's last attempt (Dagster does not fire failure hooks for
    attempts it retries). A failure to write the audit row is logged, not raised: the
    step's own error is the one the user must see (and the run-status sensor tries again).
    """
    exc = context.op_exception
    reason = describe_failure(exc) if exc is not None else "no exception recorded"
    execution_id = execution_id_for(context)
    try:
        close_run(
            context.resources.warehouse,
            execution_id=execution_id,
            pipeline_name=context.job_name,
            reason=f"{context.op.name}: {reason}",
        )
    except (WdhIoError, SQLAlchemyError) as audit_error:
        _log.error(
            "audit.run.failure_not_recorded",
            execution_id=execution_id,
            op=context.op.name,
            error=describe_failure(audit_error),
        )
