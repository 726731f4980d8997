"""Failure paths of the runner: step bugs, leaked mutations, secrets, dtypes, execution ids."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from structlog.testing import capture_logs

from wdh_domain.pipelines import (
    Pipeline,
    PipelineConfig,
    PipelineContext,
    PipelineInputError,
    RetryConfig,
    StepResult,
)

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret

# The fields the specification's example payload gives every step event.
STEP_FIELDS = {
    "pipeline_name",
    "execution_id",
    "step_name",
    "step_type",
    "duration_ms",
    "rows_processed",
    "rows_failed",
    "warnings_count",
}


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3], "amount": [1.0, 2.0, 3.0]})


class MutateThenRaise:
    """A DataFrame step with a bug: it changes its input in place, then fails."""

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        df["amount"] = -999.0
        df.loc[df.index[0], "id"] = 42
        raise RuntimeError("half-way bug")


class LeakyRowBug:
    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["id"] == 2:
            raise ValueError(f"lookup failed for token={PLANTED} at postgresql://u:{PLANTED}@db/x")
        return StepResult(row=row)


class LeakyFrameBug:
    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        raise ConnectionError(f"cannot reach service, DB_PASS={PLANTED}")


# ------------------------------------------------------------ mutations do not leak


@pytest.mark.parametrize("mode", ["optional", "collect"])
def test_failed_dataframe_step_does_not_leak_its_in_place_changes(
    frame: pd.DataFrame, mode: str
) -> None:
    original = frame.copy(deep=True)
    pipeline = Pipeline("p", PipelineConfig(stop_on_error=False))
    pipeline.add_step(MutateThenRaise(), optional=mode == "optional")

    result = pipeline.run(frame)

    # "the data passes on unchanged": neither the output nor the caller's frame changed
    pd.testing.assert_frame_equal(result.output_data, original)
    pd.testing.assert_frame_equal(frame, original)
    assert result.success is (mode == "optional")


def test_each_retry_of_a_dataframe_step_gets_an_unchanged_frame(frame: pd.DataFrame) -> None:
    seen: list[list[float]] = []

    class MutateOnceThenWork:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            seen.append(df["amount"].tolist())
            if len(seen) == 1:
                df["amount"] = 0.0
                raise TimeoutError("slow")
            return df

    result = (
        Pipeline("p", sleep=lambda _: None)
        .add_step(MutateOnceThenWork(), retry=RetryConfig(max_attempts=2))
        .run(frame)
    )

    assert result.success
    assert seen == [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
    assert result.output_data["amount"].tolist() == [1.0, 2.0, 3.0]


def test_each_retry_of_a_row_step_gets_a_fresh_row(frame: pd.DataFrame) -> None:
    seen: list[dict[str, Any]] = []

    class MutateOnceThenWork:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            seen.append(dict(row))
            if "touched" not in row and len(seen) % 2 == 1:
                row["touched"] = True
                row["amount"] = -1.0
                raise ConnectionError("flaky")
            return StepResult(row=row)

    result = (
        Pipeline("p", sleep=lambda _: None).add_step(MutateOnceThenWork(), retry=True).run(frame)
    )

    assert result.success
    # the second attempt of each row saw the row as it came in, not the first attempt's edits
    assert all("touched" not in row for row in seen)
    assert result.output_data["amount"].tolist() == [1.0, 2.0, 3.0]
    assert "touched" not in result.output_data.columns


# ------------------------------------------------------------ step events


def test_step_failed_events_carry_the_step_completed_fields(frame: pd.DataFrame) -> None:
    class Reject2:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            return StepResult(row=row, errors=["no"] if row["id"] == 2 else [])

    class Identity:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return df

    runs = [
        Pipeline("p", PipelineConfig(stop_on_error=False))
        .add_step(Identity())
        .add_step(MutateThenRaise())
        .add_step(MutateThenRaise(), optional=True, name="Optional"),
        Pipeline("p").add_step(Reject2()),
        Pipeline("p", PipelineConfig(stop_on_error=False)).add_step(LeakyRowBug()),
    ]
    with capture_logs() as logs:
        results = [pipeline.run(frame) for pipeline in runs]

    completed = [e for e in logs if e["event"] == "pipeline.step.completed"]
    failed = [e for e in logs if e["event"] == "pipeline.step.failed"]
    assert len(completed) == 1
    assert [e["step_name"] for e in failed] == [
        "MutateThenRaise",
        "Optional",
        "Reject2",
        "LeakyRowBug",
    ]
    assert [e["log_level"] for e in failed] == ["error", "warning", "error", "error"]
    assert set(completed[0]) >= STEP_FIELDS
    for event in failed:
        assert STEP_FIELDS | {"error_type", "error"} <= set(event), event
    assert failed[0]["execution_id"] == results[0].execution_id
    assert failed[0]["error_type"] == "STEP_ERROR"
    assert (failed[2]["rows_processed"], failed[2]["rows_failed"]) == (3, 1)
    assert failed[2]["error_type"] == "VALIDATION_ERROR"


# ------------------------------------------------------------ secrets


def test_secrets_in_step_exceptions_never_reach_the_result_or_the_log(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    pipeline.add_step(LeakyRowBug()).add_step(LeakyFrameBug())

    with capture_logs() as logs:
        result = pipeline.run(frame)

    assert not result.success
    tracebacks = [tb or "" for tb in result.errors["traceback"]]
    everything = " ".join(
        [
            repr(result),
            *result.error_messages(),
            *tracebacks,
            result.errors.to_string(),
            str(logs),
        ]
    )
    assert PLANTED not in everything
    assert "token=***" in result.errors["message"].iloc[0]
    assert "postgresql://u:***@db/x" in result.errors["message"].iloc[0]
    assert any("DB_PASS=***" in error for error in result.error_messages())
    assert any("ValueError" in tb for tb in tracebacks)


# ------------------------------------------------------------ dtypes


def test_identity_row_step_keeps_every_column_dtype() -> None:
    frame = pd.DataFrame(
        {
            "nullable_int": pd.array([1, None, 3], dtype="Int64"),
            "full_int": pd.array([1, 2, 3], dtype="Int64"),
            "category": pd.Categorical(["a", "b", "a"]),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "text": pd.array(["x", None, "z"], dtype="string"),
            "small": pd.array([1, 2, 3], dtype="int32"),
            "single": pd.array([1.5, 2.25, 3.0], dtype="float32"),
            "when": pd.Series([pd.Timestamp("2024-01-01"), pd.NaT, pd.Timestamp("2024-01-03")]),
            "plain": [1.0, float("nan"), 2.0],
        }
    )

    class Identity:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            return StepResult(row=row)

    result = Pipeline("p").add_step(Identity()).run(frame)

    assert result.output_data.dtypes.to_dict() == frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(result.output_data, frame)


def test_a_value_that_no_longer_fits_keeps_the_inferred_dtype() -> None:
    frame = pd.DataFrame(
        {
            "count": pd.array([1, 2], dtype="Int64"),
            "size": pd.array([1, 2], dtype="uint8"),
            "kind": pd.Categorical(["a", "b"]),
            "other": pd.array([1, 2], dtype="Int64"),
        }
    )

    class Change:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            row.update({"count": row["count"] + 0.5, "size": 300, "kind": "new"})
            return StepResult(row=row)

    result = Pipeline("p").add_step(Change()).run(frame)

    out = result.output_data
    assert out["count"].tolist() == [1.5, 2.5]  # not truncated back into Int64
    assert out["size"].tolist() == [300, 300]  # not wrapped around into uint8
    assert out["kind"].tolist() == ["new", "new"]  # not turned into NaN by the categories
    assert out["other"].dtype == "Int64"  # an untouched column keeps its dtype


# ------------------------------------------------------------ execution id


def test_caller_can_give_the_execution_id(frame: pd.DataFrame) -> None:
    ids: list[str] = []

    class Record:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            ids.append(context.execution_id)
            return df

    pipeline = Pipeline("p").add_step(Record())
    with capture_logs() as logs:
        given = pipeline.run(frame, execution_id="dagster-run-42")
    default = pipeline.run(frame)

    assert given.execution_id == "dagster-run-42"
    assert ids[0] == "dagster-run-42"
    assert {e["execution_id"] for e in logs} == {"dagster-run-42"}
    assert default.execution_id.startswith("exec_")
    assert ids[1] == default.execution_id


@pytest.mark.parametrize("bad", ["", "  ", 42])
def test_invalid_execution_id_is_rejected(frame: pd.DataFrame, bad: object) -> None:
    with pytest.raises(PipelineInputError, match="execution_id to be a non-empty string"):
        Pipeline("p").run(frame, execution_id=bad)  # type: ignore[arg-type]
