"""ValidateDataTypesStep's loop: every row gets the model's own verdict, over many chunks.

The reference is the model itself, called row by row on :func:`model_input_rows`; the
step must agree with it on each row (failed or not, errors, output values) whatever
way it calls the model (a flat model, one with ``model_post_init``, one with a model
validator), and stop at the same row when the error budget runs out.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wdh_domain.pipelines import PipelineContext, ValidateDataTypesStep, model_input_rows

pytestmark = pytest.mark.unit

ROWS = 2600  # more than two of the loop's chunks


class Flat(BaseModel):
    """Plain fields only: validated without making instances."""

    n: int = Field(gt=0)
    amount: Decimal = Field(max_digits=6, decimal_places=2)
    day: date
    note: str | None = None


class PostInit(Flat):
    """model_post_init: the model must make its instances."""

    def model_post_init(self, context: Any, /) -> None:
        del context


class Ordered(Flat):
    """A model validator: the output is the model's dump merged over the row."""

    @model_validator(mode="after")
    def _small_note(self) -> Ordered:
        if self.note is not None and self.note.startswith("z"):
            raise ValueError("note must not start with z")
        return self


MODELS = [Flat, PostInit, Ordered]


@pytest.fixture
def context() -> PipelineContext:
    return PipelineContext("p", "exec_test", pd.Timestamp.now("UTC").to_pydatetime(), domain="d")


def _frame(rows: int = ROWS) -> pd.DataFrame:
    """Mostly valid rows; each kind of failure shows up in every chunk."""
    n = [str(i + 1) for i in range(rows)]
    amount = [f"{i % 977}.{i % 100:02d}" for i in range(rows)]
    day = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)]
    note = ["", " a ", "b", "zed", "  "] * (rows // 5) + [""] * (rows % 5)
    for i in range(0, rows, 97):
        n[i] = "-1" if i % 2 else "x"
    for i in range(5, rows, 131):
        amount[i] = "1.234"
    for i in range(7, rows, 173):
        day[i] = "2024-02-30"
    return pd.DataFrame(
        {
            "n": pd.array(n, dtype="str"),
            "amount": pd.array(amount, dtype="str"),
            "day": pd.array(day, dtype="str"),
            "note": pd.array(note, dtype="str"),
        }
    )


def _model_verdicts(
    model: type[BaseModel], df: pd.DataFrame
) -> tuple[list[int], list[tuple[int, str, str]], list[dict[str, Any]]]:
    """The model called row by row: failed positions, (position, field, code) per error,
    and the valid rows' dumps."""
    failed: list[int] = []
    errors: list[tuple[int, str, str]] = []
    dumps: list[dict[str, Any]] = []
    for position, row in enumerate(model_input_rows(df)):
        try:
            dumps.append(model.model_validate(row).model_dump())
        except ValidationError as exc:
            failed.append(position)
            errors.extend((position, ".".join(map(str, e["loc"])), e["type"]) for e in exc.errors())
    return failed, errors, dumps


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_row_gets_the_models_verdict(model: type[BaseModel], context: PipelineContext) -> None:
    df = _frame()
    failed, errors, dumps = _model_verdicts(model, df)

    outcome = ValidateDataTypesStep(model).validate(df, context)

    assert not outcome.stopped
    assert outcome.failed.tolist() == failed
    assert (
        list(
            zip(
                outcome.errors["position"].tolist(),
                outcome.errors["field"].fillna("").tolist(),
                outcome.errors["code"].tolist(),
                strict=True,
            )
        )
        == errors
    )
    assert outcome.data.index.tolist() == [i for i in range(ROWS) if i not in set(failed)]
    values = outcome.data[list(model.model_fields)].astype(object)
    assert values.where(values.notna(), None).to_dict("records") == dumps


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_budget_stops_at_the_same_row_in_a_later_chunk(
    model: type[BaseModel], context: PipelineContext
) -> None:
    df = _frame()
    failed, _, _ = _model_verdicts(model, df)
    budget = sum(position < 1500 for position in failed)  # the next failure is past 1500
    last = failed[budget]

    outcome = ValidateDataTypesStep(model).validate(df, context, max_failures=budget)

    assert outcome.stopped
    assert outcome.failed.tolist() == failed[: budget + 1]
    assert outcome.errors["position"].max() == last
    assert outcome.data.index.tolist() == [i for i in range(last) if i not in set(failed)]


def test_a_one_column_frame_gives_its_cells_not_tuples(context: PipelineContext) -> None:
    class One(BaseModel):
        code: str

    df = pd.DataFrame({"code": pd.array(["ab", " ", "cd"], dtype="str")})

    outcome = ValidateDataTypesStep(One).validate(df, context)

    assert outcome.failed.tolist() == [1]
    assert outcome.data["code"].tolist() == ["ab", "cd"]


def test_a_frame_without_columns_validates_each_row(context: PipelineContext) -> None:
    class Defaults(BaseModel):
        level: int = 3

    df = pd.DataFrame(index=pd.RangeIndex(1500))

    outcome = ValidateDataTypesStep(Defaults).validate(df, context)

    assert outcome.failed.tolist() == []
    assert outcome.data["level"].tolist() == [3] * 1500


def test_int_columns_have_the_dtype_pandas_gives_their_values(context: PipelineContext) -> None:
    class Ints(BaseModel):
        small: int
        big: int
        maybe: int | None = None

    big = 2**70  # beyond int64
    df = pd.DataFrame(
        {
            "small": pd.array(["1", "2", "3"], dtype="str"),
            "big": pd.array(["1", str(big), "3"], dtype="str"),
            "maybe": pd.array(["3", "", "4"], dtype="str"),
        }
    )

    out = ValidateDataTypesStep(Ints).validate(df, context).data

    expected: dict[str, list[Any]] = {"small": [1, 2, 3], "big": [1, big, 3], "maybe": [3, None, 4]}
    for name, values in expected.items():
        assert out[name].dtype == pd.Series(values).dtype, name
        column = out[name].astype(object)
        assert column.where(column.notna(), None).tolist() == values, name


class Forbid(BaseModel):
    """The model's config (extra columns forbidden) holds for every row."""

    model_config = ConfigDict(extra="forbid")

    n: int


class Aliased(BaseModel):
    """Columns named by alias; values out under the field's name."""

    model_config = ConfigDict(str_strip_whitespace=True)

    n: int = Field(alias="N")
    label: str = Field(alias="Label", max_length=3)


@pytest.mark.parametrize("model", [Forbid, Aliased], ids=lambda m: m.__name__)
def test_the_models_config_and_aliases_hold(
    model: type[BaseModel], context: PipelineContext
) -> None:
    df = pd.DataFrame(
        {
            "N": pd.array(["1", "x", "3"], dtype="str"),
            "n": pd.array(["4", "5", ""], dtype="str"),
            "Label": pd.array([" ab ", "abcd", "c"], dtype="str"),
        }
    )
    failed, errors, dumps = _model_verdicts(model, df)

    outcome = ValidateDataTypesStep(model).validate(df, context)

    assert outcome.failed.tolist() == failed
    assert (
        list(
            zip(
                outcome.errors["position"].tolist(),
                outcome.errors["field"].tolist(),
                outcome.errors["code"].tolist(),
                strict=True,
            )
        )
        == errors
    )
    assert outcome.data[list(model.model_fields)].to_dict("records") == dumps
