"""Column-wise and row-wise validation give the same verdicts on generated frames."""

from __future__ import annotations

import enum
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, StringConstraints, field_validator

from wdh_domain.pipelines import (
    Pipeline,
    PipelineConfig,
    PipelineResult,
    ValidateDataTypesStep,
    ValidateSchemaStep,
)

pytestmark = pytest.mark.unit


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


_Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=5, pattern=r"^[a-z ]+$")
]


class Wide(BaseModel):
    """Every compiled kind and constraint."""

    i: int = Field(gt=-5, le=1000)
    f: float | None = Field(default=None, ge=0)
    d: Decimal = Field(max_digits=6, decimal_places=2)
    s: _Code
    note: str | None = Field(default=None, max_length=4)
    day: date | None = None
    at: datetime | None = None
    flag: bool | None = None
    kind: Literal["a", "b"] | None = None
    color: Color | None = None


class WithValidator(BaseModel):
    """One field falls back to row-wise validation (a custom validator reading another)."""

    n: int = Field(ge=0)
    label: str

    @field_validator("label")
    @classmethod
    def _label_names_n(cls, value: str, info: Any) -> str:
        if "n" in info.data and str(info.data["n"]) not in value:
            raise ValueError("label must contain n")
        return value.upper()


_TRICKY = st.sampled_from(
    [
        "",
        "  ",
        "\t",
        " 7 ",
        "007",
        "1_000",
        "+5",
        "-5",
        "-4",
        "1.0",
        "1.5",
        "1e3",
        "nan",
        "inf",
        "0.00",
        "1000",
        "1001",
        "9999.99",
        "10000.0",
        "1.005",
        "2024-02-29",
        "2023-02-29",
        "2000-02-29",
        "1900-02-29",
        "0000-01-01",
        "9999-12-31",
        "2024-00-10",
        "2024-04-31",
        "-0.50",
        "+000.100",
        "00012.340",
        "20240101",
        "2024-01-01T00:00:00",
        "2024-01-01 12:30",
        "2024-01-01T12:30:00Z",
        "1654646400",
        "true",
        "FALSE",
        "yes",
        "off",
        "2",
        "a",
        "b",
        "A",
        "red",
        "blue",
        "ab",
        " ab ",
        "abcdef",
        "ab1",
        "x\u00a0",
        "\u2003ab",
        "é",
    ]
)
_CELL = st.one_of(
    st.none(),
    _TRICKY,
    st.integers(-10, 2000).map(str),
    st.decimals(min_value=-100, max_value=20000, places=3, allow_nan=False).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.dates(date(1600, 1, 1), date(2400, 12, 31)).map(str),
    # naive on purpose: the cells are ISO text without an offset
    st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(str),  # noqa: DTZ001
    st.text(alphabet="ab z1-", max_size=7),
)


def _frames(columns: list[str]) -> st.SearchStrategy[pd.DataFrame]:
    return st.integers(0, 12).flatmap(
        lambda n: st.fixed_dictionaries(
            {column: st.lists(_CELL, min_size=n, max_size=n) for column in columns}
        ).map(lambda data: pd.DataFrame(data, dtype=object))
    )


def _run(step: Any, frame: pd.DataFrame) -> PipelineResult:
    config = PipelineConfig(stop_on_error=False, error_threshold=1.0)
    return Pipeline("equivalence", config).add_step(step).run(frame)


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _assert_same_verdicts(model: type[BaseModel], frame: pd.DataFrame) -> None:
    rowwise = _run(ValidateDataTypesStep(model), frame)
    columnwise = _run(ValidateSchemaStep(model, chunk_rows=5), frame)

    assert columnwise.failed_rows["_row"].tolist() == rowwise.failed_rows["_row"].tolist()
    verdicts = ["row", "field", "code", "message"]
    assert sorted(map(tuple, columnwise.errors[verdicts].astype(object).values.tolist())) == sorted(
        map(tuple, rowwise.errors[verdicts].astype(object).values.tolist())
    )
    assert columnwise.output_data.index.tolist() == rowwise.output_data.index.tolist()
    if rowwise.output_data.empty:  # no row kept: the row-wise frame has the input's columns
        return
    for name in model.model_fields:
        got = [_plain(v) for v in columnwise.output_data[name].tolist()]
        want = [_plain(v) for v in rowwise.output_data[name].tolist()]
        assert got == want, name
        assert [type(v) for v in got] == [type(v) for v in want], name


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(list(Wide.model_fields)))
def test_schema_step_matches_rowwise_pydantic(frame: pd.DataFrame) -> None:
    _assert_same_verdicts(Wide, frame)


@settings(max_examples=25, deadline=None)
@given(frame=_frames(["n", "label"]))
def test_fallback_fields_match_rowwise_pydantic(frame: pd.DataFrame) -> None:
    _assert_same_verdicts(WithValidator, frame)


