"""Story 1.5: steps, mixed pipelines, result structure, logging, runs and ids."""

from __future__ import annotations

import re
import threading
from typing import Any

import pandas as pd
import pytest
from structlog.testing import capture_logs

from wdh_domain.pipelines import (
    ISSUE_COLUMNS,
    Pipeline,
    PipelineConfig,
    PipelineConfigError,
    PipelineContext,
    PipelineInputError,
    PipelineMetrics,
    PipelineResult,
    StepMetrics,
    StepResult,
    new_execution_id,
)

pytestmark = pytest.mark.unit


class AddColumn:
    def __init__(self, column: str, value: Any) -> None:
        self.column, self.value = column, value

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        return df.assign(**{self.column: self.value})


class InPlaceAssign:
    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        df["mutated"] = 1
        return df


class Double:
    name = "double_amount"

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        row["amount"] = row["amount"] * 2
        return StepResult(row=row)


class RecordContext:
    def __init__(self) -> None:
        self.seen: list[PipelineContext] = []

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        self.seen.append(context)
        return df


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "amount": [10.0, 20.0, 30.0]})


def test_dataframe_step_execution(frame: pd.DataFrame) -> None:
    result = Pipeline("p").add_step(AddColumn("source", "csv")).run(frame)

    assert result.success
    assert list(result.output_data["source"]) == ["csv"] * 3
    assert "source" not in frame.columns


def test_row_transform_step_execution(frame: pd.DataFrame) -> None:
    result = Pipeline("p").add_step(Double()).run(frame)

    assert result.success
    assert result.output_data["amount"].tolist() == [20.0, 40.0, 60.0]
    assert result.output_data["id"].tolist() == [1, 2, 3]
    assert str(result.output_data["id"].dtype) == "int64"
    assert frame["amount"].tolist() == [10.0, 20.0, 30.0]


