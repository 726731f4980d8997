"""Run-status sensors that close the audit row of every run that did not succeed.

The failure hook closes a failed run's row from inside the run; these sensors close it
from outside, so that a run whose step was interrupted (cancelled from the UI, where
Dagster fires no failure hook) or whose process died still ends with a closed row. Both
write ``status = failed`` (``pipeline_executions`` knows running, success and failed);
the message says whether the run failed or was cancelled. A row the hook closed already
is left as it is. They are on by default: ``dagster dev`` starts the daemon that runs
them.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunFailureSensorContext,
    RunStatusSensorContext,
    SensorDefinition,
    run_failure_sensor,
    run_status_sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # not exported by dagster; the type of define_asset_job's result
)

from wdh_orchestration._audit import close_run, execution_id_of_run
from wdh_orchestration._landing import _sensor_interval_s
from wdh_orchestration.resources import WarehouseResource

__all__ = ["audit_run_sensors", "close_audit_row"]

# one cheap query per finished run; a closed row should not wait long
_INTERVAL_S = _sensor_interval_s(5)

_log = structlog.get_logger(__name__)


def close_audit_row(
    context: RunStatusSensorContext, warehouse: WarehouseResource, reason: str
) -> bool:
    """Close the audit row of the run *context* reports on as ``failed`` with *reason*.

    Returns whether this call closed it (False: it was closed already).
    """
    run = context.dagster_run
    execution_id = execution_id_of_run(context.instance, run.run_id)
    closed = close_run(
        warehouse, execution_id=execution_id, pipeline_name=run.job_name, reason=reason
    )
    _log.info("audit.run.closed_by_sensor", execution_id=execution_id, closed=closed)
    return closed


def audit_run_sensors(
    jobs: Sequence[UnresolvedAssetJobDefinition | JobDefinition],
) -> list[SensorDefinition]:
    """``audit_failed_runs`` and ``audit_cancelled_runs``, monitoring *jobs*."""

    @run_failure_sensor(
        name="audit_failed_runs",
        minimum_interval_seconds=_INTERVAL_S,
        monitored_jobs=list(jobs),
        default_status=DefaultSensorStatus.RUNNING,
        description="Closes the audit row of a failed run (if its failure hook did not).",
    )
    def _failed(context: RunFailureSensorContext, warehouse: WarehouseResource) -> None:
        message = context.failure_event.message or "the run failed"
        close_audit_row(context, warehouse, f"run failed: {message.splitlines()[0]}")

    @run_status_sensor(
        run_status=DagsterRunStatus.CANCELED,
        name="audit_cancelled_runs",
        minimum_interval_seconds=_INTERVAL_S,
        monitored_jobs=list(jobs),
        default_status=DefaultSensorStatus.RUNNING,
        description="Closes the audit row of a cancelled run as failed.",
    )
    def _cancelled(context: RunStatusSensorContext, warehouse: WarehouseResource) -> None:
        close_audit_row(context, warehouse, "run cancelled in Dagster before it finished")

    return [_failed, _cancelled]
