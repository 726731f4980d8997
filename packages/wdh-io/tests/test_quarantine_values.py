"""encode_raw_values / decode_raw_values: what jsonb cannot hold is tagged, and comes back."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from wdh_io.quarantine import (
    UnstorableValueError,
    decode_raw_values,
    dumps_raw_values,
    encode_raw_values,
)

pytestmark = pytest.mark.unit

#: Values that come back equal and of the same type (NaN compared apart).
EXACT: dict[str, Any] = {
    "none": None,
    "true": True,
    "int": 42,
    "huge_int": 10**30,
    "float": 0.1,
    "whole_float": 2.0,
    "exp_float": 1e16,
    "tiny_float": 5e-324,
    "neg_zero": -0.0,
    "inf": math.inf,
    "neg_inf": -math.inf,
    "decimal": Decimal("1.10"),
    "decimal_exp": Decimal("1E+3"),
    "decimal_nan": Decimal("NaN"),
    "text": "张三 😀 é",
    "empty": "",
    "escapes": 'back\\slash\ttab\nnew "quoted"',
    "nul": "a\x00b\x00",
    "date": dt.date(2026, 12, 2),
    "naive": dt.datetime(2026, 12, 2, 13, 5, 1, 123456),  # noqa: DTZ001 - naive on purpose
    "aware": dt.datetime(2026, 12, 2, 13, 5, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "timestamp": pd.Timestamp("2026-12-02 13:05:01.123456789", tz="Asia/Shanghai"),
    "time": dt.time(23, 59, 59, 1),
    "delta": dt.timedelta(days=-1, seconds=5, microseconds=7),
    "bytes": b"\x00\xff\\x",
    "label": "$float",  # a plain string that looks like a tag stays a string
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return isinstance(b, Decimal) and b.is_nan()
    same_sign = not isinstance(a, float) or math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b and same_sign


def test_exact_values_survive_a_json_round_trip() -> None:
    values = {**EXACT, "nan": math.nan}
    back = decode_raw_values(json.loads(dumps_raw_values(values)))
    assert list(back) == list(values)
    for key, value in values.items():
        assert _same(value, back[key]), (key, value, back[key])
    assert back["timestamp"].nanosecond == 789


def test_tags_are_used_only_where_plain_json_would_change_the_value() -> None:
    encoded = encode_raw_values(
        {"f": 1.5, "whole": 2.0, "big": 1e16, "nan": math.nan, "d": Decimal("1.10"), "s": "x"}
    )
    assert encoded == {
        "f": 1.5,
        "whole": 2.0,
        "big": {"$float": "1e+16"},
        "nan": {"$float": "nan"},
        "d": {"$decimal": "1.10"},
        "s": "x",
    }
    assert "张三" in dumps_raw_values({"name": "张三"})  # kept as text, not \\u escaped


def test_missing_markers_and_numpy_scalars_become_python_values() -> None:
    encoded = encode_raw_values(
        {
            "na": pd.NA,
            "nat": pd.NaT,
            "np_nat": np.datetime64("NaT"),
            "np_int": np.int64(7),
            "np_float": np.float32(0.5),
            "np_bool": np.bool_(False),
            "np_dt": np.datetime64("2026-12-02T01:02:03.000000004"),
            "bytearray": bytearray(b"ab"),
        }
    )
    back = decode_raw_values(json.loads(json.dumps(encoded)))
    assert back == {
        "na": None,
        "nat": None,
        "np_nat": None,
        "np_int": 7,
        "np_float": 0.5,
        "np_bool": False,
        "np_dt": pd.Timestamp("2026-12-02T01:02:03.000000004"),
        "bytearray": b"ab",
    }
    assert type(back["np_int"]) is int
    assert type(back["np_bool"]) is bool


@pytest.mark.parametrize(
    ("values", "key", "match"),
    [
        ({"a": [1, 2]}, "a", "type list"),
        ({"a": {"b": 1}}, "a", "type dict"),
        ({"a": object()}, "a", "type object"),
        ({"a": pd.Timedelta(1)}, "a", "type Timedelta"),
        ({"a": "bad \udc80 surrogate"}, "a", "UTF-8 cannot encode at position 4"),
        ({1: "x"}, "1", "column names must be strings"),
    ],
)
def test_values_that_cannot_be_kept_exactly_are_refused(
    values: dict[Any, Any], key: str, match: str
) -> None:
    with pytest.raises(UnstorableValueError, match=match) as caught:
        encode_raw_values(values)
    assert caught.value.key == key


def test_decoding_refuses_what_encoding_never_writes() -> None:
    with pytest.raises(ValueError, match="not a raw-value tag"):
        decode_raw_values({"a": {"$nope": 1}})
    with pytest.raises(ValueError, match="not a raw-value tag"):
        decode_raw_values({"a": {"$float": "1", "$date": "x"}})
    with pytest.raises(ValueError, match="never a JSON array"):
        decode_raw_values({"a": [1]})
