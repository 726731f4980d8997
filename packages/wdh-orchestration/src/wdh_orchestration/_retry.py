"""The op retry policy of every domain job, from the platform's ``RetryConfig``.

Which errors are retried is decided in the steps, not here (``RetryPolicy`` has no
exception filter): see ``retry_only_transient``; so only a lost connection, a deadlock
or a serialization failure is tried again, and each attempt of a load is one
transaction, so a retry never doubles rows.
"""

from __future__ import annotations

from dagster import Backoff, Jitter, RetryPolicy

from wdh_domain.pipelines import RetryConfig

__all__ = ["retry_policy_for"]


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
