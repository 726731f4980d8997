"""Retries with exponential backoff, only for whitelisted (transient) errors (Decision #4)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from wdh_domain._text import truncate
from wdh_domain.errors import PipelineConfigError
from wdh_logging import redact_text

__all__ = ["DEFAULT_RETRIABLE_ERRORS", "RetryConfig", "execute_with_retry"]

T = TypeVar("T")

_logger = structlog.get_logger("wdh_domain.pipelines.retry")

_MAX_ERROR_CHARS = 300

DEFAULT_RETRIABLE_ERRORS: frozenset[type[BaseException]] = frozenset(
    {ConnectionError, TimeoutError}
)
"""The exception types retried by default: the transient errors the standard library knows.

``wdh_domain`` cannot import database drivers, so infrastructure code adds its own
classification (e.g. ``psycopg2.OperationalError`` translated to a transient error) with
``execute_with_retry(..., is_retryable=...)`` or by listing its types here.
"""


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How often and how long to retry an operation that failed with a transient error.

    Field names follow the specification (AC-1.10.2):

    - ``max_attempts``: the total number of calls, **the first attempt included**
      (``4`` = the first try plus 3 retries; ``1`` = no retry). Must be >= 1.
    - ``backoff_ms``: the sleep after the first failed attempt, in milliseconds. The
      sleep after failed attempt ``n`` (1-based) is
      ``backoff_ms * backoff_factor ** (n - 1)`` capped at ``max_backoff_ms``: 1 s, 2 s,
      4 s by default. With ``jitter`` the sleep is drawn uniformly from ``[0, that]``
      ("full jitter").
    - ``retriable_errors``: the whitelist; an exception is retried only when it is an
      instance of one of these types (subclasses included) or when ``execute_with_retry``
      is given an ``is_retryable`` predicate that accepts it. Any iterable of exception
      types is accepted and stored as a ``frozenset``; an empty set retries only what the
      predicate accepts.
    """

    max_attempts: int = 4  # first try + 3 retries -> sleeps 1 s, 2 s, 4 s
    backoff_ms: int = 1000
    backoff_factor: float = 2.0
    max_backoff_ms: int = 30_000
    jitter: bool = False
    retriable_errors: frozenset[type[BaseException]] = DEFAULT_RETRIABLE_ERRORS

    def __post_init__(self) -> None:
        attempts: object = self.max_attempts  # checked at runtime for untyped callers
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            raise PipelineConfigError(
                "RetryConfig.max_attempts must be an int >= 1 (it counts the first attempt), "
                f"got {attempts!r}",
                field="max_attempts",
            )
        if self.backoff_ms < 0 or self.max_backoff_ms < 0:
            raise PipelineConfigError(
                "RetryConfig backoffs must be >= 0, got "
                f"backoff_ms={self.backoff_ms}, max_backoff_ms={self.max_backoff_ms}",
                field="backoff_ms" if self.backoff_ms < 0 else "max_backoff_ms",
            )
        if self.backoff_factor < 1:
            raise PipelineConfigError(
                f"RetryConfig.backoff_factor must be >= 1, got {self.backoff_factor}",
                field="backoff_factor",
            )
        entries: object = self.retriable_errors  # checked at runtime for untyped callers
        if isinstance(entries, str | bytes | type) or not isinstance(entries, Iterable):
            raise PipelineConfigError(
                f"RetryConfig.retriable_errors must be a set of exception types, got {entries!r}",
                field="retriable_errors",
            )
        types = frozenset(entries)
        for error_type in types:
            if not (isinstance(error_type, type) and issubclass(error_type, BaseException)):
                raise PipelineConfigError(
                    f"RetryConfig.retriable_errors must hold exception types, got {error_type!r}",
                    field="retriable_errors",
                )
        object.__setattr__(self, "retriable_errors", types)

    def sleep_ms_for(self, attempt: int) -> float:
        """Return the un-jittered sleep in ms after failed attempt ``attempt`` (1-based)."""
        # The exponent is bounded so that a large attempt count cannot overflow a float.
        exponent = min(max(attempt - 1, 0), 64)
        return float(min(self.backoff_ms * self.backoff_factor**exponent, self.max_backoff_ms))

    def is_retriable(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` is an instance of a whitelisted type (subclasses included)."""
        return isinstance(exc, tuple(self.retriable_errors))


def execute_with_retry(
    func: Callable[[], T],
    config: RetryConfig,
    *,
    operation: str = "operation",
    is_retryable: Callable[[BaseException], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    logger: Any | None = None,
) -> T:
    """Call ``func`` and return its result, retrying transient failures with backoff.

    ``func`` is called at most ``config.max_attempts`` times. An exception is retried
    when ``config.is_retriable(exc)`` (an instance of a type in
    ``config.retriable_errors``) or ``is_retryable(exc)`` is true; any other exception
    propagates at once, unchanged.
    Before each retry a warning ``retry.attempt`` is logged with ``attempt`` (the 1-based
    number of the attempt that just failed), ``max_attempts``, ``sleep_ms``,
    ``operation``, ``error_type`` and the sanitized, truncated ``error`` message, then
    ``sleep(sleep_ms / 1000)`` is called (``sleep`` takes seconds, like ``time.sleep``).
    When the last attempt fails too, its exception is re-raised unchanged.
    """
    log = logger if logger is not None else _logger
    attempt = 1
    while True:
        try:
            return func()
        except BaseException as exc:
            retryable = config.is_retriable(exc) or (is_retryable is not None and is_retryable(exc))
            if not retryable or attempt >= config.max_attempts:
                raise
            sleep_ms = config.sleep_ms_for(attempt)
            if config.jitter:
                # Jitter spreads simultaneous retries apart; not a security use of random.
                sleep_ms = random.uniform(0.0, sleep_ms)  # noqa: S311
            log.warning(
                "retry.attempt",
                attempt=attempt,
                max_attempts=config.max_attempts,
                sleep_ms=sleep_ms,
                operation=operation,
                error_type=type(exc).__name__,
                error=truncate(redact_text(str(exc)), _MAX_ERROR_CHARS),
            )
            sleep(sleep_ms / 1000)
            attempt += 1
