"""``replay_rejected_rows``: the replay of a run's rejected rows as a Dagster job.

Its config is the audit execution id of the run to replay (and, for a run that rejected
rows of several domains, the domain). The replaying run's own audit id is its Dagster
run's (``exec_<created>_<run id>``), so the replay's ``pipeline_executions`` row
(``<domain>_replay``) and the Dagster run find each other.
"""

# No ``from __future__ import annotations`` here: Dagster reads the op's annotations.
from collections.abc import Sequence

from dagster import (
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    RetryPolicy,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from structlog.contextvars import bound_contextvars

from wdh_domain.pipelines import RetryConfig
from wdh_orchestration._audit import execution_id_for, record_failed_run
from wdh_orchestration._domain import Domain
from wdh_orchestration._failures import is_last_attempt, retry_only_transient
from wdh_orchestration._replay import ReplayError, replay_run
from wdh_orchestration._retry import retry_policy_for
from wdh_orchestration.resources import WarehouseResource

__all__ = ["REPLAY_JOB_NAME", "ReplayConfig", "build_replay_job"]

REPLAY_JOB_NAME = "replay_rejected_rows"


class ReplayConfig(Config):
    """Which run's rejected rows to replay."""

    execution_id: str = Field(
        description=(
            "audit execution id of the run whose rejected rows to replay (exec_…, as "
            "pipeline_executions and the run's materialization show it)"
        ),
    )
    domain: str | None = Field(
        default=None,
        description="the domain to replay; needed only when the run rejected rows of several",
    )


def build_replay_job(
    domains: Sequence[Domain], *, retry_policy: RetryPolicy | None = None
) -> JobDefinition:
    """The ``replay_rejected_rows`` job over *domains*: one step that calls
    :func:`~wdh_orchestration.replay_run` and reports its counts as output metadata.

    A replay that cannot be done (unknown run or domain, say) fails at once with one
    line; transient database errors are retried by *retry_policy* (default: the
    platform's ``RetryConfig()``), and the failure hook closes the audit row of a failed
    replay.
    """

    @op(
        name="replay",
        description="Validate a run's rejected rows again; upsert those that now pass.",
    )
    def _replay(
        context: OpExecutionContext, config: ReplayConfig, warehouse: WarehouseResource
    ) -> int:
        replay_execution_id = execution_id_for(context)
        with (
            bound_contextvars(execution_id=replay_execution_id, dagster_run_id=context.run_id),
            retry_only_transient(
                "cannot replay the rejected rows", last_attempt=is_last_attempt(context)
            ),
        ):
            try:
                outcome = replay_run(
                    warehouse.loader(),
                    warehouse.audit(),
                    domains,
                    execution_id=config.execution_id,
                    replay_execution_id=replay_execution_id,
                    domain=config.domain,
                    close_failed=False,  # the failure hook does, after the last attempt
                )
            except ReplayError as exc:
                raise Failure(description=f"cannot replay: {exc}", allow_retries=False) from None
        context.log.info(outcome.summary())
        context.add_output_metadata(
            {
                "summary": MetadataValue.text(outcome.summary()),
                "replayed_execution_id": MetadataValue.text(outcome.execution_id),
                "domain": MetadataValue.text(outcome.domain or ""),
                "rows_replayed": outcome.rows_replayed,
                "rows_resolved": outcome.rows_resolved,
                "rows_rejected": outcome.rows_rejected,
                "rows_inserted": outcome.rows_inserted,
                "rows_updated": outcome.rows_updated,
                "reasons_changed": outcome.reasons_changed,
            }
        )
        return outcome.rows_resolved

    @job(
        name=REPLAY_JOB_NAME,
        description=(
            "Validate a run's rejected rows again with the current domain model: upsert "
            "the rows that now pass and mark them resolved, give the others their new "
            "reasons, in one transaction. Config: the run's execution id."
        ),
        executor_def=in_process_executor,
        hooks={record_failed_run},
        op_retry_policy=retry_policy or retry_policy_for(RetryConfig()),
    )
    def _job() -> None:
        _replay()

    return _job
