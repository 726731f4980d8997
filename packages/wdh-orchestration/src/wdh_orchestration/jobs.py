"""``sample_pipeline_job``: read a CSV, validate its rows, load the valid ones (Story 1.9).

Retries: every op carries a Dagster ``RetryPolicy`` derived from :data:`SAMPLE_RETRY`
(the platform's ``RetryConfig``), and the ops turn every error except
:class:`~wdh_io.errors.TransientDatabaseError` into a failure that is never retried, so
only a lost connection, a deadlock or a serialization failure is tried again. Each
attempt of the load is one transaction, so a retry never doubles rows.

Audit: every op first opens the run's ``pipeline_executions`` row unless it exists
(``read_csv_op`` normally does; in a re-execution from failure the first op that runs
does), ``validate_op`` records the data-quality metrics, ``load_to_db_op`` completes the
row as ``success`` with the data; the
:func:`~wdh_orchestration._audit.record_failed_run` hook completes it as ``failed`` with
the reason when any op fails for good.
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
    max_attempts=4,
    backoff_ms=1000,
    backoff_factor=2.0,
    max_backoff_ms=30_000,
    retriable_errors=frozenset({TransientDatabaseError}),
)
"""Retry policy of the sample job's ops: 3 retries, after 1 s, 2 s and 4 s."""

# Dagster's backoffs, in order of preference when two fit equally well.
_BACKOFFS: Final[tuple[Backoff | None, ...]] = (None, Backoff.LINEAR, Backoff.EXPONENTIAL)


def _dagster_wait_s(backoff: Backoff | None, delay_s: float, retry: int) -> float:
    """Seconds Dagster 1.13 waits before retry *retry* (1-based) without jitter
    (``dagster._core.definitions.policy.calculate_delay``)."""
    if backoff is Backoff.EXPONENTIAL:
        return delay_s * (2.0**retry - 1)  # d, 3d, 7d, ...
    if backoff is Backoff.LINEAR:
        return delay_s * retry  # d, 2d, 3d, ...
    return delay_s  # d, d, d, ...


def retry_policy_for(config: RetryConfig) -> RetryPolicy:
    """The Dagster ``RetryPolicy`` closest to *config*.

    The mapping:

    - ``max_retries`` = ``config.max_attempts - 1`` (Dagster counts retries, not attempts);
    - ``delay`` = ``config.backoff_ms / 1000`` (the first wait is the same);
    - ``backoff`` = the one of Dagster's schedules (none, linear, exponential) whose
      waits are closest -- least total absolute difference over the retries -- to
      ``RetryConfig``'s ``backoff_ms * backoff_factor ** (n - 1)`` capped at
      ``max_backoff_ms``. Dagster cannot multiply by an arbitrary factor nor cap: its
      exponential backoff waits ``d, 3d, 7d`` where ``RetryConfig`` waits ``d, 2d, 4d``.
      For :data:`SAMPLE_RETRY` (and the default ``RetryConfig()``) that is **linear:
      1 s, 2 s, 3 s** instead of 1 s, 2 s, 4 s -- the same first two waits, the third 1 s
      shorter (6 s in all instead of 7 s; exponential would wait 1 s, 3 s, 7 s = 11 s);
    - ``jitter`` = ``Jitter.FULL`` (uniform in ``[0, wait]``, as ``RetryConfig``'s
      jitter) when ``config.jitter``.

    Which errors are retried is decided in the ops, not here (``RetryPolicy`` has no
    exception filter): see ``retry_only_transient``.
    """
    delay_s = config.backoff_ms / 1000
    wanted = [config.sleep_ms_for(n) / 1000 for n in range(1, config.max_attempts)]

    def distance(backoff: Backoff | None) -> float:
        return sum(
            abs(_dagster_wait_s(backoff, delay_s, n) - w) for n, w in enumerate(wanted, start=1)
        )

    # min() keeps the first of equals: the simplest backoff wins a tie
    backoff = min(_BACKOFFS, key=distance) if delay_s > 0 else None
    return RetryPolicy(
        max_retries=config.max_attempts - 1,
        delay=delay_s,
        backoff=backoff,
        jitter=Jitter.FULL if config.jitter and delay_s > 0 else None,
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
