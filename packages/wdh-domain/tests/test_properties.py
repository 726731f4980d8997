"""Property-based: output rows + failed rows = input rows, order preserved."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wdh_domain.pipelines import Pipeline, PipelineConfig, PipelineContext, StepResult

pytestmark = pytest.mark.unit


class FailWhere:
    """Fails rows whose value is in ``bad`` (by error list or by raising)."""

    def __init__(self, bad: frozenset[int], *, raise_instead: bool = False) -> None:
        self.bad, self.raise_instead = bad, raise_instead

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:
        if row["value"] in self.bad:
            if self.raise_instead:
                raise RuntimeError("bug")
            return StepResult(row=row, errors=["bad value"])
        row["seen"] = row.get("seen", 0) + 1
        return StepResult(row=row)


class DropOdd:
    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        return df[df["value"] % 2 == 0]


values = st.lists(st.integers(min_value=0, max_value=50), max_size=40)
bad_sets = st.frozensets(st.integers(min_value=0, max_value=50), max_size=20)


@settings(max_examples=60, deadline=None)
@given(values=values, bad_first=bad_sets, bad_second=bad_sets, raise_second=st.booleans())
def test_output_plus_failed_equals_input_in_order(
    values: list[int], bad_first: frozenset[int], bad_second: frozenset[int], raise_second: bool
) -> None:
    df = pd.DataFrame({"value": values, "label": [f"r{i}" for i in range(len(values))]})
    pipeline = Pipeline("prop", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    pipeline.add_step(FailWhere(bad_first)).add_step(
        FailWhere(bad_second, raise_instead=raise_second)
    )

    result = pipeline.run(df)

    out_labels = result.output_data["label"].tolist() if len(result.output_data) else []
    assert result.failed_rows["_row"].notna().all()
    failed_numbers = [int(n) for n in result.failed_rows["_row"]]
    assert len(out_labels) + len(failed_numbers) == len(values)
    # order is preserved in both parts, and together they are exactly the input rows
    kept_numbers = [int(label[1:]) for label in out_labels]
    assert kept_numbers == sorted(kept_numbers)
    assert failed_numbers == sorted(failed_numbers)
    assert sorted(kept_numbers + failed_numbers) == list(range(len(values)))
    for number, value, label in zip(
        failed_numbers,
        result.failed_rows.get("value", []),
        result.failed_rows.get("label", []),
        strict=True,
    ):
        assert (value, label) == (values[number], f"r{number}")
    expected_kept = [i for i, v in enumerate(values) if v not in bad_first and v not in bad_second]
    assert kept_numbers == expected_kept
    assert result.metrics.rows_out + result.metrics.rows_failed == result.metrics.rows_in


@settings(max_examples=40, deadline=None)
@given(values=values, bad=bad_sets)
def test_row_numbers_survive_a_filtering_dataframe_step(
    values: list[int], bad: frozenset[int]
) -> None:
    df = pd.DataFrame({"value": values})
    pipeline = Pipeline("prop", PipelineConfig(stop_on_error=False, error_threshold=1.0))
    pipeline.add_step(DropOdd()).add_step(FailWhere(bad))

    result = pipeline.run(df)

    even = [i for i, v in enumerate(values) if v % 2 == 0]
    failed = result.failed_rows["_row"].tolist()
    assert failed == [i for i in even if values[i] in bad]
    assert result.output_data.index.tolist() == [i for i in even if values[i] not in bad]


@settings(max_examples=40, deadline=None)
@given(values=values, bad=bad_sets, raise_instead=st.booleans())
def test_stop_on_error_keeps_the_frame_of_the_last_completed_step_minus_the_failed_row(
    values: list[int], bad: frozenset[int], raise_instead: bool
) -> None:
    df = pd.DataFrame({"value": values})

    result = Pipeline("prop").add_step(FailWhere(bad, raise_instead=raise_instead)).run(df)

    first_bad = next((i for i, v in enumerate(values) if v in bad), None)
    step = result.metrics.step_metrics["FailWhere"]
    # The invariant of every run, stopped or not: each input row is in exactly one place.
    assert len(result.output_data) + len(result.failed_rows) == len(values)
    assert step.rows_out == len(result.output_data) == result.metrics.rows_out
    assert step.rows_in - step.rows_failed == step.rows_out
    if first_bad is None:
        assert result.success
        assert result.output_data["value"].tolist() == values
    else:
        assert not result.success
        assert result.failed_rows["_row"].tolist() == [first_bad]
        # the stopped step's work is discarded: rows as the input had them, minus the failed
        expected = values[:first_bad] + values[first_bad + 1 :]
        assert result.output_data["value"].tolist() == expected
        assert "seen" not in result.output_data.columns
        assert step.status == ("failed" if raise_instead else "stopped")
