"""PostgreSQL text forms of the values that both load paths send as text.

``json``/``jsonb``, ``bytea``, ``uuid``, arrays and ``interval`` columns are converted to
one text form before either path sees them: COPY writes it as it is, the generic path
binds it as a plain string, and PostgreSQL parses it by the column's type. One
conversion, so both paths store the same value by construction:

* JSON: a ``str`` is a JSON document already (as text read from a file is); any other
  value is encoded with :func:`json.dumps` (``NaN`` and values JSON cannot hold, such as
  a ``datetime``, are refused, naming the row);
* ``bytea``: bytes-like values as ``\\x<hex>`` (a backslash in the bytes stays a byte);
  ``str`` values are PostgreSQL's own bytea input;
* ``uuid``: ``str(value)``;
* arrays: lists, tuples and numpy arrays as array literals, every element quoted
  (``{"a","b\\"c",NULL}``), nested lists as nested arrays; ``str`` is an array literal;
* ``interval``: ``timedelta`` values as ``<days> days <microseconds> microseconds``, both
  parts carrying the sign of the whole, so ``1 day 2 h`` is stored as ``1 day 02:00:00``
  and ``-1 µs`` as ``-00:00:00.000001``; computed column-wise for ``timedelta64`` columns.

NULL (None, NaN, NaT, ``pd.NA``) stays NULL.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TextFormError", "interval_text", "is_null", "json_text", "to_text_column"]

_DAY_US = 86_400_000_000


class TextFormError(ValueError):
    """A value has no text form for its column; ``position`` is its row."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def is_null(value: object) -> bool:
    """Whether a single cell is NULL: None, ``pd.NA``, NaT or a float NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    return isinstance(value, np.datetime64 | np.timedelta64) and bool(np.isnat(value))


def json_text(value: object) -> str:
    """A JSON document: ``str`` as given, anything else encoded (ValueError if it cannot be)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(_plain(value), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not representable as JSON ({exc})") from None


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as the Python values ``json`` knows."""
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _bytea_text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    raise ValueError(f"not bytes: {type(value).__name__}")


def _array_element(value: object) -> str:
    if is_null(value):
        return "NULL"
    if isinstance(value, list | tuple | np.ndarray):
        return _array_text(value)
    if isinstance(value, np.generic):
        value = value.item()
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return "{" + ",".join(_array_element(item) for item in value) + "}"
    raise ValueError(f"not a list: {type(value).__name__}")


def interval_text(value: object) -> str:
    """A ``timedelta`` (or ``pd.Timedelta``, ``np.timedelta64``) as interval text."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.timedelta64):
        value = pd.Timedelta(value)
    if not isinstance(value, dt.timedelta):
        raise ValueError(f"not a timedelta: {type(value).__name__}")
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    days = int(math.copysign(abs(micros) // _DAY_US, micros))
    return f"{days} days {micros - days * _DAY_US} microseconds"


def _intervals_column(series: pd.Series) -> pd.Series:
    """A ``timedelta64`` column as interval text, column-wise (nanoseconds truncated)."""
    micros = series.to_numpy(dtype="timedelta64[us]").astype(np.int64)
    days = np.sign(micros) * (np.abs(micros) // _DAY_US)  # toward zero: the sign of the whole
    rest = micros - days * _DAY_US
    text = pd.Series(days.astype(str), index=series.index, dtype=object)
    text = text + " days " + rest.astype(str) + " microseconds"
    result: pd.Series = text.where(series.notna().to_numpy(), None)
    return result


_CONVERTERS: dict[str, Callable[[object], str]] = {
    "json": json_text,
    "bytea": _bytea_text,
    "uuid": str,
    "array": _array_text,
    "interval": interval_text,
}


def to_text_column(series: pd.Series, form: str) -> pd.Series:
    """*series* as an object column of text forms (see the module); NULL stays None.

    Raises :class:`TextFormError` naming the first position without a text form.
    """
    if form == "interval" and pd.api.types.is_timedelta64_dtype(series.dtype):
        return _intervals_column(series)
    convert = _CONVERTERS[form]
    values = series.to_numpy(dtype=object)
    out: list[str | None] = []
    for position, value in enumerate(values):
        if isinstance(value, list | tuple | dict | np.ndarray) or not is_null(value):
            try:
                out.append(convert(value))
            except ValueError as exc:
                raise TextFormError(str(exc), position) from None
        else:
            out.append(None)
    return pd.Series(out, index=series.index, dtype=object, name=series.name)
