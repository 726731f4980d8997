"""Run and step metrics (story 1.10), embedded in every ``PipelineResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PipelineMetrics", "StepMetrics", "StepStatus", "StepType"]

StepType = Literal["dataframe", "validation", "row_transform"]
"""``dataframe``: ``execute(df, context)``; ``validation``: ``validate(df, context,
max_failures=...)`` (rejects rows, e.g. ``ValidateSchemaStep``); ``row_transform``:
``apply(row, context)``."""

StepStatus = Literal["completed", "failed", "optional_failed", "stopped"]
"""``completed``: the step ran to its end (rows may have failed);
``failed``: a required step raised, or a row step's ``apply`` raised an unexpected
exception (a bug, not a row error) on at least one row; ``optional_failed``: an optional
step raised and the data passed on unchanged; ``stopped``: the run stopped inside this
step, at a row error (``stop_on_error``) or when the failed rows exceeded the error budget."""


@dataclass(frozen=True, slots=True)
class StepMetrics:
    """Metrics of one executed step.

    ``duration_ms`` is rounded to 3 places (1 µs), like every duration the run reports.
    ``rows_failed`` counts the rows this step removed from the output as failed;
    ``errors_count`` and ``warnings_count`` count individual messages (a row with two
    field errors counts 2; a failed step counts 1).
    """

    step_name: str
    step_type: StepType
    duration_ms: float
    rows_in: int
    rows_out: int
    errors_count: int = 0
    warnings_count: int = 0
    rows_failed: int = 0
    status: StepStatus = "completed"


@dataclass(frozen=True, slots=True)
class PipelineMetrics:
    """Metrics of one run; ``step_metrics`` is keyed by step name, in execution order.

    Steps after the one where a run stopped did not execute and have no entry.
    ``duration_ms`` (the whole run) is rounded to 3 places.
    """

    duration_ms: float
    rows_in: int
    rows_out: int
    rows_failed: int
    errors_count: int = 0
    warnings_count: int = 0
    step_metrics: dict[str, StepMetrics] = field(default_factory=dict)
