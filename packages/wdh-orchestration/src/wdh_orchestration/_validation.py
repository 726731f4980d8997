"""The validation pipeline a domain declaration compiles to, and its data-quality metrics."""

from __future__ import annotations

import hashlib
from typing import Final

import pandas as pd

from wdh_domain.pipelines import (
    CheckRequiredColumnsStep,
    Pipeline,
    PipelineConfig,
    PipelineResult,
    ValidateSchemaStep,
)
from wdh_orchestration._domain import Domain

__all__ = [
    "build_chunk_pipeline",
    "build_validation_pipeline",
    "quality_metrics",
    "step_metric_name",
    "validate_rows",
]

_STEP_DURATION_PREFIX: Final = "step_duration_ms."
_METRIC_NAME_LIMIT: Final = 100  # data_quality_metrics.metric_name is VARCHAR(100)
_HASH_CHARS: Final = 8


def build_validation_pipeline(domain: Domain) -> Pipeline:
    """``<name>_validation``: the model's required columns present, then every row valid,
    checked column-wise (``ValidateSchemaStep``, compiled from the model).

    Invalid rows are collected, not fatal, until more than the domain's
    ``max_failure_rate`` of the file is invalid; then the run stops.
    """
    config = PipelineConfig(
        stop_on_error=False, error_threshold=domain.max_failure_rate, domain=domain.name
    )
    return (
        Pipeline(f"{domain.name}_validation", config)
        .add_step(CheckRequiredColumnsStep(required_columns=list(domain.required_columns)))
        .add_step(ValidateSchemaStep(model=domain.model))
    )


def build_chunk_pipeline(domain: Domain) -> Pipeline:
    """The domain's validation pipeline for one chunk of a streamed file: the same
    steps, collecting every invalid row without stopping.

    The domain's ``max_failure_rate`` is judged on the whole file, across chunks, by the
    streamed load (a bad chunk may be followed by good ones); only a missing required
    column or a step that breaks stops a chunk.
    """
    config = PipelineConfig(stop_on_error=False, error_threshold=1.0, domain=domain.name)
    return (
        Pipeline(f"{domain.name}_validation", config)
        .add_step(CheckRequiredColumnsStep(required_columns=list(domain.required_columns)))
        .add_step(ValidateSchemaStep(model=domain.model))
    )


def validate_rows(
    raw: pd.DataFrame, pipeline: Pipeline, *, execution_id: str | None = None
) -> PipelineResult:
    """Run *pipeline* on *raw* and return its result when it succeeded.

    *execution_id* (the run's audit id) becomes the pipeline run's id, so the pipeline's
    events and the ``pipeline_executions`` row share it.

    Raises:
        PipelineFailedError: the run stopped (a required column is missing, a step
            failed, or more rows are invalid than ``error_threshold`` allows); raised by
            ``PipelineResult.raise_for_status()``, whose message gives the reason first,
            then the first row errors.
    """
    result = pipeline.run(raw, execution_id=execution_id)
    result.raise_for_status()
    return result


def step_metric_name(step_name: str) -> str:
    """``step_duration_ms.<step_name>``, cut to fit ``metric_name`` (100 characters).

    A longer name keeps its beginning and ends with ``~`` and 8 hex digits of the full
    step name's SHA-256, so two long names that share their first 80-odd characters
    still get two metrics.
    """
    name = f"{_STEP_DURATION_PREFIX}{step_name}"
    if len(name) <= _METRIC_NAME_LIMIT:
        return name
    digest = hashlib.sha256(step_name.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    return f"{name[: _METRIC_NAME_LIMIT - _HASH_CHARS - 1]}~{digest}"


def quality_metrics(result: PipelineResult) -> dict[str, float | int]:
    """The ``data_quality_metrics`` of a validation run.

    Rows in, valid and failed, the failure rate, the whole pipeline's duration
    (``validation_duration_ms``) and one ``step_duration_ms.<step name>`` per step that
    ran (see :func:`step_metric_name`), in milliseconds. (The load's duration is recorded
    by the load.)
    """
    metrics = result.metrics
    step_durations = {
        step_metric_name(name): step.duration_ms for name, step in metrics.step_metrics.items()
    }
    return {
        "rows_read": metrics.rows_in,
        "rows_valid": metrics.rows_out,
        "rows_failed": result.rows_failed,
        "failure_rate": result.rows_failed / metrics.rows_in if metrics.rows_in else 0.0,
        "validation_duration_ms": metrics.duration_ms,
        **step_durations,
    }
