"""Story 1.10: error modes, threshold, optional steps, retries, metrics, error context."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from wdh_domain.errors import DataValidationError, MissingColumnsError
from wdh_domain.pipelines import (
    ROW_COLUMN,
    ROW_ERRORS_SHOWN,
    CheckRequiredColumnsStep,
    Pipeline,
    PipelineConfig,
    PipelineConfigError,
    PipelineContext,
    PipelineFailedError,
    PipelineResult,
    RetryConfig,
    RowIssue,
    StepResult,
    ValidateSchemaStep,
)

pytestmark = pytest.mark.unit


def failed_row_numbers(result: PipelineResult) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in result.failed_rows["_row"]]


def row_data(result: PipelineResult, index: int) -> dict[str, Any]:
    record = result.failed_rows.drop(columns=["_row", "_step"]).iloc[index]
    return {
        str(key): value.item() if hasattr(value, "item") else value for key, value in record.items()
    }


class RejectNegative:
    """Fails rows with a negative amount; warns about zero amounts."""

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["amount"] < 0:
            return StepResult(
                row=row, errors=[RowIssue("amount must not be negative", field="amount")]
            )
        if row["amount"] == 0:
            return StepResult(row=row, warnings=["amount is zero"])
        return StepResult(row=row)


class RaiseValidation:
    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["id"] == 2:
            raise DataValidationError("id 2 is blocked", field="id")
        return StepResult(row=row)


class Buggy:
    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["id"] == 3:
            return StepResult(row={**row, "ratio": 1 / 0})
        return StepResult(row=row)


class BrokenFrameStep:
    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        raise KeyError("no_such_column")


class Tag:
    def __init__(self, column: str) -> None:
        self.column = column

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        return df.assign(**{self.column: True})


class Flaky:
    """Raises ConnectionError ``failures`` times, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"lookup service unreachable ({self.calls})")
        return df.assign(enriched=True)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [1, 2, 3, 4, 5], "amount": [10.0, -1.0, 0.0, -5.0, 7.0]})


def collect(threshold: float = 1.0, **options: Any) -> PipelineConfig:
    return PipelineConfig(stop_on_error=False, error_threshold=threshold, **options)


# ------------------------------------------------------------------ error modes


