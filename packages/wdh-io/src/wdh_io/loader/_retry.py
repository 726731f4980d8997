"""Which failures the loader retries: only transient ones, and each time the whole transaction.

The classification lives in :mod:`wdh_io._translate` (SQLSTATE 40001, 40P01,
class 08, 57P01 to 57P03, driver-detected disconnects → :class:`TransientDatabaseError`).
Data and constraint errors are never retried, and neither is
:class:`~wdh_io.errors.CommitOutcomeUnknownError`: when the connection dies during
COMMIT the rows may already be in, so running the load again could write them twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from wdh_domain.pipelines import RetryConfig, execute_with_retry
from wdh_io.errors import TransientDatabaseError

__all__ = ["DEFAULT_RETRY", "is_transient", "run_with_retry"]

T = TypeVar("T")

DEFAULT_RETRY = RetryConfig()


def is_transient(exc: BaseException) -> bool:
    """Whether running the whole transaction again may succeed."""
    return isinstance(exc, TransientDatabaseError)


def run_with_retry(
    func: Callable[[], T],
    config: RetryConfig,
    *,
    operation: str,
    sleep: Callable[[float], None] = time.sleep,
    logger: Any | None = None,
) -> T:
    """Call ``func`` (one whole transaction), retrying it only on transient errors."""
    return execute_with_retry(
        func, config, operation=operation, is_retryable=is_transient, sleep=sleep, logger=logger
    )
