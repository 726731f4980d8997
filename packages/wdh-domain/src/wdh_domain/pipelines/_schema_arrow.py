"""Arrow kernels for two fast paths of the column checks, used when pyarrow is there.

Both take cells that already match the kind's canonical text (ASCII digits, ``-`` and
``.`` only), so byte offsets are character offsets. Without pyarrow, or for text pandas
does not keep in Arrow, they return ``None`` and the caller uses pandas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from wdh_domain.pipelines._schema_pattern import arrow_modules

__all__ = ["arrow_dates", "arrow_decimal_digits"]


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
