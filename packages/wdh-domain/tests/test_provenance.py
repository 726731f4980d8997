"""A failed row names its exact input row, whatever the DataFrame steps before it did."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel, Field

from wdh_domain.pipelines import (
    ROW_COLUMN,
    Pipeline,
    PipelineConfig,
    PipelineContext,
    PipelineResult,
    RowIssue,
    StepResult,
    ValidateSchemaStep,
)

pytestmark = pytest.mark.unit


class Amount(BaseModel):
    key: str
    amount: float = Field(ge=0)


class RejectNegative:
    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["amount"] < 0:
            return StepResult(row=row, errors=[RowIssue("negative", field="amount")])
        return StepResult(row=row)


class Frame:
    """A DataFrame step from a function."""

    def __init__(self, func: Callable[[pd.DataFrame], pd.DataFrame], name: str) -> None:
        self.func, self.name = func, name

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        return self.func(df)


def _run(frame: pd.DataFrame, *steps: Any) -> PipelineResult:
    pipeline = Pipeline("p", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    for step in steps:
        pipeline.add_step(step)
    return pipeline.run(frame)


def _failed_keys(result: PipelineResult, frame: pd.DataFrame) -> list[tuple[int, str]]:
    rows = [int(n) for n in result.failed_rows["_row"]]
    # the reported row number and the failed row's data both point at the same input row
    assert result.failed_rows["key"].tolist() == frame["key"].iloc[rows].tolist()
    assert sorted(result.errors["row"].tolist()) == rows  # errors come in step order
    return list(zip(rows, result.failed_rows["key"], strict=True))


VALIDATORS = [RejectNegative, lambda: ValidateSchemaStep(Amount)]


@pytest.mark.parametrize("validator", VALIDATORS, ids=["row_step", "schema_step"])
def test_duplicate_labels_and_a_sort_name_the_right_row(validator: Callable[[], Any]) -> None:
    # Reported: the negative amount of b1 was reported as input row 0 (a1).
    part_a = pd.DataFrame({"key": ["a1", "a2"], "amount": [5.0, 1.0]})
    part_b = pd.DataFrame({"key": ["b1", "b2"], "amount": [-3.0, 2.0]})
    frame = pd.concat([part_a, part_b])  # labels 0, 1, 0, 1
    sort = Frame(lambda df: df.sort_values("amount"), "sort")

    result = _run(frame, sort, validator())

    assert _failed_keys(result, frame) == [(2, "b1")]


@pytest.mark.parametrize("validator", VALIDATORS, ids=["row_step", "schema_step"])
def test_filter_then_reset_index_names_the_right_row(validator: Callable[[], Any]) -> None:
    # Reported: after a filter and reset_index, r3 was reported as r1.
    frame = pd.DataFrame({"key": ["r0", "r1", "r2", "r3"], "amount": [1.0, 0.5, None, -1.0]})
    keep = Frame(lambda df: df[df["amount"].notna()].reset_index(drop=True), "filter_reset")

    result = _run(frame, keep, validator())

    assert _failed_keys(result, frame) == [(3, "r3")]


@pytest.mark.parametrize("validator", VALIDATORS, ids=["row_step", "schema_step"])
def test_assign_and_left_merge_keep_the_rows(validator: Callable[[], Any]) -> None:
    frame = pd.DataFrame({"key": ["k0", "k1", "k2", "k3"], "amount": [1.0, -2.0, 3.0, -4.0]})
    regions = pd.DataFrame({"key": ["k3", "k1", "k1"], "region": ["n", "s", "e"]})
    steps = [
        Frame(lambda df: df.sort_values("key", ascending=False), "sort"),
        Frame(lambda df: df.assign(double=df["amount"] * 2), "assign"),
        Frame(lambda df: df.merge(regions, on="key", how="left"), "merge"),
    ]

    result = _run(frame, *steps, validator())

    # k1 matched two regions: both merged rows fail and both name input row 1
    assert sorted(_failed_keys(result, frame)) == [(1, "k1"), (1, "k1"), (3, "k3")]
    assert ROW_COLUMN not in result.output_data.columns
    assert result.output_data["key"].tolist() == ["k2", "k0"]


def test_an_aggregating_step_decides_the_provenance_of_its_rows() -> None:
    frame = pd.DataFrame({"key": ["x", "y", "x", "y"], "amount": [1.0, 2.0, -5.0, 1.0]})
    # an aggregate named after its first input row: carry ROW_COLUMN with "min"
    totals = Frame(
        lambda df: df.groupby("key", as_index=False).agg(
            amount=("amount", "sum"), **{ROW_COLUMN: (ROW_COLUMN, "min")}
        ),
        "totals",
    )
    anonymous = Frame(
        lambda df: df.groupby("key", as_index=False).agg(amount=("amount", "sum")), "anon"
    )

    named = _run(frame, totals, RejectNegative())
    unnamed = _run(frame, anonymous, RejectNegative())

    assert named.failed_rows["_row"].tolist() == [0]  # x: rows 0 and 2, named after row 0
    assert unnamed.failed_rows["_row"].isna().all()
    assert unnamed.failed_rows["key"].tolist() == ["x"]  # as the failing step saw it
    assert unnamed.errors["row"].isna().all()


def test_no_provenance_column_without_a_later_step_that_fails_rows() -> None:
    seen: list[list[str]] = []

    def look_at(df: pd.DataFrame) -> pd.DataFrame:
        seen.append([str(c) for c in df.columns])
        return df

    look = Frame(look_at, "look")

    _run(pd.DataFrame({"key": ["a"], "amount": [1.0]}), look)
    _run(pd.DataFrame({"key": ["a"], "amount": [1.0]}), look, RejectNegative())

    assert seen == [["key", "amount"], ["key", "amount", ROW_COLUMN]]
