"""Sample steps: CheckRequiredColumnsStep and ValidateDataTypesStep (pydantic)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from pydantic import BaseModel, Field

from wdh_domain.errors import MissingColumnsError, PipelineConfigError
from wdh_domain.pipelines import (
    CheckRequiredColumnsStep,
    Pipeline,
    PipelineConfig,
    PipelineContext,
    ValidateDataTypesStep,
)

pytestmark = pytest.mark.unit


class SampleRow(BaseModel):
    id: int
    amount: float = Field(ge=0)
    name: str | None = None
    booked_on: date


class Credentials(BaseModel):
    user: str
    password: int


@pytest.fixture
def context() -> PipelineContext:
    return PipelineContext("p", "exec_test", pd.Timestamp.now("UTC").to_pydatetime(), domain="d")


def test_required_columns_present_returns_the_same_frame(context: PipelineContext) -> None:
    df = pd.DataFrame({"a": [1], "b": [2]})

    assert CheckRequiredColumnsStep(required_columns=["a"]).execute(df, context) is df


def test_required_columns_missing_lists_missing_and_present(context: PipelineContext) -> None:
    step = CheckRequiredColumnsStep(required_columns=["a", "c", "d"], name="check")

    with pytest.raises(MissingColumnsError) as caught:
        step.execute(pd.DataFrame({"a": [1], "b": [2]}), context)

    assert str(caught.value) == (
        "[MISSING_COLUMNS] Missing required column(s): c, d; columns present: a, b "
        "| Domain: d | Field: c, d"
    )
    assert caught.value.missing == ("c", "d")
    assert caught.value.operation == "check"


@pytest.mark.parametrize(
    ("columns", "message"),
    [("id", "not one string"), ([], "at least one column")],
)
def test_required_columns_are_checked_when_built(columns: object, message: str) -> None:
    with pytest.raises(PipelineConfigError, match=message):
        CheckRequiredColumnsStep(required_columns=columns)  # type: ignore[arg-type]


def test_validate_data_types_reports_field_level_errors() -> None:
    df = pd.DataFrame(
        {
            "id": ["1", "two", "3", "4"],
            "amount": [1.5, 2.0, -3.0, None],
            "name": ["a", None, "c", "d"],
            "booked_on": ["2025-01-31", "2025-02-30", "2025-03-01", "2025-04-01"],
            "note": ["keep", "keep", "keep", "keep"],
        }
    )
    pipeline = Pipeline("sample", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    pipeline.add_step(CheckRequiredColumnsStep(required_columns=["id", "amount", "booked_on"]))
    pipeline.add_step(ValidateDataTypesStep(model=SampleRow))

    result = pipeline.run(df)

    out = result.output_data
    assert out["id"].tolist() == [1]
    assert str(out["id"].dtype) == "int64"
    assert out["booked_on"].tolist() == [date(2025, 1, 31)]
    assert out["note"].tolist() == ["keep"]
    assert result.failed_rows["_row"].tolist() == [1, 2, 3]
    errors = result.errors
    assert errors[["row", "field", "error_type", "code"]].values.tolist() == [
        [1, "id", "VALIDATION_ERROR", "int_parsing"],
        [1, "booked_on", "VALIDATION_ERROR", "date_from_datetime_parsing"],
        [2, "amount", "VALIDATION_ERROR", "greater_than_equal"],
        [3, "amount", "VALIDATION_ERROR", "float_type"],  # NaN is given to the model as None
    ]
    assert errors["message"].iloc[0].startswith("Input should be a valid integer")
    assert errors["message"].iloc[0].endswith("(got 'two')")
    assert result.error_messages()[2] == (
        "[VALIDATION_ERROR] Input should be greater than or equal to 0 (got -3.0) "
        "| Domain: sample | Row: 2 | Field: amount"
    )
    assert errors["message"].iloc[3] == "required value is missing (the cell is empty)"
    assert result.failed_rows["id"].iloc[0] == "two"  # original values
    assert result.metrics.step_metrics["ValidateDataTypesStep"].errors_count == 4


def test_validate_data_types_without_extra_columns_and_masked_values() -> None:
    df = pd.DataFrame({"user": ["u", "v"], "password": [123, "s3cr3t-planted"], "x": [1, 2]})
    step = ValidateDataTypesStep(model=Credentials, keep_extra_columns=False, name="creds")

    result = Pipeline("p", {"stop_on_error": False, "error_threshold": 1.0}).add_step(step).run(df)

    assert list(result.output_data.columns) == ["user", "password"]
    assert result.errors["field"].tolist() == ["password"]
    assert "s3cr3t-planted" not in " ".join(result.error_messages()) + repr(result)
    assert result.error_messages()[0].startswith(
        "[VALIDATION_ERROR] Input should be a valid integer"
    )
    assert "(got ***REDACTED***)" in result.error_messages()[0]


def test_validate_data_types_needs_a_model() -> None:
    with pytest.raises(PipelineConfigError, match="needs a pydantic BaseModel class"):
        ValidateDataTypesStep(model=dict)  # type: ignore[arg-type]
