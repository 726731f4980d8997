"""Pipeline-wide options: error mode, error threshold, default retry policy, domain."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wdh_domain.errors import PipelineConfigError
from wdh_domain.pipelines._retry import RetryConfig

__all__ = ["PipelineConfig"]


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Options of a pipeline (stories 1.5 and 1.10).

    - ``stop_on_error``: ``True`` stops the run at the first failed row or failed step;
      ``False`` collects errors and continues.
    - ``error_threshold``: in collect mode, the run stops after a step when the fraction of
      the run's input rows that failed so far exceeds it (0.10 = more than 10 %).
    - ``max_retries``, ``retry_backoff_ms``, ``retry_on``: the retry policy of steps added
      with ``retry=True`` (see :meth:`retry_config`); steps may also get their own
      :class:`RetryConfig`.
    - ``domain``: the data domain named in error messages (``Domain: X``); the pipeline
      name is used when it is ``None``.
    - ``settings``: free-form values handed to steps as ``PipelineContext.config``.
    """

    stop_on_error: bool = True
    error_threshold: float = 0.10
    max_retries: int = 3
    retry_backoff_ms: int = 1000
    retry_on: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
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
        if self.retry_backoff_ms < 0:
            raise PipelineConfigError(
                f"PipelineConfig.retry_backoff_ms must be >= 0, got {self.retry_backoff_ms}",
                field="retry_backoff_ms",
            )
        # Validates max_retries and retry_on with RetryConfig's own checks.
        self.retry_config()

    def retry_config(self) -> RetryConfig:
        """Return the retry policy of steps added with ``retry=True``."""
        return RetryConfig(
            max_retries=self.max_retries,
            base_delay_s=self.retry_backoff_ms / 1000,
            retry_on=self.retry_on,
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
