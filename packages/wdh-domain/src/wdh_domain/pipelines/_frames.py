"""Fast conversions between a DataFrame and the row dicts that row steps work on.

No ``iterrows`` and no per-row pandas calls: each column is turned into a Python list
once (``Series.tolist`` yields native Python values), rows are zipped from those lists,
and the output is rebuilt with one ``DataFrame`` constructor call.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

__all__ = ["frame_from_columns", "frame_from_rows", "frame_to_rows", "track_row_numbers"]


def frame_to_rows(df: pd.DataFrame) -> list[dict[Any, Any]]:
    """Return one fresh dict per row (column label -> Python value), in frame order.

    The columns must be unique (a dict cannot hold two values under one label).
    """
    columns = list(df.columns)
    if not columns:
        return [{} for _ in range(len(df))]
    lists = [df.iloc[:, position].tolist() for position in range(len(columns))]
    return list(map(dict, map(zip, repeat(columns), zip(*lists, strict=True))))


def frame_from_rows(
    rows: Sequence[dict[Any, Any]], *, index: pd.Index, template: pd.DataFrame
) -> pd.DataFrame:
    """Build a frame from row dicts with the given index, keeping the template's dtypes.

    Column dtypes are first inferred from the Python values (int64, float64, bool, str
    and datetimes come back as they went in). A column the ``template`` also has whose
    inferred dtype differs (``Int64``, ``category``, ``boolean``, ``string``, ``int32``,
    ``float32``...) is cast back to the template's dtype when every value still fits,
    i.e. the cast changes no value and no missing-ness; otherwise (a step wrote ``1.5``
    into an ``Int64`` column, or a label that is not a category) the inferred dtype is
    kept. With no rows, the result is an empty frame with the ``template``'s columns
    and dtypes.
    """
    if not rows:
        return template.iloc[:0]
    return _restore_dtypes(pd.DataFrame(rows, index=index), template)


def frame_from_columns(
    columns: dict[Any, list[Any]], *, index: pd.Index, template: pd.DataFrame
) -> pd.DataFrame:
    """:func:`frame_from_rows` for data held column-wise: ``columns`` maps each label to
    its values (one per index label), in column order.

    Same dtypes as :func:`frame_from_rows` would give for the same rows (pandas infers
    a column's dtype the same way from a list as from row dicts), without a dict per
    row; an empty ``index`` gives the ``template``'s empty frame too.
    """
    if not len(index):
        return template.iloc[:0]
    return _restore_dtypes(pd.DataFrame(columns, index=index), template)


def _restore_dtypes(frame: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each column the ``template`` also has cast back to the template's
    dtype where that changes no value (see :func:`frame_from_rows`)."""
    if not template.columns.is_unique:
        return frame
    original: dict[Any, Any] = dict(zip(template.columns, template.dtypes, strict=True))
    restored: dict[Any, pd.Series] = {}
    for column, dtype in zip(frame.columns, frame.dtypes, strict=True):
        wanted = original.get(column)
        if wanted is None or dtype == wanted:
            continue
        cast = _cast_if_lossless(frame[column], wanted)
        if cast is not None:
            restored[column] = cast
    if not restored:
        return frame
    frame = frame.copy(deep=False)
    for column, series in restored.items():
        frame[column] = series
    return frame


def _cast_if_lossless(series: pd.Series, dtype: Any) -> pd.Series | None:
    """Return ``series`` cast to ``dtype`` when no value or missing-ness changes, else None."""
    if isinstance(dtype, pd.StringDtype) and infer_dtype(series, skipna=True) != "string":
        return None  # numbers, dates, Decimals... are not text: no cast can be lossless
    if isinstance(dtype, pd.CategoricalDtype) and not bool(
        series.dropna().isin(dtype.categories).all()
    ):
        return None  # a label that is not a category would become NaN
    try:
        cast = series.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        return None
    before = series.to_numpy(dtype=object)
    after = cast.to_numpy(dtype=object)
    missing = pd.isna(before)
    if not np.array_equal(missing, pd.isna(after)):
        return None
    present = ~missing
    # Elementwise Python equality: 5 != "5", 1.5 != 1, an int32 wrap-around != its source.
    try:
        same = bool(np.all(before[present] == after[present]))
    except (TypeError, ValueError):  # cells whose == is not a plain bool (arrays, ...)
        return None
    return cast if same else None


def track_row_numbers(
    before: pd.DataFrame, after: pd.DataFrame, row_numbers: list[int] | None
) -> tuple[bool, list[int] | None]:
    """Map the rows a DataFrame step returned back to the run's input row numbers.

    ``row_numbers[i]`` is the input row number of row ``i`` of ``before`` (``None`` means
    row ``i`` is input row ``i``). Returns ``(traceable, new_row_numbers)``: rows are
    traced by index label when ``before``'s index is unique, and by position when the
    step kept the row count but relabelled the rows. ``traceable`` is ``False`` when
    neither works (new labels and a different row count).
    """
    if after is before:
        return True, row_numbers
    old_index, new_index = before.index, after.index
    same_length = len(old_index) == len(new_index)
    if new_index is old_index or (same_length and new_index.equals(old_index)):
        return True, row_numbers
    if old_index.is_unique:
        positions = old_index.get_indexer(new_index)
        if len(positions) == 0 or positions.min() >= 0:
            mapped: list[int] = positions.tolist()
            if row_numbers is None:
                return True, mapped
            return True, [row_numbers[position] for position in mapped]
    if same_length:
        return True, row_numbers
    return False, None