def test_mixed_step_pipeline(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p").add_step(Double()).add_step(AddColumn("flag", True)).add_step(Double())

    result = pipeline.run(frame)

    assert result.output_data["amount"].tolist() == [40.0, 80.0, 120.0]
    assert result.output_data["flag"].tolist() == [True, True, True]
    assert list(result.metrics.step_metrics) == ["double_amount", "AddColumn", "double_amount#2"]
    assert [m.step_type for m in result.metrics.step_metrics.values()] == [
        "row_transform",
        "dataframe",
        "row_transform",
    ]


def test_pipeline_result_structure(frame: pd.DataFrame) -> None:
    result = Pipeline("p").add_step(Double()).run(frame)

    assert isinstance(result, PipelineResult)
    assert result.pipeline_name == "p"
    assert result.errors.empty
    assert list(result.errors.columns) == list(ISSUE_COLUMNS)
    assert result.warnings.empty
    assert result.failed_rows.empty
    assert list(result.failed_rows.columns) == ["_row", "_step", "id", "amount"]
    assert result.stopped_at is None
    assert isinstance(result.metrics, PipelineMetrics)
    assert (result.metrics.rows_in, result.metrics.rows_out, result.metrics.rows_failed) == (
        3,
        3,
        0,
    )
    assert result.metrics.duration_ms >= 0
    step = result.metrics.step_metrics["double_amount"]
    assert isinstance(step, StepMetrics)
    assert (step.rows_in, step.rows_out, step.errors_count, step.warnings_count) == (3, 3, 0, 0)
    assert step.status == "completed"
    result.raise_for_status()


def test_clean_runs_get_failed_rows_of_their_own_frames_shape(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p").add_step(Double())
    first, second = pipeline.run(frame).failed_rows, pipeline.run(frame).failed_rows
    first["note"] = []  # one run's frame changed: not the other's
    assert list(second.columns) == ["_row", "_step", "id", "amount"]
    assert second.dtypes.astype(str).tolist() == ["Int64", "object", *frame.dtypes.astype(str)]

    other = frame.astype({"id": "str"}).rename(columns={"amount": "total"})
    other.attrs = {"source": "file.csv"}
    failed = pipeline.run(other.assign(amount=1.0)).failed_rows
    assert list(failed.columns) == ["_row", "_step", "id", "total", "amount"]
    assert str(failed["id"].dtype) == "str"
    assert failed.attrs == {"source": "file.csv"}
    assert pipeline.run(frame).failed_rows.attrs == {}


def test_logging_events_carry_the_specified_fields(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("sample_validation").add_step(Double()).add_step(AddColumn("x", 1))

    with capture_logs() as logs:
        result = pipeline.run(frame)

    events = [entry["event"] for entry in logs]
    assert events == [
        "pipeline.started",
        "pipeline.step.started",
        "pipeline.step.completed",
        "pipeline.step.started",
        "pipeline.step.completed",
        "pipeline.completed",
    ]
    assert all(entry["execution_id"] == result.execution_id for entry in logs)
    assert all(entry["pipeline_name"] == "sample_validation" for entry in logs)
    completed = logs[2]
    assert completed["step_name"] == "double_amount"
    assert completed["step_type"] == "row_transform"
    assert completed["rows_processed"] == 3
    assert completed["rows_failed"] == 0
    assert completed["warnings_count"] == 0
    assert completed["duration_ms"] >= 0
    assert logs[-1]["success"] is True
    assert logs[-1]["rows_out"] == 3


def test_every_run_gets_its_own_context_and_unique_execution_id(frame: pd.DataFrame) -> None:
    recorder = RecordContext()
    pipeline = Pipeline("p", {"source": "unit", "stop_on_error": False}).add_step(recorder)

    ids = {pipeline.run(frame).execution_id for _ in range(50)}

    assert len(ids) == 50
    assert all(re.fullmatch(r"exec_\d{8}_\d{6}_[0-9a-f]{8}", i) for i in ids)
    assert len({id(context) for context in recorder.seen}) == 50
    context = recorder.seen[0]
    assert context.pipeline_name == "p"
    assert context.domain == "p"
    assert context.config == {"source": "unit"}
    assert context.timestamp.tzinfo is not None
    assert pipeline.config.stop_on_error is False


def test_execution_id_prefix_is_the_readable_timestamp() -> None:
    from datetime import UTC, datetime

    moment = datetime(2025, 11, 9, 10, 30, 0, tzinfo=UTC)
    first, second = new_execution_id(moment), new_execution_id(moment)

    assert first.startswith("exec_20251109_103000_")
    assert first != second
    assert re.fullmatch(r"exec_20251109_103000_[0-9a-f]{8}", first)


def test_execution_id_takes_a_given_suffix_and_converts_to_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    paris = datetime(2025, 11, 9, 11, 30, 5, tzinfo=timezone(timedelta(hours=1)))

    assert new_execution_id(paris, suffix="run-42") == "exec_20251109_103005_run-42"
    assert (
        new_execution_id(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), suffix="x")
        == "exec_20250102_030405_x"
    )
    assert re.fullmatch(r"exec_\d{8}_\d{6}_[0-9a-f]{8}", new_execution_id())


def test_concurrent_runs_from_threads_do_not_share_state() -> None:
    class Tag:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            row["execution_id"] = context.execution_id
            if row["value"] % 3 == 0:
                return StepResult(row=row, errors=["multiple of three"])
            return StepResult(row=row)

    pipeline = Pipeline("shared", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    pipeline.add_step(Tag())
    results: dict[int, PipelineResult] = {}
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        data = pd.DataFrame({"value": range(worker * 100, worker * 100 + 30)})
        barrier.wait()
        results[worker] = pipeline.run(data)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len({r.execution_id for r in results.values()}) == 8
    for worker, result in results.items():
        values = list(range(worker * 100, worker * 100 + 30))
        assert result.output_data["value"].tolist() == [v for v in values if v % 3]
        assert set(result.output_data["execution_id"]) == {result.execution_id}
        assert result.failed_rows["value"].tolist() == [v for v in values if v % 3 == 0]
        assert result.metrics.rows_failed == 10


def test_caller_frame_is_never_modified(frame: pd.DataFrame) -> None:
    original = frame.copy()

    result = Pipeline("p").add_step(InPlaceAssign()).run(frame)

    pd.testing.assert_frame_equal(frame, original)
    assert result.output_data["mutated"].tolist() == [1, 1, 1]


def test_pipeline_is_built_by_chaining_add_step(frame: pd.DataFrame) -> None:
    sleeps: list[float] = []
    pipeline = (
        Pipeline("built", {"domain": "annuity", "stop_on_error": False}, sleep=sleeps.append)
        .add_step(AddColumn("a", 1))
        .add_step(Double(), optional=True, name="maybe_double")
    )

    result = pipeline.run(frame)

    assert pipeline.name == "built"
    assert pipeline.step_names == ("AddColumn", "maybe_double")
    assert len(pipeline.steps) == 2
    assert pipeline.config.domain == "annuity"
    assert pipeline.config.stop_on_error is False
    assert result.output_data["amount"].tolist() == [20.0, 40.0, 60.0]
    assert "built" in repr(pipeline)


def test_run_rejects_what_is_not_a_dataframe() -> None:
    with pytest.raises(
        PipelineInputError,
        match=r"\[INPUT_ERROR\] Pipeline 'p'.run\(\) needs a pandas DataFrame, got list",
    ):
        Pipeline("p").run([{"a": 1}])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (object(), "object is not a pipeline step"),
        (AddColumn, "needs a step instance, got the class AddColumn"),
    ],
)
def test_add_step_rejects_non_steps(step: Any, message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        Pipeline("p").add_step(step)


def test_add_step_rejects_ambiguous_steps_and_bad_options() -> None:
    class Both:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return df

        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            return StepResult(row=row)

    with pytest.raises(PipelineConfigError, match="has both execute"):
        Pipeline("p").add_step(Both())
    with pytest.raises(PipelineConfigError, match="retry must be a RetryConfig"):
        Pipeline("p").add_step(Double(), retry=3)  # type: ignore[arg-type]
    with pytest.raises(PipelineConfigError, match="Step name must be a non-empty string"):
        Pipeline("p").add_step(Double(), name=" ")
    with pytest.raises(PipelineConfigError, match="Pipeline name must be a non-empty string"):
        Pipeline("")
    with pytest.raises(PipelineConfigError, match="must be a PipelineConfig or a mapping"):
        Pipeline("p", 3)  # type: ignore[arg-type]


def test_empty_frame_and_empty_pipeline(frame: pd.DataFrame) -> None:
    empty = frame.iloc[:0]

    result = Pipeline("p").add_step(Double()).add_step(AddColumn("x", 1)).run(empty)
    no_steps = Pipeline("p").run(frame)

    assert result.success
    assert len(result.output_data) == 0
    assert "x" in result.output_data.columns
    assert no_steps.success
    pd.testing.assert_frame_equal(no_steps.output_data, frame)


def test_frame_without_columns_reaches_row_steps_as_empty_rows() -> None:
    seen: list[dict[str, Any]] = []

    class Collect:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            seen.append(dict(row))
            return StepResult(row={"n": len(seen)})

    result = Pipeline("p").add_step(Collect()).run(pd.DataFrame(index=range(3)))

    assert seen == [{}, {}, {}]
    assert result.output_data["n"].tolist() == [1, 2, 3]
