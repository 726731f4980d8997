"""Pipeline-wide options: error mode, error threshold, default retry policy, domain."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wdh_domain.errors import PipelineConfigError
from wdh_domain.pipelines._retry import DEFAULT_RETRIABLE_ERRORS, RetryConfig

__all__ = ["PipelineConfig"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Options of a pipeline (stories 1.5 and 1.10; the specification's four fields first).

    - ``stop_on_error``: ``True`` stops the run at the first failed row or failed step;
      ``False`` collects errors and continues.
    - ``max_retries``: retries after the first attempt for steps added with
      ``retry=True`` (3 = at most 4 attempts); :meth:`retry_config` turns it into
      ``RetryConfig(max_attempts=max_retries + 1, ...)``.
    - ``retry_backoff_ms``: the first backoff of that policy (1000 -> 1 s, 2 s, 4 s).
    - ``error_threshold``: in collect mode, the run stops after a step when the fraction of
      the run's input rows that failed so far exceeds it (0.10 = more than 10 %).
    - ``retriable_errors``: the whitelist of that policy (default ``ConnectionError``,
      ``TimeoutError``). Steps may also get their own :class:`RetryConfig`.
    - ``domain``: the data domain named in error messages (``Domain: X``); the pipeline
      name is used when it is ``None``.
    - ``settings``: free-form values handed to steps as ``PipelineContext.config``.
    """

    stop_on_error: bool = True
    max_retries: int = 3
    retry_backoff_ms: int = 1000
    error_threshold: float = 0.10
    retriable_errors: frozenset[type[BaseException]] = DEFAULT_RETRIABLE_ERRORS
    domain: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        threshold: object = self.error_threshold  # checked at runtime for untyped callers
        if not (isinstance(threshold, int | float) and math.isfinite(threshold)) or not (
            0.0 <= threshold <= 1.0
        ):
            raise PipelineConfigError(
                f"PipelineConfig.error_threshold must be a fraction between 0 and 1, "
                f"got {threshold!r}",
                field="error_threshold",
            )
        retries: object = self.max_retries
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise PipelineConfigError(
                f"PipelineConfig.max_retries must be >= 0, got {retries!r}",
                field="max_retries",
            )
        if self.retry_backoff_ms < 0:
            raise PipelineConfigError(
                f"PipelineConfig.retry_backoff_ms must be >= 0, got {self.retry_backoff_ms}",
                field="retry_backoff_ms",
            )
        # Validates (and normalizes to a frozenset) retriable_errors with RetryConfig's checks.
        object.__setattr__(self, "retriable_errors", self.retry_config().retriable_errors)

    def retry_config(self) -> RetryConfig:
        """Return the retry policy of steps added with ``retry=True``.

        ``max_retries`` counts retries, ``RetryConfig.max_attempts`` counts calls, so
        ``max_retries=3`` gives ``max_attempts=4`` (sleeps of 1 s, 2 s, 4 s by default).
        """
        return RetryConfig(
            max_attempts=self.max_retries + 1,
            backoff_ms=self.retry_backoff_ms,
            retriable_errors=self.retriable_errors,
        )

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> PipelineConfig:
        """Build a config from a plain dict (the specification's ``Pipeline(name, config)``).

        Keys naming a field of this class set that field; every other key goes to
        ``settings`` (and so to ``PipelineContext.config``).
        """
        names = {f.name for f in fields(cls)} - {"settings"}
        known = {key: value for key, value in options.items() if key in names}
        settings = dict(options.get("settings") or {})
        settings.update(
            (key, value) for key, value in options.items() if key not in names and key != "settings"
        )
        return cls(**known, settings=settings)
