"""A validation result's failed rows as quarantine records (``wdh_io.quarantine``).

The pipeline reports a failed row by its 0-based position in the frame it was given.
A streamed file is validated chunk by chunk, so a chunk's positions are shifted by the
chunk's first input row (``row_offset``) to become the row's position in the file, and
``file_lines`` (one per row of the chunk, e.g. ``CsvChunk.lines``) gives each row's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from wdh_domain.pipelines import PipelineResult
from wdh_io.quarantine import RejectedRow, RejectionReason

__all__ = ["RowWithoutPositionError", "rejected_rows", "rejection_reasons"]

_META_COLUMNS = frozenset({"_row", "_step"})


class RowWithoutPositionError(ValueError):
    """A failed row has no input position (a DataFrame step lost it), so it cannot be
    quarantined against the row it came from."""


def _reason(error: dict[str, Any]) -> RejectionReason:
    code = error.get("code")
    field = error.get("field")
    return RejectionReason(
        error_code=str(code) if isinstance(code, str) and code else str(error["error_type"]),
        message=str(error["message"]),
        field=str(field) if isinstance(field, str) and field else None,
    )


def _row_errors(result: PipelineResult) -> list[dict[str, Any]]:
    """The errors that belong to a row (whole-step errors have no row), as dicts."""
    errors = result.errors
    errors = errors[errors["row"].notna()]
    columns = [str(c) for c in errors.columns]
    cells = [errors[c].tolist() for c in errors.columns]  # column-wise: no per-cell boxing
    return [dict(zip(columns, row, strict=True)) for row in zip(*cells, strict=True)]


def rejection_reasons(result: PipelineResult) -> dict[int, list[RejectionReason]]:
    """Each failed row's reasons, by its position in the validated frame, in the
    order the errors were found."""
    reasons: dict[int, list[RejectionReason]] = {}
    for error in _row_errors(result):
        reasons.setdefault(int(error["row"]), []).append(_reason(error))
    return reasons


def rejected_rows(
    result: PipelineResult,
    *,
    row_offset: int = 0,
    file_lines: Sequence[int] | None = None,
) -> list[RejectedRow]:
    """One :class:`~wdh_io.quarantine.RejectedRow` per error of each failed row of
    *result*, with the row's input values.

    ``input_row`` is ``row_offset`` + the row's position in the validated frame;
    ``file_line`` is ``file_lines[position]`` when *file_lines* is given.

    Raises:
        RowWithoutPositionError: a failed row lost its input position.
    """
    failed = result.failed_rows
    if failed.empty:
        return []
    if failed["_row"].isna().any():
        step = failed.loc[failed["_row"].isna(), "_step"].iloc[0]
        msg = (
            f"step {step!r} rejected a row whose input position an earlier DataFrame step "
            "lost; rejected rows need their input row"
        )
        raise RowWithoutPositionError(msg)
    raw_by_row = dict(
        zip(failed["_row"].astype("int64").tolist(), _raw_records(failed), strict=True)
    )
    out: list[RejectedRow] = []
    for position, reasons in rejection_reasons(result).items():
        raw = raw_by_row.get(position, {})
        line = int(file_lines[position]) if file_lines is not None else None
        out.extend(
            RejectedRow(
                input_row=row_offset + position, reason=reason, raw_values=raw, file_line=line
            )
            for reason in reasons
        )
    return out


def _raw_records(failed: pd.DataFrame) -> list[dict[str, Any]]:
    """Each failed row's input values by column name, built column by column; pandas'
    missing markers are stored as JSON null, as an empty CSV field reads."""
    names: list[str] = []
    columns: list[list[Any]] = []
    for label in failed.columns:
        if label in _META_COLUMNS:
            continue
        column = failed[label]
        values = column.tolist()
        for position in np.flatnonzero(_missing(column)).tolist():
            values[position] = None
        names.append(str(label))
        columns.append(values)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)] or [
        {} for _ in range(len(failed))
    ]


def _missing(column: pd.Series) -> np.ndarray:
    """Where a cell is a missing marker (None, NaN, NA, NaT); lists and arrays are not."""
    if column.dtype != object:
        return np.asarray(column.isna(), dtype=bool)
    return np.fromiter((_is_missing(v) for v in column.tolist()), dtype=bool, count=len(column))


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # lists, arrays: not a scalar, so not missing
        return False
