"""The sample validation pipeline and what ``validate_op`` hands to ``load_to_db_op``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from wdh_domain.pipelines import (
    CheckRequiredColumnsStep,
    Pipeline,
    PipelineBuilder,
    PipelineConfig,
    PipelineFailedError,
    PipelineResult,
    ValidateDataTypesStep,
)
from wdh_orchestration.sample import SAMPLE_DOMAIN, SAMPLE_REQUIRED_COLUMNS, SampleRecord

__all__ = [
    "ROW_ERRORS_SHOWN",
    "SAMPLE_PIPELINE_CONFIG",
    "STEP_DURATION_PREFIX",
    "ValidatedRows",
    "build_sample_pipeline",
    "quality_metrics",
    "validate_rows",
]

SAMPLE_PIPELINE_CONFIG: Final = PipelineConfig(
    stop_on_error=False,  # collect every invalid row; the valid ones are still loaded
    error_threshold=0.25,  # ...unless more than a quarter of the file is invalid
    domain=SAMPLE_DOMAIN,
)

ROW_ERRORS_SHOWN: Final = 3
"""Row errors quoted in the message of a failed validation (the rest are in the logs)."""


@dataclass(frozen=True, slots=True)
class ValidatedRows:
    """The rows that passed validation, with the counts the run's audit row records."""

    data: pd.DataFrame
    rows_read: int
    rows_failed: int


def build_sample_pipeline() -> Pipeline:
    """``sample_validation``: required columns present, then every row a valid `SampleRecord`."""
    return (
        PipelineBuilder("sample_validation")
        .with_config(SAMPLE_PIPELINE_CONFIG)
        .add_step(CheckRequiredColumnsStep(required_columns=list(SAMPLE_REQUIRED_COLUMNS)))
        .add_step(ValidateDataTypesStep(model=SampleRecord))
        .build()
    )


def validate_rows(
    raw: pd.DataFrame, pipeline: Pipeline, *, execution_id: str | None = None
) -> PipelineResult:
    """Run *pipeline* on *raw* and return its result when it succeeded.

    *execution_id* (the op's audit id) becomes the pipeline run's id, so the pipeline's
    events and the ``pipeline_executions`` row share it.

    Raises:
        PipelineFailedError: the run stopped (a required column is missing, a step
            failed, or more rows are invalid than ``error_threshold`` allows). The message
            gives the reason first, then up to :data:`ROW_ERRORS_SHOWN` row errors.
    """
    result = pipeline.run(raw, execution_id=execution_id)
    if result.success:
        return result
    # Errors without a row are the reason the run stopped; row errors illustrate it.
    reasons = [e.format() for e in result.error_details if e.row_number is None]
    row_errors = [e.format() for e in result.error_details if e.row_number is not None]
    message = f"pipeline '{result.pipeline_name}' stopped"
    if result.stopped_at:
        message += f" at step '{result.stopped_at}'"
    message += ": " + ("; ".join(reasons) or "no reason recorded")
    if row_errors:
        shown = "; ".join(row_errors[:ROW_ERRORS_SHOWN])
        message += f" | {len(row_errors)} row error(s), first: {shown}"
    raise PipelineFailedError(message, operation=result.stopped_at)


STEP_DURATION_PREFIX: Final = "step_duration_ms."
"""Prefix of the per-step duration metrics: ``step_duration_ms.<step name>``."""


def quality_metrics(result: PipelineResult) -> dict[str, float | int]:
    """The ``data_quality_metrics`` of a validation run.

    Rows in, valid and failed, the failure rate, the whole pipeline's duration
    (``validation_duration_ms``) and one ``step_duration_ms.<step name>`` per step that
    ran, in milliseconds. (The load's duration is recorded by the load.)
    """
    metrics = result.metrics
    step_durations = {
        f"{STEP_DURATION_PREFIX}{name}": step.duration_ms
        for name, step in metrics.step_metrics.items()
    }
    return {
        "rows_read": metrics.rows_in,
        "rows_valid": metrics.rows_out,
        "rows_failed": result.rows_failed,
        "failure_rate": result.rows_failed / metrics.rows_in if metrics.rows_in else 0.0,
        "validation_duration_ms": metrics.duration_ms,
        **step_durations,
    }
