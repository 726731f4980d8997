"""The error budget bounds the work: a step stops as soon as failures exceed it."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel, Field

from wdh_domain.pipelines import (
    Pipeline,
    PipelineConfig,
    PipelineContext,
    PipelineResult,
    StepResult,
    ValidateSchemaStep,
)

pytestmark = pytest.mark.unit


class Positive(BaseModel):
    n: int = Field(gt=0)
    label: str = Field(max_length=20)


class CountingReject:
    """Fails rows whose ``n`` is not positive; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        self.calls += 1
        return StepResult(row=row, errors=["not positive"] if int(row["n"]) <= 0 else [])


def _frame(rows: int, bad_every: int = 1) -> pd.DataFrame:
    n = [str(-i if i % bad_every == 0 else i + 1) for i in range(rows)]
    return pd.DataFrame({"n": n, "label": [f"row {i}" for i in range(rows)]}, dtype=object)


def _run(frame: pd.DataFrame, threshold: float, *steps: Any) -> PipelineResult:
    pipeline = Pipeline("budget", PipelineConfig(stop_on_error=False, error_threshold=threshold))
    for step in steps:
        pipeline.add_step(step)
    return pipeline.run(frame)


def test_row_step_stops_at_the_first_failure_over_the_threshold() -> None:
    step = CountingReject()

    result = _run(_frame(1000), 0.10, step)

    assert step.calls == 101  # 100 failures are allowed; the 101st stops the step
    assert not result.success
    assert result.stopped_at == "CountingReject"
    assert result.rows_failed == 101
    assert len(result.output_data) == 1000 - 101  # the input minus the failed rows
    assert result.metrics.step_metrics["CountingReject"].status == "stopped"
    assert result.errors["error_type"].iloc[-1] == "ERROR_THRESHOLD_EXCEEDED"
    assert "101 of 1000 input rows" in result.errors["message"].iloc[-1]


def test_schema_step_stops_after_the_chunk_that_exceeds_the_threshold() -> None:
    result = _run(_frame(1000), 0.10, ValidateSchemaStep(Positive, chunk_rows=50))

    assert not result.success
    assert result.rows_failed == 150  # three chunks of 50 checked, not 1000 rows
    assert result.metrics.step_metrics["ValidateSchemaStep"].status == "stopped"
    assert result.errors["error_type"].iloc[-1] == "ERROR_THRESHOLD_EXCEEDED"
    assert set(result.errors["code"].iloc[:-1]) == {"greater_than"}


def test_the_budget_is_shared_by_the_steps_of_a_run() -> None:
    frame = _frame(1000, bad_every=20)  # 50 rows fail the schema step
    second = CountingReject()
    frame["n"] = frame["n"].where(frame.index % 20 == 0, "1")
    frame.loc[frame.index[1:400:2], "label"] = "x" * 30  # 200 more fail on the label

    result = _run(frame, 0.10, ValidateSchemaStep(Positive), second)

    # the schema step fails 250 rows > 100 allowed: the run stops there
    assert result.stopped_at == "ValidateSchemaStep"
    assert second.calls == 0


def test_a_run_within_budget_completes() -> None:
    result = _run(_frame(1000, bad_every=10), 0.10, ValidateSchemaStep(Positive, chunk_rows=64))

    assert result.success
    assert result.rows_failed == 100
    assert len(result.output_data) == 900


def test_collect_mode_all_failing_rows_stay_within_three_times_the_frame() -> None:
    # sample-shaped text: every row fails on n, the other columns are carried along
    frame = _frame(20_000).assign(
        email=[f"user{i}@example.org" for i in range(20_000)],
        amount=[f"{i}.{i % 100:02d}" for i in range(20_000)],
        booked_on="2024-05-17",
        region="north",
    )
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    step = ValidateSchemaStep(Positive)

    tracemalloc.start()
    try:
        result = _run(frame, 1.0, step)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.rows_failed == 20_000
    assert len(result.errors) == 20_000
    assert peak <= 3 * frame_bytes, (peak, frame_bytes)
