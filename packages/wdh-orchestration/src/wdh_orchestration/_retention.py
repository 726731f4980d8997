"""Run retention: a daily job that deletes finished runs older than a number of days.

Dagster's instance setting ``retention`` purges sensor and schedule ticks only; runs and
their event logs stay until deleted. ``dagster_run_retention`` deletes every finished
run (succeeded, failed or cancelled) last updated more than ``keep_days`` ago, in
batches, through the instance's own API, so it works on any run storage.
"""

# No ``from __future__ import annotations``: Dagster reads the op's annotations.
from datetime import UTC, datetime, timedelta
from typing import Final

import structlog
from dagster import (
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    JobDefinition,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)
from pydantic import Field

__all__ = ["RetentionConfig", "run_retention_job", "run_retention_schedule"]

_log = structlog.get_logger(__name__)

_FINISHED: Final = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
_BATCH: Final = 500


class RetentionConfig(Config):
    """How long finished runs are kept."""

    keep_days: int = Field(default=90, ge=1, description="delete finished runs older than this")


@op(description="Delete finished runs last updated more than keep_days ago.")
def purge_old_runs(context: OpExecutionContext, config: RetentionConfig) -> int:
    """Delete the old runs (never this one, never one still in progress); return how many."""
    cutoff = datetime.now(UTC) - timedelta(days=config.keep_days)
    deleted = 0
    while True:
        records = context.instance.get_run_records(
            filters=RunsFilter(statuses=_FINISHED, updated_before=cutoff), limit=_BATCH
        )
        old = [r.dagster_run.run_id for r in records if r.dagster_run.run_id != context.run_id]
        for run_id in old:
            context.instance.delete_run(run_id)
        deleted += len(old)
        if len(records) < _BATCH:
            break
    _log.info("dagster.runs.purged", deleted=deleted, keep_days=config.keep_days)
    return deleted


@job(description="Delete finished Dagster runs older than keep_days (default 90).")
def dagster_run_retention() -> None:
    """purge_old_runs."""
    purge_old_runs()


run_retention_job: JobDefinition = dagster_run_retention

run_retention_schedule = ScheduleDefinition(
    name="dagster_run_retention_daily",
    job=dagster_run_retention,
    cron_schedule="17 3 * * *",  # 03:17 every day, off the hour when other jobs start
    default_status=DefaultScheduleStatus.RUNNING,
    description="Runs dagster_run_retention daily.",
)
