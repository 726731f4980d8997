"""Retries with exponential backoff, only for whitelisted (transient) errors (Decision #4)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from wdh_domain._sanitize import sanitize_text, truncate
from wdh_domain.errors import PipelineConfigError

__all__ = ["RetryConfig", "execute_with_retry"]

T = TypeVar("T")

_logger = structlog.get_logger("wdh_domain.pipelines.retry")

_MAX_ERROR_CHARS = 300


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How often and how long to retry an operation that failed with a transient error.

    ``max_retries`` counts retries after the first attempt (3 means at most 4 attempts).
    The delay before retry ``n`` (0-based) is ``base_delay_s * backoff_factor ** n`` capped
    at ``max_delay_s`` — 1 s, 2 s, 4 s by default; with ``jitter`` it is drawn uniformly
    from ``[0, delay]`` ("full jitter"). Only exceptions that are instances of a type in
    ``retry_on`` (subclasses included) are retried, unless ``execute_with_retry`` is given
    an extra ``is_retryable`` predicate.
    """

    max_retries: int = 3
    base_delay_s: float = 1.0
    backoff_factor: float = 2.0
    max_delay_s: float = 30.0
    jitter: bool = False
    retry_on: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise PipelineConfigError(
                f"RetryConfig.max_retries must be >= 0, got {self.max_retries}",
                field="max_retries",
            )
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise PipelineConfigError(
                "RetryConfig delays must be >= 0, got "
                f"base_delay_s={self.base_delay_s}, max_delay_s={self.max_delay_s}",
                field="base_delay_s" if self.base_delay_s < 0 else "max_delay_s",
            )
        if self.backoff_factor < 1:
            raise PipelineConfigError(
                f"RetryConfig.backoff_factor must be >= 1, got {self.backoff_factor}",
                field="backoff_factor",
            )
        entries: tuple[object, ...] = self.retry_on  # checked at runtime for untyped callers
        for error_type in entries:
            if not (isinstance(error_type, type) and issubclass(error_type, BaseException)):
                raise PipelineConfigError(
                    f"RetryConfig.retry_on must hold exception types, got {error_type!r}",
                    field="retry_on",
                )

    def delay_for(self, retry_index: int) -> float:
        """Return the un-jittered delay in seconds before retry ``retry_index`` (0-based)."""
        # The exponent is bounded so that a large retry count cannot overflow a float.
        exponent = min(retry_index, 64)
        return float(min(self.base_delay_s * self.backoff_factor**exponent, self.max_delay_s))


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

    An exception is retried when it is an instance of ``config.retry_on`` or when
    ``is_retryable(exc)`` is true; any other exception propagates at once, unchanged.
    Each retry is logged (warning) as ``retry.attempt`` with ``attempt`` (1-based retry
    number), ``max_retries``, ``delay_s``, ``operation``, ``error_type`` and the sanitized
    ``error`` message, then ``sleep(delay_s)`` is called. When the last retry fails too,
    its exception is re-raised unchanged.
    """
    log = logger if logger is not None else _logger
    retry_index = 0
    while True:
        try:
            return func()
        except BaseException as exc:
            retryable = isinstance(exc, config.retry_on) or (
                is_retryable is not None and is_retryable(exc)
            )
            if not retryable or retry_index >= config.max_retries:
                raise
            delay_s = config.delay_for(retry_index)
            if config.jitter:
                # Jitter spreads simultaneous retries apart; not a security use of random.
                delay_s = random.uniform(0.0, delay_s)  # noqa: S311
            retry_index += 1
            log.warning(
                "retry.attempt",
                attempt=retry_index,
                max_retries=config.max_retries,
                delay_s=delay_s,
                operation=operation,
                error_type=type(exc).__name__,
                error=truncate(sanitize_text(str(exc)), _MAX_ERROR_CHARS),
            )
            sleep(delay_s)