def test_collect_mode_removes_failed_rows_and_continues(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p", collect(domain="annuity")).add_step(RejectNegative())
    pipeline.add_step(Tag("checked"))

    result = pipeline.run(frame)

    assert result.success
    assert result.output_data["id"].tolist() == [1, 3, 5]
    assert result.output_data.index.tolist() == [0, 2, 4]
    assert result.output_data["checked"].all()
    assert failed_row_numbers(result) == [1, 3]
    assert row_data(result, 0) == {"id": 2, "amount": -1.0}
    assert result.failed_rows["_step"].tolist() == ["RejectNegative"] * 2
    assert result.error_messages() == [
        "[VALIDATION_ERROR] amount must not be negative | Domain: annuity | Row: 1 | Field: amount",
        "[VALIDATION_ERROR] amount must not be negative | Domain: annuity | Row: 3 | Field: amount",
    ]
    assert result.warning_messages() == ["[WARNING] amount is zero | Domain: annuity | Row: 2"]
    assert result.warnings["row"].tolist() == [2]


def test_stop_on_error_stops_at_the_first_failed_row(frame: pd.DataFrame) -> None:
    tagger = Tag("after")
    pipeline = Pipeline("p", PipelineConfig(stop_on_error=True))
    pipeline.add_step(Tag("before")).add_step(RejectNegative()).add_step(tagger)

    with capture_logs() as logs:
        result = pipeline.run(frame)

    assert not result.success
    assert result.stopped_at == "RejectNegative"
    # data as of the last completed step, tagged by the first step only, minus the failed
    # row: it is in failed_rows and never in both places
    assert result.output_data["id"].tolist() == [1, 3, 4, 5]
    assert result.output_data["before"].all()
    assert "after" not in result.output_data.columns
    assert failed_row_numbers(result) == [1]
    assert len(result.errors) == 1
    assert list(result.metrics.step_metrics) == ["Tag", "RejectNegative"]
    stopped = result.metrics.step_metrics["RejectNegative"]
    assert (stopped.status, stopped.rows_in, stopped.rows_out, stopped.rows_failed) == (
        "stopped",
        5,
        4,
        1,
    )
    assert (result.metrics.rows_out, result.metrics.rows_failed) == (4, 1)
    failed = [e for e in logs if e["event"] == "pipeline.step.failed"]
    assert failed[0]["step_name"] == "RejectNegative"
    assert failed[0]["reason"] == "row_error"
    assert logs[-1]["event"] == "pipeline.completed"
    assert logs[-1]["success"] is False
    with pytest.raises(PipelineFailedError, match="failed at step 'RejectNegative'"):
        result.raise_for_status()


def test_stop_on_error_stops_at_a_failing_step(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p").add_step(Tag("a")).add_step(BrokenFrameStep()).add_step(Tag("b"))

    with capture_logs() as logs:
        result = pipeline.run(frame)

    assert not result.success
    assert result.stopped_at == "BrokenFrameStep"
    assert list(result.output_data.columns) == ["id", "amount", "a"]
    detail = result.errors.iloc[0]
    assert detail["error_type"] == "STEP_ERROR"
    assert detail["message"] == "Step 'BrokenFrameStep' raised KeyError: 'no_such_column'"
    assert "in execute" in detail["traceback"]
    assert "raise KeyError" in detail["traceback"]
    failed = next(e for e in logs if e["event"] == "pipeline.step.failed")
    assert failed["log_level"] == "error"
    assert "KeyError" in failed["traceback"]
    assert result.metrics.step_metrics["BrokenFrameStep"].status == "failed"


def test_collect_mode_reports_a_failed_step_and_continues(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p", collect()).add_step(BrokenFrameStep()).add_step(Tag("b"))

    result = pipeline.run(frame)

    assert not result.success
    assert result.stopped_at is None
    assert result.output_data["b"].all()
    assert len(result.output_data) == 5
    assert result.error_messages()[0].startswith(
        "[STEP_ERROR] Step 'BrokenFrameStep' raised KeyError"
    )


def test_error_threshold_stops_the_run_naming_step_rate_and_threshold(
    frame: pd.DataFrame,
) -> None:
    pipeline = Pipeline("p", collect(threshold=0.3)).add_step(RejectNegative()).add_step(Tag("t"))

    result = pipeline.run(frame)

    assert not result.success
    assert result.stopped_at == "RejectNegative"
    assert result.error_messages()[-1] == (
        "[ERROR_THRESHOLD_EXCEEDED] Step 'RejectNegative': failed row rate 40.00% "
        "(2 of 5 input rows) exceeds error_threshold 30.00%; stopped early | Domain: p"
    )
    # stopped inside the step at the second failure: the data as it came in, minus it
    assert result.output_data["id"].tolist() == [1, 3, 5]
    assert "t" not in result.output_data.columns
    assert len(result.output_data) + len(result.failed_rows) == len(frame)


def test_raise_for_status_gives_the_reason_first_then_the_first_row_errors() -> None:
    amounts = [-1.0, -2.0, 3.0, -4.0, -5.0, 6.0]
    frame = pd.DataFrame({"id": range(1, 7), "amount": amounts})
    pipeline = Pipeline("p", collect(threshold=0.5)).add_step(RejectNegative())
    result = pipeline.run(frame, execution_id="exec_1")

    with pytest.raises(PipelineFailedError) as raised:
        result.raise_for_status()

    row_error = (
        "[VALIDATION_ERROR] amount must not be negative | Domain: p | Row: {} | Field: amount"
    )
    assert ROW_ERRORS_SHOWN == 3
    assert raised.value.context.message == (
        "Pipeline 'p' (exec_1) failed at step 'RejectNegative': "
        "[ERROR_THRESHOLD_EXCEEDED] Step 'RejectNegative': failed row rate 66.67% "
        "(4 of 6 input rows) exceeds error_threshold 50.00%; stopped early | Domain: p"
        " | 4 row error(s), first: " + "; ".join(row_error.format(n) for n in (0, 1, 3))
    )
    assert raised.value.context.operation == "RejectNegative"


def test_raise_for_status_of_a_run_stopped_at_a_row_error_quotes_the_row_error(
    frame: pd.DataFrame,
) -> None:
    result = Pipeline("p").add_step(RejectNegative()).run(frame, execution_id="exec_2")

    with pytest.raises(PipelineFailedError) as raised:
        result.raise_for_status()

    assert raised.value.context.message == (
        "Pipeline 'p' (exec_2) failed at step 'RejectNegative': 1 row error(s), first: "
        "[VALIDATION_ERROR] amount must not be negative | Domain: p | Row: 1 | Field: amount"
    )
    result.success = True
    result.raise_for_status()  # a successful run raises nothing


def test_a_missing_column_is_said_once_not_again_as_every_rows_missing_field() -> None:
    class Amount(BaseModel):
        id: int
        amount: float

    frame = pd.DataFrame({"id": ["1", "x"]}, dtype="str")
    pipeline = (
        Pipeline("p", collect())
        .add_step(CheckRequiredColumnsStep(["id", "amount"]))
        .add_step(ValidateSchemaStep(Amount))
    )
    result = pipeline.run(frame, execution_id="exec_3")

    with pytest.raises(PipelineFailedError) as raised:
        result.raise_for_status()

    message = raised.value.context.message
    assert "Missing required column(s): amount" in message
    assert "Field required" not in message  # every row's "missing" amount: said already
    assert message.endswith(  # a row error of another field is still quoted
        "1 row error(s), first: [VALIDATION_ERROR] Input should be a valid integer, unable "
        "to parse string as an integer (got 'x') | Domain: p | Row: 1 | Field: id"
    )


def test_raise_for_status_of_a_failed_step_in_collect_mode(frame: pd.DataFrame) -> None:
    result = Pipeline("p", collect()).add_step(BrokenFrameStep()).run(frame, execution_id="e")

    with pytest.raises(PipelineFailedError) as raised:
        result.raise_for_status()

    assert raised.value.context.message == (
        "Pipeline 'p' (e) failed: [STEP_ERROR] Step 'BrokenFrameStep' raised "
        "KeyError: 'no_such_column' | Domain: p"
    )
    assert raised.value.context.operation is None


def test_error_threshold_at_the_rate_does_not_stop(frame: pd.DataFrame) -> None:
    result = Pipeline("p", collect(threshold=0.4)).add_step(RejectNegative()).run(frame)

    assert result.success
    assert result.metrics.rows_failed == 2


def test_missing_columns_fail_the_run_with_a_clear_message(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p", {"domain": "sample"})
    pipeline.add_step(CheckRequiredColumnsStep(required_columns=["id", "amount", "date", "name"]))

    result = pipeline.run(frame)

    assert not result.success
    assert result.error_messages() == [
        (
            "[MISSING_COLUMNS] Step 'CheckRequiredColumnsStep' failed: Missing required column(s): "
            "date, name; columns present: id, amount | Domain: sample | Field: date, name"
        )
    ]
    assert result.errors["traceback"].tolist() == [None]


def test_row_step_raising_data_validation_error_fails_only_that_row(frame: pd.DataFrame) -> None:
    result = Pipeline("p", collect()).add_step(RaiseValidation()).run(frame)

    assert result.success
    assert result.output_data["id"].tolist() == [1, 3, 4, 5]
    error = result.errors.iloc[0]
    assert (error["error_type"], error["field"], error["row"]) == ("VALIDATION_ERROR", "id", 1)
    assert (error["step"], error["message"]) == ("RaiseValidation", "id 2 is blocked")
    assert row_data(result, 0) == {"id": 2, "amount": -1.0}


def test_bug_in_a_row_step_is_reported_with_its_traceback(frame: pd.DataFrame) -> None:
    with capture_logs() as logs:
        result = Pipeline("p", collect()).add_step(Buggy()).add_step(Tag("next")).run(frame)

    # the bug fails the step and the run, but the other rows go on (collect mode)
    assert not result.success
    assert result.stopped_at is None
    assert result.output_data["id"].tolist() == [1, 2, 4, 5]
    assert result.output_data["next"].all()
    error = result.errors.iloc[0]
    assert error["error_type"] == "STEP_ERROR"
    assert error["message"] == "Step 'Buggy' raised ZeroDivisionError: division by zero"
    assert error["row"] == 2
    assert "1 / 0" in error["traceback"]
    step_error = result.errors.iloc[-1]
    assert step_error["row"] is pd.NA
    assert step_error["message"] == (
        "Step 'Buggy' raised an exception on 1 row(s); first: "
        "Step 'Buggy' raised ZeroDivisionError: division by zero"
    )
    metrics = result.metrics.step_metrics["Buggy"]
    assert (metrics.status, metrics.rows_out, metrics.rows_failed, metrics.errors_count) == (
        "failed",
        4,
        1,
        2,
    )
    logged = next(e for e in logs if e["event"] == "pipeline.step.failed")
    assert logged["log_level"] == "error"
    assert logged["step_name"] == "Buggy"
    assert logged["reason"] == "row_exceptions"
    assert logged["row_exceptions"] == 1
    assert logged["error_type"] == "STEP_ERROR"
    assert "ZeroDivisionError" in logged["traceback"]
    assert not any(
        e["event"] == "pipeline.step.completed" and e["step_name"] == "Buggy" for e in logs
    )


def test_bug_in_a_row_step_in_stop_mode_fails_the_step_and_stops(frame: pd.DataFrame) -> None:
    result = Pipeline("p").add_step(Buggy()).add_step(Tag("next")).run(frame)

    assert not result.success
    assert result.stopped_at == "Buggy"
    assert result.output_data["id"].tolist() == [1, 2, 4, 5]
    assert "next" not in result.output_data.columns
    assert failed_row_numbers(result) == [2]
    assert result.errors["traceback"].iloc[0] is not None
    assert result.metrics.step_metrics["Buggy"].status == "failed"
    assert result.metrics.step_metrics["Buggy"].rows_out == 4


def test_only_the_first_raising_row_of_a_step_keeps_a_traceback() -> None:
    class AlwaysRaises:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            raise ValueError(f"bad id {row['id']}")

    data = pd.DataFrame({"id": range(10_000)})

    result = Pipeline("p", collect()).add_step(AlwaysRaises()).run(data)

    assert not result.success
    assert result.rows_failed == 10_000
    row_errors = result.errors[result.errors["row"].notna()]
    with_traceback = row_errors[row_errors["traceback"].notna()]
    assert with_traceback["row"].tolist() == [0]
    assert row_errors["message"].iloc[-1] == "Step 'AlwaysRaises' raised ValueError: bad id 9999"
    assert row_errors["error_type"].iloc[-1] == "STEP_ERROR"
    step_error = result.errors.iloc[-1]
    assert step_error["row"] is pd.NA
    assert step_error["message"].startswith(
        "Step 'AlwaysRaises' raised an exception on 10000 row(s)"
    )
    assert step_error["traceback"] == with_traceback["traceback"].iloc[0]
    assert "ValueError: bad id 0" in step_error["traceback"]


def test_dataframe_step_returning_something_else_is_a_step_error(frame: pd.DataFrame) -> None:
    class ReturnsNone:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return None  # type: ignore[return-value]

    result = Pipeline("p").add_step(ReturnsNone()).run(frame)

    assert not result.success
    assert "returned NoneType, expected a pandas DataFrame" in result.error_messages()[0]


def test_row_step_needs_unique_columns() -> None:
    data = pd.DataFrame([[1, 2]], columns=["a", "a"])

    result = Pipeline("p").add_step(RejectNegative()).run(data)

    assert not result.success
    assert "needs unique column names; duplicated: a" in result.error_messages()[0]


# ------------------------------------------------------------------ optional steps


def test_optional_dataframe_step_failure_is_a_warning(frame: pd.DataFrame) -> None:
    pipeline = Pipeline("p").add_step(BrokenFrameStep(), optional=True).add_step(Tag("next"))

    with capture_logs() as logs:
        result = pipeline.run(frame)

    assert result.success
    assert result.errors.empty
    assert result.output_data["next"].all()
    assert result.warning_messages()[0].startswith(
        "[OPTIONAL_STEP_FAILED] Optional step 'BrokenFrameStep' failed and was skipped"
    )
    failed = next(e for e in logs if e["event"] == "pipeline.step.failed")
    assert failed["log_level"] == "warning"
    assert failed["optional"] is True
    assert failed["error_type"] == "OPTIONAL_STEP_FAILED"  # the log says what the result says
    assert failed["error"] == result.warning_messages()[0]
    metrics = result.metrics.step_metrics["BrokenFrameStep"]
    assert (metrics.status, metrics.warnings_count, metrics.errors_count) == (
        "optional_failed",
        1,
        0,
    )


def test_optional_row_step_that_raises_leaves_the_data_unchanged(frame: pd.DataFrame) -> None:
    class WarnThenBreak:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            if row["id"] == 4:
                raise RuntimeError("enrichment service down")
            return StepResult(row={**row, "amount": 0.0}, warnings=["touched"])

    result = Pipeline("p").add_step(WarnThenBreak(), optional=True).run(frame)

    assert result.success
    pd.testing.assert_frame_equal(result.output_data, frame)
    assert len(result.warnings) == 1
    assert "enrichment service down" in result.warning_messages()[0]


def test_optional_row_step_row_errors_become_warnings(frame: pd.DataFrame) -> None:
    result = (
        Pipeline("p")
        .add_step(RejectNegative(), optional=True)
        .add_step(RaiseValidation(), optional=True)
        .run(frame)
    )

    assert result.success
    assert result.failed_rows.empty
    assert result.output_data["id"].tolist() == [1, 2, 3, 4, 5]
    assert len(result.warnings) == 4  # two negatives, one zero, one blocked id


# ------------------------------------------------------------------ retries


def test_step_with_retry_recovers_from_transient_errors(frame: pd.DataFrame) -> None:
    sleeps: list[float] = []
    flaky = Flaky(failures=2)
    pipeline = Pipeline("p", PipelineConfig(retry_backoff_ms=100), sleep=sleeps.append)
    pipeline.add_step(flaky, retry=True)

    with capture_logs() as logs:
        result = pipeline.run(frame)

    assert result.success
    assert result.output_data["enriched"].all()
    assert flaky.calls == 3
    assert sleeps == [0.1, 0.2]
    attempts = [e for e in logs if e["event"] == "retry.attempt"]
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[0]["operation"] == "p.Flaky"
    assert attempts[0]["error_type"] == "ConnectionError"
    assert attempts[0]["execution_id"] == result.execution_id


def test_step_retries_exhausted_fail_the_step(frame: pd.DataFrame) -> None:
    sleeps: list[float] = []
    flaky = Flaky(failures=10)
    retry = RetryConfig(max_attempts=3, backoff_ms=1000)
    pipeline = Pipeline("p", sleep=sleeps.append).add_step(flaky, retry=retry)

    result = pipeline.run(frame)

    assert not result.success
    assert flaky.calls == 3
    assert sleeps == [1.0, 2.0]
    assert "ConnectionError: lookup service unreachable (3)" in result.error_messages()[0]


def test_row_step_with_retry_retries_each_row(frame: pd.DataFrame) -> None:
    calls: dict[int, int] = {}

    class FlakyRow:
        def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
            calls[row["id"]] = calls.get(row["id"], 0) + 1
            if calls[row["id"]] == 1:
                raise TimeoutError("slow lookup")
            return StepResult(row=row)

    sleeps: list[float] = []
    result = Pipeline("p", sleep=sleeps.append).add_step(FlakyRow(), retry=True).run(frame)

    assert result.success
    assert len(result.output_data) == 5
    assert calls == {1: 2, 2: 2, 3: 2, 4: 2, 5: 2}
    assert sleeps == [1.0] * 5


def test_non_retryable_error_is_not_retried(frame: pd.DataFrame) -> None:
    sleeps: list[float] = []
    result = Pipeline("p", sleep=sleeps.append).add_step(BrokenFrameStep(), retry=True).run(frame)

    assert not result.success
    assert sleeps == []


# ------------------------------------------------------------------ metrics


def test_durations_are_rounded_to_microseconds(frame: pd.DataFrame) -> None:
    result = Pipeline("p").add_step(Tag("a")).add_step(RejectNegative()).run(frame)

    durations = [result.metrics.duration_ms] + [
        step.duration_ms for step in result.metrics.step_metrics.values()
    ]
    assert all(duration == round(duration, 3) >= 0 for duration in durations)


def test_per_step_metrics_have_correct_values(frame: pd.DataFrame) -> None:
    class DropFirst:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return df.iloc[1:]

    pipeline = Pipeline("p", collect()).add_step(DropFirst()).add_step(RejectNegative())

    result = pipeline.run(frame)

    drop = result.metrics.step_metrics["DropFirst"]
    reject = result.metrics.step_metrics["RejectNegative"]
    assert (drop.rows_in, drop.rows_out, drop.errors_count, drop.step_type) == (
        5,
        4,
        0,
        "dataframe",
    )
    assert (reject.rows_in, reject.rows_out, reject.rows_failed) == (4, 2, 2)
    assert (reject.errors_count, reject.warnings_count) == (2, 1)
    assert reject.duration_ms >= 0
    assert drop.duration_ms >= 0
    metrics = result.metrics
    assert (metrics.rows_in, metrics.rows_out, metrics.rows_failed) == (5, 2, 2)
    assert (metrics.errors_count, metrics.warnings_count) == (2, 1)
    # row numbers still refer to the run's input after the DataFrame step dropped a row
    assert failed_row_numbers(result) == [1, 3]


# ------------------------------------------------------------------ row numbers


def test_row_numbers_follow_reordering_and_relabelling_steps(frame: pd.DataFrame) -> None:
    class SortDescending:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return df.sort_values("id", ascending=False)

    class ResetIndex:
        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            return df.reset_index(drop=True)

    pipeline = Pipeline("p", collect()).add_step(SortDescending()).add_step(ResetIndex())
    pipeline.add_step(RejectNegative())

    result = pipeline.run(frame)

    assert failed_row_numbers(result) == [1, 3]
    assert result.failed_rows["id"].tolist() == [2, 4]


def test_rows_built_without_the_row_column_report_no_row_number(frame: pd.DataFrame) -> None:
    class Rebuild:
        """Builds new rows (as an aggregation would): no provenance column, new labels."""

        def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
            data = df.drop(columns=ROW_COLUMN)
            return pd.concat([data, data], ignore_index=True)

    with capture_logs() as logs:
        result = Pipeline("p", collect()).add_step(Rebuild()).add_step(RejectNegative()).run(frame)

    assert failed_row_numbers(result) == [None] * 4
    assert row_data(result, 0) == {"id": 2, "amount": -1.0}  # as the failing step saw it
    assert "Row:" not in result.error_messages()[0]
    assert any(e["event"] == "pipeline.row_numbers.untraceable" for e in logs)


# ------------------------------------------------------------------ config and context


def test_error_table_structure_and_secrets(frame: pd.DataFrame) -> None:
    data = frame.assign(api_key="s3cr3t-planted")
    result = Pipeline("p", collect(domain="annuity")).add_step(RejectNegative()).run(data)

    assert result.errors.iloc[0].to_dict() == {
        "row": 1,
        "step": "RejectNegative",
        "field": "amount",
        "error_type": "VALIDATION_ERROR",
        "code": "VALIDATION_ERROR",
        "message": "amount must not be negative",
        "traceback": None,
    }
    everything = " ".join([repr(result), *result.error_messages(), *result.warning_messages()])
    assert "s3cr3t-planted" not in everything
    kept = result.failed_rows["api_key"].iloc[0]
    assert kept == "s3cr3t-planted"  # the data itself is kept  # pragma: allowlist secret
    assert repr(result).startswith("PipelineResult(pipeline_name='p', execution_id='exec_")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"error_threshold": 1.5}, "error_threshold must be a fraction between 0 and 1, got 1.5"),
        ({"error_threshold": float("nan")}, "error_threshold must be a fraction"),
        ({"retry_backoff_ms": -1}, "retry_backoff_ms must be >= 0, got -1"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
    ],
)
def test_invalid_pipeline_config_is_rejected(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        PipelineConfig(**options)


def test_config_from_mapping_splits_options_and_settings() -> None:
    config = PipelineConfig.from_mapping(
        {"stop_on_error": False, "source_dir": "/data", "settings": {"batch": 5}}
    )

    assert config.stop_on_error is False
    assert config.settings == {"batch": 5, "source_dir": "/data"}
    assert config.retry_config() == RetryConfig(
        max_attempts=4, backoff_ms=1000, retriable_errors=frozenset({ConnectionError, TimeoutError})
    )


def test_pipeline_config_maps_max_retries_to_max_attempts() -> None:
    config = PipelineConfig(max_retries=2, retry_backoff_ms=250, retriable_errors={OSError})  # type: ignore[arg-type]

    retry = config.retry_config()

    assert (retry.max_attempts, retry.backoff_ms) == (3, 250)
    assert retry.retriable_errors == frozenset({OSError})
    assert config.retriable_errors == frozenset({OSError})
    assert PipelineConfig(max_retries=0).retry_config().max_attempts == 1


def test_missing_columns_error_without_columns() -> None:
    error = MissingColumnsError(["id"], [])

    assert str(error) == (
        "[MISSING_COLUMNS] Missing required column(s): id; columns present: (none) | Field: id"
    )
    assert error.missing == ("id",)
    assert error.present == ()


def test_failed_rows_and_error_summary(frame: pd.DataFrame) -> None:
    result = Pipeline("p", collect()).add_step(RejectNegative()).run(frame)
    clean = Pipeline("p").run(frame)

    assert result.failed_rows["id"].tolist() == [2, 4]
    assert result.failed_rows["_row"].tolist() == [1, 3]
    assert result.failed_rows["_step"].tolist() == ["RejectNegative"] * 2
    assert list(clean.failed_rows.columns) == ["_row", "_step", "id", "amount"]
    assert result.rows_failed == 2
    assert result.error_summary().to_dict("records") == [
        {"step": "RejectNegative", "field": "amount", "code": "VALIDATION_ERROR", "count": 2}
    ]
    assert result.error_messages(limit=1) == [
        "[VALIDATION_ERROR] amount must not be negative | Domain: p | Row: 1 | Field: amount"
    ]
