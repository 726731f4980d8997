"""Arrow kernels for fast paths of the column checks, used when pyarrow is there.

They take cells that already match the kind's canonical text (ASCII digits, ``+``,
``-`` and ``.`` only), so byte offsets are character offsets. Without pyarrow, or for
text pandas does not keep in Arrow, they return ``None`` and the caller uses pandas.

A ``Decimal`` field with both ``max_digits`` (at most 38) and ``decimal_places`` comes
out as an Arrow ``decimal128(max_digits, decimal_places)`` column: its values are the
same numbers pydantic gives (``Decimal`` objects when read one by one), each at the
field's scale (``1.5`` reads ``1.50``), parsed and written without a Python object per
cell.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from wdh_domain.pipelines._schema_pattern import arrow_modules

__all__ = [
    "arrow_dates",
    "arrow_decimal_digits",
    "arrow_decimals",
    "decimal_bounds",
    "decimal_column",
]


def _cells(text: pd.Series) -> tuple[Any, Any, Any] | None:
    """``(pyarrow, pyarrow.compute, the cells as an Arrow array)`` for Arrow-backed text."""
    modules = arrow_modules()
    if modules is None or not isinstance(text.dtype, pd.StringDtype):
        return None
    if text.dtype.storage != "pyarrow":
        return None
    pa, pc = modules
    return pa, pc, pa.array(text)  # Arrow-backed text: no copy


def arrow_decimal_digits(text: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(digits before the point, digits after it) of each ``[+-]?[0-9]+(\\.[0-9]+)?``
    cell, without leading zeros before the point or trailing zeros after it."""
    arrow = _cells(text)
    if arrow is None:
        return None
    _, pc, cells = arrow
    digits = pc.utf8_ltrim(pc.utf8_ltrim(cells, "+-"), "0")
    point = pc.find_substring(digits, ".").to_numpy(zero_copy_only=False)
    length = pc.binary_length(digits).to_numpy(zero_copy_only=False)
    trimmed = pc.binary_length(pc.utf8_rtrim(digits, "0")).to_numpy(zero_copy_only=False)
    has_point = point >= 0
    whole = np.where(has_point, point, length)
    places = np.where(has_point, trimmed - point - 1, 0)
    return whole.astype(np.int64), places.astype(np.int64)


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
    out: np.ndarray = days[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return out


def arrow_dates(text: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """For ``[0-9]{4}-[0-9]{2}-[0-9]{2}`` cells: which are real calendar dates (year 1
    to 9999, as Python's ``date``), and those dates as ``datetime.date`` objects."""
    arrow = _cells(text)
    if arrow is None:
        return None
    pa, pc, cells = arrow

    def part(start: int, stop: int) -> np.ndarray:
        piece = pc.utf8_slice_codeunits(cells, start, stop)
        numbers: np.ndarray = pc.cast(piece, pa.int64()).to_numpy(zero_copy_only=False)
        return numbers

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    in_range = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    real = in_range & (day <= _days_in_month(year, month))
    valid = pc.filter(cells, pa.array(real))
    days = pc.cast(valid, pa.date32()).to_pandas(date_as_object=True).to_numpy(dtype=object)
    return real, days


_MAX_DECIMAL128_DIGITS = 38


def _decimal_type(pa: Any, max_digits: int | None, decimal_places: int | None) -> Any:
    if max_digits is None or decimal_places is None or max_digits > _MAX_DECIMAL128_DIGITS:
        return None
    return pa.decimal128(max_digits, decimal_places)


def arrow_decimals(
    text: pd.Series | None, ok: np.ndarray, max_digits: int | None, decimal_places: int | None
) -> Any:
    """The ``ok`` cells of *text* (canonical decimal text that fits the field's digits)
    as an Arrow decimal array, NULL elsewhere; ``None`` when the field has no Arrow
    decimal type or pyarrow is missing. *text* ``None``: all NULL (pydantic fills in)."""
    modules = arrow_modules()
    if modules is None:
        return None
    pa, pc = modules
    type_ = _decimal_type(pa, max_digits, decimal_places)
    if type_ is None:
        return None
    if text is None or not ok.any():
        return pa.nulls(len(ok), type=type_)
    arrow = _cells(text)
    cells = (
        arrow[2] if arrow is not None else pa.array(text.to_numpy(dtype=object), from_pandas=True)
    )
    kept = pc.if_else(pa.array(ok), cells, pa.scalar(None, type=cells.type))
    return pc.cast(kept, type_)


def decimal_bounds(values: Any, ok: np.ndarray, checks: list[tuple[Any, str]]) -> np.ndarray:
    """``ok`` minus the cells of an Arrow decimal array that break a bound; *checks*
    are ``(bound, kernel)`` pairs such as ``(0, "greater")``."""
    modules = arrow_modules()
    assert modules is not None  # noqa: S101 - only Arrow decimal arrays come here
    pa, pc = modules
    for bound, kernel in checks:
        try:
            # Exact: a float bound's binary value, as pydantic compares a Decimal to it.
            limit = pa.scalar(Decimal(bound), type=values.type)
        except (pa.ArrowInvalid, TypeError, ValueError):
            return np.zeros_like(ok)  # not exact at the field's scale: pydantic judges
        passed = getattr(pc, kernel)(values, limit).fill_null(False)
        ok = ok & passed.to_numpy(zero_copy_only=False)
    return ok


def decimal_column(values: Any, missing: np.ndarray, at: np.ndarray, fixed: np.ndarray) -> Any:
    """The output column of an Arrow decimal field: *values* with pydantic's values
    ``fixed`` at positions ``at`` and NULL at the *missing* cells, as a pandas array."""
    modules = arrow_modules()
    assert modules is not None  # noqa: S101 - only Arrow decimal arrays come here
    pa, pc = modules
    if len(at):
        mask = np.zeros(len(values), dtype=bool)
        mask[at] = True
        values = pc.replace_with_mask(
            values, pa.array(mask), pa.array(list(fixed), type=values.type)
        )
    if missing.any():
        values = pc.if_else(pa.array(missing), pa.scalar(None, type=values.type), values)
    return pd.arrays.ArrowExtensionArray(values)
