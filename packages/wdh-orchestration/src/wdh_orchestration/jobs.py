"""``sample_pipeline_job``: read a CSV, validate its rows, load the valid ones (Story 1.9).

Retries: every op carries a Dagster ``RetryPolicy`` derived from :data:`SAMPLE_RETRY`
(the platform's ``RetryConfig``), and the ops turn every error except
:class:`~wdh_io.errors.TransientDatabaseError` into a failure that is never retried, so
only a lost connection, a deadlock or a serialization failure is tried again. Each
attempt of the load is one transaction, so a retry never doubles rows.

Audit: ``read_csv_op`` opens the run's ``pipeline_executions`` row, ``validate_op``
records the data-quality metrics, ``load_to_db_op`` completes the row as ``success`` with
the data; the :func:`~wdh_orchestration._audit.record_failed_run` hook completes it as
``failed`` with the reason when any op fails for good.
"""

from __future__ import annotations

from typing import Final

from dagster import Backoff, Jitter, RetryPolicy, in_process_executor, job

from wdh_domain.pipelines import RetryConfig
from wdh_io.errors import TransientDatabaseError
from wdh_orchestration._audit import record_failed_run
from wdh_orchestration.ops import load_to_db_op, read_csv_op, validate_op

__all__ = ["SAMPLE_RETRY", "retry_policy_for", "sample_pipeline_job"]

SAMPLE_RETRY: Final = RetryConfig(
    max_retries=3,
    base_delay_s=1.0,
    backoff_factor=2.0,
    max_delay_s=30.0,
    retry_on=(TransientDatabaseError,),
)
"""Retry policy of the sample job's ops: 3 retries after 1 s, growing exponentially."""


def retry_policy_for(config: RetryConfig) -> RetryPolicy:
    """The Dagster ``RetryPolicy`` closest to *config*.

    Same number of retries, same first delay, full jitter when *config* jitters, and
    exponential growth when its backoff factor is above 1. Dagster's exponential backoff
    always doubles and adds (delays ``d, 3d, 7d`` where ``RetryConfig`` gives
    ``d, 2d, 4d``) and has no cap. Which errors are retried is decided in the ops, not
    here (``RetryPolicy`` has no exception filter).
    """
    return RetryPolicy(
        max_retries=config.max_retries,
        delay=config.base_delay_s,
        backoff=Backoff.EXPONENTIAL if config.backoff_factor > 1 else None,
        jitter=Jitter.FULL if config.jitter else None,
    )


@job(
    description="Sample end-to-end pipeline: CSV -> validate (SampleRecord) -> public.sample_data",
    # One process for the whole run: the three small steps share one engine and pool
    # instead of paying a process start and a database connection per op.
    executor_def=in_process_executor,
    op_retry_policy=retry_policy_for(SAMPLE_RETRY),
    hooks={record_failed_run},
    tags={"domain": "sample"},
)
def sample_pipeline_job() -> None:
    """read_csv_op -> validate_op -> load_to_db_op."""
    load_to_db_op(validate_op(read_csv_op()))
