"""Blank cells are missing: one column-wise rule shared by both validation steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["blank_mask", "blanks_to_none", "column_cells"]


def blank_mask(column: pd.Series) -> np.ndarray:
    """True where a cell is missing: NaN, None, ``pd.NA``, ``NaT`` or a text cell that is
    empty or whitespace only (``str.strip() == ""``)."""
    missing = np.array(column.isna(), dtype=bool)
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        # .str yields NaN for the cells that are not text; those are not blank
        try:
            stripped = column.str.strip()
        except AttributeError:  # pandas refuses .str on an object column with no text
            return missing
        empty = np.asarray(stripped.eq("").fillna(value=False), dtype=bool)
        missing |= empty
    return missing


def blanks_to_none(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with every missing or blank cell (see :func:`blank_mask`) as ``None``.

    Only the columns that hold such cells change (to ``object`` dtype); the others are
    shared with ``df``. Columns must be unique.
    """
    replaced: dict[Any, pd.Series] = {}
    for label in df.columns:
        column = df[label]
        mask = blank_mask(column)
        if mask.any():
            values = column.to_numpy(dtype=object, copy=True)
            values[mask] = None
            replaced[label] = pd.Series(values, index=df.index, dtype=object, copy=False)
    if not replaced:
        return df
    out = df.copy(deep=False)
    for label, series in replaced.items():
        out[label] = series
    return out


def column_cells(df: pd.DataFrame) -> tuple[list[list[Any]], list[np.ndarray]]:
    """Each column's cells as a list of Python values (``Series.tolist``), in column
    order, with every missing or blank cell as ``None``; and each column's
    :func:`blank_mask`.

    The lists hold the same values as ``blanks_to_none(df)``'s columns, without building
    its object columns: the blank cells are found column-wise and patched in the lists.
    """
    lists: list[list[Any]] = []
    masks: list[np.ndarray] = []
    for position in range(df.shape[1]):
        column = df.iloc[:, position]
        values = column.tolist()
        mask = blank_mask(column)
        for blank in np.flatnonzero(mask).tolist():
            values[blank] = None
        lists.append(values)
        masks.append(mask)
    return lists, masks