_EDGE_CELLS = [
    ["2024-02-29", "1.5", "2024-02-29T10:00:00"],
    ["2023-02-29", "+000.100", "2023-02-29 10:00"],
    ["2000-02-29", "-0.50", "0000-01-01T00:00:00"],
    ["1900-02-29", "00012.340", "1900-02-29T00:00:00"],
    ["0000-01-01", "9999.99", "9999-12-31T23:59:59.999999"],
    ["9999-12-31", "1.005", "2024-01-01"],
    ["2024-04-31", "10000", "2024-04-31T00:00:00"],
    ["2024-12-00", "0.000", "2024-12-01T24:00:00"],
]


@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_dates_and_decimals_match_rowwise_pydantic_whatever_the_text_storage(
    storage: Literal["pyarrow", "python"],
) -> None:
    """Arrow-backed text takes Arrow kernels for dates and decimal digits, Python-backed
    text pandas: the same verdicts and values either way."""
    frame = pd.DataFrame(_EDGE_CELLS, columns=["day", "d", "at"]).assign(i="1", s="ab")
    _assert_same_verdicts(Wide, frame.astype(pd.StringDtype(storage)))


def test_missing_column_fails_required_fields_like_pydantic() -> None:
    frame = pd.DataFrame({"i": ["1"], "d": ["2.5"]}, dtype=object)
    _assert_same_verdicts(Wide, frame)
    result = _run(ValidateSchemaStep(Wide), frame)
    assert result.errors[["field", "code"]].values.tolist() == [["s", "missing"]]


class Patterned(BaseModel):
    """Patterns whose classes the Rust regex crate, RE2 and Python's re word differently
    outside plain ASCII text."""

    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    spaced: Annotated[str, StringConstraints(pattern=r"^\S+\s\S+$")] | None = None
    word: Annotated[str, StringConstraints(pattern=r"^\w+\b\d*$")] | None = None


_PATTERN_CELLS = st.sampled_from(
    [
        "a@b.c",
        "a b",
        "ab12",
        "a@b.c\n",
        "a\nb",
        "a\x0bb",
        "a\x1cb",
        "a\x1f@b.c",
        "a\u00a0b",
        "a\u2003b",
        "ü@b.c",
        "über",
        "\u0661\u0662",
        "ab\u0661",
        "a\tb",
        "x@y",
        "",
    ]
)


@settings(max_examples=30, deadline=None)
@given(
    frame=st.integers(0, 10).flatmap(
        lambda n: st.fixed_dictionaries(
            {c: st.lists(_PATTERN_CELLS, min_size=n, max_size=n) for c in Patterned.model_fields}
        ).map(lambda data: pd.DataFrame(data, dtype=object))
    )
)
def test_patterns_match_rowwise_pydantic_on_any_text(frame: pd.DataFrame) -> None:
    _assert_same_verdicts(Patterned, frame)


class Money(BaseModel):
    """Decimals with bounds: exact at the field's scale, a float bound, and one that is
    not exact at the scale (pydantic judges every cell of that field)."""

    amount: Decimal = Field(max_digits=8, decimal_places=2, gt=0, le=Decimal("999.99"))
    rate: Decimal | None = Field(default=None, max_digits=5, decimal_places=3, ge=0.1)
    share: Decimal | None = Field(default=None, max_digits=6, decimal_places=2, lt=Decimal("1.234"))
    wide: Decimal | None = Field(default=None, max_digits=60, decimal_places=2)
    free: Decimal | None = None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames(list(Money.model_fields)))
def test_bounded_decimals_match_rowwise_pydantic(frame: pd.DataFrame) -> None:
    _assert_same_verdicts(Money, frame)


def test_a_decimal_with_digits_and_places_comes_out_at_the_fields_scale() -> None:
    frame = pd.DataFrame(
        {
            "amount": ["1.5", "+000.100", "999.99", "0", ""],
            "rate": ["0.1", "0.1005", "1", None, "2"],
        },
        dtype="str",
    )
    result = _run(ValidateSchemaStep(Money), frame)
    out = result.output_data
    assert str(out["amount"].dtype) == "decimal128(8, 2)[pyarrow]"
    assert out.index.tolist() == [0, 2]
    assert [str(v) for v in out["amount"].tolist()] == ["1.50", "999.99"]
    assert [str(v) for v in out["rate"].tolist()] == ["0.100", "1.000"]
    # no Arrow type for 60 digits or for a scale left open: Decimal objects, as pydantic's
    assert out["wide"].dtype == object
    assert out["free"].dtype == object
    assert result.errors[["row", "field", "code"]].values.tolist() == [
        [1, "rate", "decimal_max_places"],
        [3, "amount", "greater_than"],
        [4, "amount", "decimal_type"],
    ]


def test_decimal_objects_and_numbers_in_a_decimal_column_match_rowwise_pydantic() -> None:
    frame = pd.DataFrame(
        {"amount": [Decimal("2.5"), 3, 4.25, Decimal("0.001"), "7.10", None]}, dtype=object
    )
    _assert_same_verdicts(Money, frame)
    out = _run(ValidateSchemaStep(Money), frame).output_data
    assert str(out["amount"].dtype) == "decimal128(8, 2)[pyarrow]"
    assert out["amount"].tolist() == [Decimal("2.5"), Decimal(3), Decimal("4.25"), Decimal("7.1")]
