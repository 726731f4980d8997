"""Raw values of a rejected row ↔ JSON that PostgreSQL's ``jsonb`` stores exactly.

A rejected row is kept so it can be replayed, so its values must come back as they went
in. Plain JSON carries ``None``, ``bool``, ``int`` and ``str`` exactly; what it cannot
is written as a one-key object whose key names the type (a *tag*):

=========================================  ==============================================
value                                      stored as
=========================================  ==============================================
``None``, ``pd.NA``, ``pd.NaT``, NaT       ``null`` (all "missing" markers become ``None``)
``bool`` / ``numpy.bool_``                 ``true`` / ``false``
``int`` / numpy integers                   a JSON number (any size: jsonb is ``numeric``)
finite ``float`` / numpy floats            a JSON number with a decimal point (``1.5``,
                                           ``2.0``), else ``{"$float": repr}``
NaN, ±infinity, ``-0.0``, ``1e+16``        ``{"$float": "nan" | "inf" | "-inf" | repr}``
``Decimal``                                ``{"$decimal": "1.10"}`` (scale and NaN kept)
``str`` (any Unicode, kept unescaped)      a JSON string
``str`` holding NUL (``\\x00``)            ``{"$nul_str": [parts split at NUL]}``
``pd.Timestamp`` / ``numpy.datetime64``    ``{"$timestamp": ISO 8601}`` (nanoseconds, zone)
``datetime`` / ``date`` / ``time``         ``{"$datetime" | "$date" | "$time": ISO 8601}``
``timedelta``                              ``{"$timedelta": [days, seconds, microseconds]}``
``bytes`` / ``bytearray`` / memoryview     ``{"$bytes": base64}`` (read back as ``bytes``)
=========================================  ==============================================

Why tags: jsonb rejects NaN and the ``\\u0000`` escape, stores numbers as ``numeric``
(``1e+16`` would come back as the integer ``10000000000000000``, ``-0.0`` as ``0.0``)
and has no decimal, date or bytes type. A number written with a decimal point and no
exponent is stored digit for digit and reads back as the same float.

Other types (lists, dicts, arbitrary objects) are refused, never stringified: a raw
value that could not be replayed as it was must not be stored as if it could. Column
order is not kept by ``jsonb`` (it orders keys itself); a replay orders columns by its
model.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = [
    "UnstorableValueError",
    "decode_raw_values",
    "dumps_raw_values",
    "encode_raw_values",
]

_TAGS: Final = frozenset(
    {
        "$float",
        "$decimal",
        "$nul_str",
        "$timestamp",
        "$datetime",
        "$date",
        "$time",
        "$timedelta",
        "$bytes",
    }
)


class UnstorableValueError(ValueError):
    """A raw value of a type :func:`encode_raw_values` cannot store exactly.

    ``key`` is the column it came from. The message names the type, never the value.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def _encode_float(value: float) -> Any:
    if not math.isfinite(value):
        return {"$float": repr(value)}  # 'nan', 'inf', '-inf'
    text = repr(value)
    if "e" in text or (value == 0.0 and math.copysign(1.0, value) < 0):
        return {"$float": text}
    return value


def _check_utf8(key: str, value: str) -> None:
    """Refuse a lone surrogate (say, from ``errors="surrogateescape"``): not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnstorableValueError(
            key, f"the text has a character UTF-8 cannot encode at position {exc.start}"
        ) from None


def _encode_value(key: str, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per type
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        if not value.isascii():
            _check_utf8(key, value)
        return {"$nul_str": value.split("\x00")} if "\x00" in value else value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _encode_float(float(value))
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        value = pd.Timestamp(value)
    if isinstance(value, pd.Timestamp):
        return {"$timestamp": value.isoformat()}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta) and not isinstance(value, pd.Timedelta):
        return {"$timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    raise UnstorableValueError(
        key,
        f"cannot store a raw value of type {type(value).__name__} exactly "
        "(supported: None, bool, int, float, Decimal, str, bytes, date, time, datetime, "
        "timedelta, pandas Timestamp)",
    )


def encode_raw_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready form of one row's raw values (see the module table).

    Raises:
        UnstorableValueError: a key is not a string, or a value has an unsupported type.
    """
    encoded: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise UnstorableValueError(
                repr(key), f"column names must be strings, got {type(key).__name__}"
            )
        encoded[key] = _encode_value(key, value)
    return encoded


def dumps_raw_values(values: Mapping[str, Any]) -> str:
    """:func:`encode_raw_values` as JSON text (non-ASCII kept as is, not ``\\u`` escaped)."""
    return json.dumps(encode_raw_values(values), ensure_ascii=False, allow_nan=False)


def _decode_tag(tag: str, payload: Any) -> Any:  # noqa: PLR0911 - one branch per tag
    if tag == "$float":
        return float(payload)
    if tag == "$decimal":
        return Decimal(payload)
    if tag == "$nul_str":
        return "\x00".join(payload)
    if tag == "$timestamp":
        return pd.Timestamp(payload)
    if tag == "$datetime":
        return dt.datetime.fromisoformat(payload)
    if tag == "$date":
        return dt.date.fromisoformat(payload)
    if tag == "$time":
        return dt.time.fromisoformat(payload)
    if tag == "$timedelta":
        days, seconds, microseconds = payload
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    return base64.b64decode(payload)  # "$bytes", the last of _TAGS


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in _TAGS:
            raise ValueError(f"not a raw-value tag: keys {sorted(value)}")
        ((tag, payload),) = value.items()
        return _decode_tag(tag, payload)
    if isinstance(value, list):
        raise ValueError("a raw value is never a JSON array")
    return value


def decode_raw_values(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The row's raw values as they were given to :func:`encode_raw_values`.

    *stored* is the parsed JSON (as the driver returns ``jsonb``). "Missing" markers
    come back as ``None`` and ``bytearray``/``memoryview`` as ``bytes``; everything
    else compares equal to what was stored (NaN: ``math.isnan``) and has its type.

    Raises:
        ValueError: *stored* holds an object that is not one of the tags.
    """
    return {key: _decode_value(value) for key, value in stored.items()}
