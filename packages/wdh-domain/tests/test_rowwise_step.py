"""ValidateDataTypesStep: the frame it builds, its early stop, and the rows it validates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ValidationError, model_validator

from wdh_domain.pipelines import (
    Pipeline,
    PipelineConfig,
    PipelineContext,
    ValidateDataTypesStep,
    ValidateSchemaStep,
    model_input_rows,
)

pytestmark = pytest.mark.unit


class Payment(BaseModel):
    payment_id: int
    payer: str
    note: str | None = None
    amount: Decimal
    paid_on: date
    currency: str = "EUR"  # no input column: filled by the default


class Checked(BaseModel):
    """A model validator: every field is dumped by the model, not read off the instance."""

    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Checked:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self


@pytest.fixture
def context() -> PipelineContext:
    return PipelineContext("p", "exec_test", pd.Timestamp.now("UTC").to_pydatetime(), domain="d")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "payment_id": pd.array(["1", "2", "x", "4"], dtype="str"),
            "payer": pd.array(["ann", "bob", "cy", " dee "], dtype="str"),
            "note": pd.array(["", " n ", "x", "m"], dtype="str"),
            "amount": pd.array(["1.50", "2", "3", "4.25"], dtype="str"),
            "paid_on": pd.array(["2025-01-02"] * 4, dtype="str"),
            "blank": pd.array(["", "", "", " "], dtype="str"),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "kind": pd.Categorical(["a", "b", "a", "b"]),
        },
        index=pd.Index([10, 10, 11, 12]),  # duplicate labels are kept as they are
    )


def _run(step: ValidateDataTypesStep, df: pd.DataFrame) -> Any:
    config = PipelineConfig(stop_on_error=False, error_threshold=1.0)
    return Pipeline("p", config).add_step(step).run(df)


def test_output_is_the_models_values_merged_over_the_row() -> None:
    result = _run(ValidateDataTypesStep(Payment), _frame())

    out = result.output_data
    assert result.failed_rows["_row"].tolist() == [2]
    assert out.index.tolist() == [10, 10, 12]
    assert list(out.columns) == [
        "payment_id",
        "payer",
        "note",
        "amount",
        "paid_on",
        "blank",
        "count",
        "kind",
        "currency",
    ]
    assert out["payment_id"].tolist() == [1, 2, 4]
    assert str(out["payment_id"].dtype) == "int64"
    assert out["payer"].tolist() == ["ann", "bob", " dee "]  # str does not strip
    assert out["payer"].dtype == _frame()["payer"].dtype
    # blank text is missing: NaN in the text column, as pandas makes of None
    assert out["note"].dtype == _frame()["note"].dtype
    assert out["note"].isna().tolist() == [True, False, False]
    assert out["note"].tolist()[1:] == [" n ", "m"]
    assert out["amount"].tolist() == [Decimal("1.50"), Decimal(2), Decimal("4.25")]
    assert out["paid_on"].tolist() == [date(2025, 1, 2)] * 3
    assert out["currency"].tolist() == ["EUR"] * 3
    # a column with no value left is all None, as pandas makes of a list of None
    assert out["blank"].dtype == object
    assert out["blank"].tolist() == [None, None, None]
    assert str(out["count"].dtype) == "Int64"
    assert out["count"].isna().tolist() == [False, True, False]
    assert out["kind"].dtype == _frame()["kind"].dtype
    assert out["kind"].tolist() == ["a", "b", "b"]


def test_without_extra_columns_the_output_has_the_fields_in_model_order() -> None:
    df = _frame()[["paid_on", "amount", "payer", "payment_id", "note"]]

    out = _run(ValidateDataTypesStep(Payment, keep_extra_columns=False), df).output_data

    assert list(out.columns) == list(Payment.model_fields)
    assert out["payer"].tolist() == ["ann", "bob", " dee "]


def test_a_text_column_changed_by_the_model_is_rebuilt_from_its_values() -> None:
    class Upper(BaseModel):
        code: str

        @model_validator(mode="before")
        @classmethod
        def _upper(cls, data: Any) -> Any:
            return {**data, "code": str(data["code"]).upper()}

    df = pd.DataFrame({"code": pd.array(["ab", "cd"], dtype="str")})

    out = _run(ValidateDataTypesStep(Upper), df).output_data

    assert out["code"].tolist() == ["AB", "CD"]


def test_model_level_errors_have_no_field(context: PipelineContext) -> None:
    df = pd.DataFrame({"low": ["1", "5", "x"], "high": ["2", "3", "4"], "other": [1, 2, 3]})

    outcome = ValidateDataTypesStep(Checked).validate(df, context)

    assert outcome.failed.tolist() == [1, 2]
    errors = outcome.errors
    assert errors["position"].tolist() == [1, 2]
    assert pd.isna(errors["field"].iloc[0])
    assert errors["field"].iloc[1] == "low"
    assert errors["code"].tolist() == ["value_error", "int_parsing"]
    assert errors["message"].iloc[0].startswith("Value error, low must not exceed high (got {")
    assert outcome.data.to_dict("list") == {"low": [1], "high": [2], "other": [1]}


def test_validate_stops_at_the_row_that_exceeds_the_budget(context: PipelineContext) -> None:
    df = pd.DataFrame({"low": ["x", "1", "y", "2", "z"], "high": ["9"] * 5})

    outcome = ValidateDataTypesStep(Checked).validate(df, context, max_failures=1)

    assert outcome.stopped
    assert outcome.failed.tolist() == [0, 2]
    assert outcome.errors["position"].tolist() == [0, 2]
    assert outcome.data.index.tolist() == [1]


def test_threshold_stops_the_run_with_the_failed_rows_so_far() -> None:
    df = pd.DataFrame({"low": ["x", "1", "y", "2", "z"], "high": ["9"] * 5})
    config = PipelineConfig(stop_on_error=False, error_threshold=0.25)

    result = Pipeline("p", config).add_step(ValidateDataTypesStep(Checked)).run(df)

    assert not result.success
    assert result.failed_rows["_row"].tolist() == [0, 2]
    assert result.metrics.step_metrics["ValidateDataTypesStep"].status == "stopped"


def test_model_input_rows_are_what_the_model_validates() -> None:
    df = pd.DataFrame({"a": ["1", " ", None], "b": [1.5, np.nan, 2.0]})

    rows = model_input_rows(df)

    assert rows == [{"a": "1", "b": 1.5}, {"a": None, "b": None}, {"a": None, "b": 2.0}]
    with pytest.raises(ValidationError):
        Checked.model_validate(rows[1])


class Named(BaseModel):
    name: str
    secret_token: str | None = None


def test_a_repeated_bad_value_is_shown_the_same_and_equal_values_by_their_type(
    context: PipelineContext,
) -> None:
    """Messages are reused per bad value, keyed by its type: 1, 1.0 and True differ."""
    frame = pd.DataFrame(
        {"name": [1.0, True, 1.0, 1, "ok"], "secret_token": [None, None, 7, None, None]},
        dtype=object,
    )
    result = ValidateDataTypesStep(Named).validate(frame, context)
    by_row = result.errors.groupby("position")["message"].apply(list).to_dict()
    assert by_row[0] == ["Input should be a valid string (got 1.0)"]
    assert by_row[1] == ["Input should be a valid string (got True)"]
    assert by_row[2][0] == "Input should be a valid string (got 1.0)"
    assert "7" not in by_row[2][1]  # a sensitive field's value is masked
    assert by_row[3] == ["Input should be a valid string (got 1)"]
    # A column of no text at all (secret_token) is no trouble for either step's blanks.
    columns = ValidateSchemaStep(Named).validate(frame, context)
    assert columns.errors[["position", "message"]].values.tolist() == (
        result.errors[["position", "message"]].values.tolist()
    )
