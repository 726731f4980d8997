"""The audit trail of a Dagster run: its execution id and the ``failed`` row of a failed run.

The ``success`` row is written by ``load_to_db_op`` in the same transaction as the rows
it describes; a run that fails anywhere is completed as ``failed`` by
:data:`record_failed_run`, a failure hook every op of the job carries.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from dagster import HookContext, OpExecutionContext, failure_hook

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
    created = record.create_timestamp if record is not None else datetime.now(UTC)
    return f"exec_{created.astimezone(UTC):%Y%m%d_%H%M%S}_{context.run_id}"


@failure_hook(required_resource_keys={"warehouse"})
def record_failed_run(context: HookContext) -> None:
    """Complete the run's audit row as ``failed`` with the failing op and its reason.

    Runs once, after the op's last attempt (Dagster does not fire failure hooks for
    attempts it retries). A failure to write the audit row is logged, not raised: the
    op's own error is the one the user must see.
    """
    exc = context.op_exception
    reason = describe_failure(exc) if exc is not None else "no exception recorded"
    message = f"{context.op.name}: {reason}"
    execution_id = execution_id_for(context)
    try:
        context.resources.warehouse.audit().complete_run(
            execution_id=execution_id, status="failed", error_message=message
        )
    except WdhIoError as audit_error:
        _log.error(
            "audit.run.failure_not_recorded",
            execution_id=execution_id,
            op=context.op.name,
            error=str(audit_error),
        )
