"""``sample_pipeline_job``: read a CSV, validate its rows, load the valid ones (Story 1.9).

Retries: every op carries a Dagster ``RetryPolicy`` derived from the platform's default
``RetryConfig`` (:func:`retry_policy_for`: 3 retries, after 1 s, 2 s and 3 s), and the
ops turn every error except :class:`~wdh_io.errors.TransientDatabaseError` into a
failure that is never retried, so only a lost connection, a deadlock or a serialization
failure is tried again. Each attempt of the load is one transaction, so a retry never
doubles rows.

Audit: every op first opens the run's ``pipeline_executions`` row unless it exists
(``read_csv_op`` normally does; in a re-execution from failure the first op that runs
does), ``validate_op`` records the data-quality metrics, ``load_to_db_op`` completes the
row as ``success`` with the data; the
:func:`~wdh_orchestration._audit.record_failed_run` hook completes it as ``failed`` with
the reason when any op fails for good.
"""

from __future__ import annotations

from dagster import Backoff, Jitter, RetryPolicy, in_process_executor, job

from wdh_domain.pipelines import RetryConfig
from wdh_orchestration._audit import record_failed_run
from wdh_orchestration.ops import load_to_db_op, read_csv_op, validate_op

__all__ = ["retry_policy_for", "sample_pipeline_job"]


def retry_policy_for(config: RetryConfig) -> RetryPolicy:
    """The Dagster ``RetryPolicy`` for *config*: the same number of attempts, the same
    first wait, linear growth.

    ``max_retries = config.max_attempts - 1`` (Dagster counts retries, not attempts),
    ``delay = config.backoff_ms / 1000`` seconds, ``backoff = Backoff.LINEAR``, and
    ``jitter = Jitter.FULL`` when ``config.jitter``. ``backoff_factor`` and
    ``max_backoff_ms`` have no Dagster counterpart and are not used.

    Which errors are retried is decided in the ops, not here (``RetryPolicy`` has no
    exception filter): see ``retry_only_transient``.
    """
    # Dagster waits d*n (linear) or d*(2**n - 1) (exponential) before retry n: for
    # RetryConfig()'s 1 s, 2 s, 4 s, linear's 1 s, 2 s, 3 s is the closer (not 1 s, 3 s, 7 s).
    return RetryPolicy(
        max_retries=config.max_attempts - 1,
        delay=config.backoff_ms / 1000,
        backoff=Backoff.LINEAR,
        jitter=Jitter.FULL if config.jitter else None,
    )


@job(
    description="Sample end-to-end pipeline: CSV -> validate (SampleRecord) -> public.sample_data",
    # One process for the whole run: Dagster sets the resources up once for it, so the
    # three small steps share one engine and pool instead of paying a process start and
    # a database connection per op.
    executor_def=in_process_executor,
    # The platform's default RetryConfig: 4 attempts, waits 1 s, 2 s, 3 s in Dagster.
    op_retry_policy=retry_policy_for(RetryConfig()),
    hooks={record_failed_run},
    tags={"domain": "sample"},
)
def sample_pipeline_job() -> None:
    """read_csv_op -> validate_op -> load_to_db_op."""
    load_to_db_op(validate_op(read_csv_op()))
