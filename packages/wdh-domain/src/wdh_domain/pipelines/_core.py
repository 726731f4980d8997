"""``Pipeline``: an ordered list of steps, run any number of times (and from any thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

import pandas as pd
import structlog

from wdh_domain.errors import PipelineConfigError, PipelineInputError
from wdh_domain.pipelines._config import PipelineConfig
from wdh_domain.pipelines._metrics import StepType
from wdh_domain.pipelines._result import PipelineResult
from wdh_domain.pipelines._retry import RetryConfig
from wdh_domain.pipelines._runner import Run, StepSpec
from wdh_domain.pipelines._types import DataFrameStep, RowTransformStep, ValidationStep

__all__ = ["Pipeline"]

_logger = structlog.get_logger("wdh_domain.pipelines")

Step = DataFrameStep | RowTransformStep | ValidationStep


def _step_type(step: object) -> StepType:
    """Tell the step kinds apart by the methods they have (Decision #3).

    ``validate`` (with or without ``execute``): a validation step that rejects rows;
    ``execute``: a DataFrame step; ``apply``: a row step.
    """
    if isinstance(step, type):
        raise PipelineConfigError(
            f"add_step() needs a step instance, got the class {step.__name__}; "
            f"write add_step({step.__name__}(...))",
            field="step",
        )
    has_execute = callable(getattr(step, "execute", None))
    has_apply = callable(getattr(step, "apply", None))
    if has_execute and has_apply:
        raise PipelineConfigError(
            f"Step {type(step).__name__} has both execute() and apply(); a step is either "
            "a DataFrameStep (execute) or a RowTransformStep (apply)",
            field="step",
        )
    if callable(getattr(step, "validate", None)):
        return "validation"
    if has_execute:
        return "dataframe"
    if has_apply:
        return "row_transform"
    raise PipelineConfigError(
        f"{type(step).__name__} is not a pipeline step: a DataFrameStep defines "
        "execute(df, context) and a RowTransformStep defines apply(row, context)",
        field="step",
    )


def _base_name(step: object, name: str | None) -> str:
    chosen = name if name is not None else getattr(step, "name", None)
    if chosen is None:
        return type(step).__name__
    if not isinstance(chosen, str) or not chosen.strip():
        raise PipelineConfigError(
            f"Step name must be a non-empty string, got {chosen!r}", field="name"
        )
    return chosen


def _unique_name(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    counter = 2
    while f"{base}#{counter}" in taken:
        counter += 1
    return f"{base}#{counter}"


def _coerce_config(config: PipelineConfig | Mapping[str, Any] | None) -> PipelineConfig:
    if config is None:
        return PipelineConfig()
    if isinstance(config, PipelineConfig):
        return config
    if isinstance(config, Mapping):
        return PipelineConfig.from_mapping(config)
    raise PipelineConfigError(
        f"Pipeline config must be a PipelineConfig or a mapping, got {type(config).__name__}",
        field="config",
    )


class Pipeline:
    """Executes its steps in order over a DataFrame (stories 1.5 and 1.10).

    ``config`` is a :class:`PipelineConfig` or a plain mapping (see
    :meth:`PipelineConfig.from_mapping`). A pipeline keeps only its configuration and
    steps; everything about a run (context, execution id, failures, metrics) lives in
    that run, so one instance can run many times, from several threads at once.
    ``logger`` (a structlog logger) and ``sleep`` (used between retries) can be injected.
    """

    def __init__(
        self,
        name: str,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        logger: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        candidate: object = name  # checked at runtime for untyped callers
        if not isinstance(candidate, str) or not candidate.strip():
            raise PipelineConfigError(
                f"Pipeline name must be a non-empty string, got {name!r}", field="name"
            )
        self._name = name
        self._config = _coerce_config(config)
        self._specs: tuple[StepSpec, ...] = ()
        self._lock = threading.Lock()
        self._logger = logger if logger is not None else _logger
        self._sleep = sleep

    @property
    def name(self) -> str:
        """The pipeline's name (``pipeline_name`` in logs and results)."""
        return self._name

    @property
    def config(self) -> PipelineConfig:
        """The pipeline's configuration."""
        return self._config

    @property
    def steps(self) -> tuple[Step, ...]:
        """The step objects, in execution order."""
        return tuple(spec.step for spec in self._specs)

    @property
    def step_names(self) -> tuple[str, ...]:
        """The unique step names (keys of ``metrics.step_metrics``), in execution order."""
        return tuple(spec.name for spec in self._specs)

    def add_step(
        self,
        step: Step,
        *,
        optional: bool = False,
        retry: RetryConfig | bool | None = None,
        name: str | None = None,
    ) -> Self:
        """Append a step and return the pipeline (builder style).

        The step's name is ``name``, else its ``name`` attribute, else its class name;
        a name already taken gets a ``#2``, ``#3``... suffix. An ``optional`` step that
        raises is logged as a warning and the data passes on unchanged (its row errors
        become warnings too). ``retry=True`` retries the step on the pipeline's retry
        policy (:meth:`PipelineConfig.retry_config`); a :class:`RetryConfig` gives it its
        own. DataFrame steps are retried as a whole, row steps per row.
        """
        step_type = _step_type(step)
        base = _base_name(step, name)
        retry_config: RetryConfig | None
        if retry is True:
            retry_config = self._config.retry_config()
        elif isinstance(retry, RetryConfig):
            retry_config = retry
        elif retry is None or retry is False:
            retry_config = None
        else:
            raise PipelineConfigError(
                f"retry must be a RetryConfig, True, False or None, got {retry!r}",
                field="retry",
            )
        with self._lock:
            unique = _unique_name(base, {spec.name for spec in self._specs})
            spec = StepSpec(
                step=step, name=unique, step_type=step_type, optional=optional, retry=retry_config
            )
            self._specs = (*self._specs, spec)
        return self

    def run(self, initial_data: pd.DataFrame, *, execution_id: str | None = None) -> PipelineResult:
        """Run every step over ``initial_data`` and return a :class:`PipelineResult`.

        Never raises for a row-level problem or a failing step: those are reported in
        the result (``success=False`` when a required step failed or the run stopped).
        ``execution_id`` lets a caller that already has one (a Dagster run writing an
        audit row, say) share it with the run's context, logs and result; by default
        each run gets a new unique id (``exec_%Y%m%d_%H%M%S_<random>``). Raises
        :class:`~wdh_domain.errors.PipelineInputError` when ``initial_data`` is not a
        DataFrame or ``execution_id`` is not a non-empty string. The caller's frame is
        never modified.
        """
        domain = self._config.domain or self._name
        if not isinstance(initial_data, pd.DataFrame):
            raise PipelineInputError(
                f"Pipeline '{self._name}'.run() needs a pandas DataFrame, got "
                f"{type(initial_data).__name__}",
                operation="run",
                domain=domain,
            )
        candidate: object = execution_id  # checked at runtime for untyped callers
        if candidate is not None and (not isinstance(candidate, str) or not candidate.strip()):
            raise PipelineInputError(
                f"Pipeline '{self._name}'.run() needs execution_id to be a non-empty string "
                f"or None, got {execution_id!r}",
                operation="run",
                domain=domain,
                field="execution_id",
            )
        return Run(
            execution_id=execution_id,
            pipeline_name=self._name,
            config=self._config,
            specs=self._specs,
            initial_data=initial_data,
            logger=self._logger,
            sleep=self._sleep,
        ).execute()

    def __repr__(self) -> str:
        return f"Pipeline(name={self._name!r}, steps={list(self.step_names)!r})"
