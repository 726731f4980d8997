"""A validation result's failed rows as quarantine records (``wdh_io.quarantine``).

The pipeline reports a failed row by its 0-based position in the frame it was given.
A streamed file is validated chunk by chunk, so a chunk's positions are shifted by the
chunk's first input row (``row_offset``) to become the row's position in the file, and
``file_lines`` (one per row of the chunk, e.g. ``CsvChunk.lines``) gives each row's line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    """The errors that belong to a row (whole-step errors have no row)."""
    errors = result.errors
    return [
        {str(k): v for k, v in e.items()} for e in errors[errors["row"].notna()].to_dict("records")
    ]


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
    values = [c for c in failed.columns if c not in _META_COLUMNS]
    raw_by_row: dict[int, dict[str, Any]] = {
        int(position): _raw(record)
        for position, record in zip(
            failed["_row"].to_numpy(), failed[values].to_dict("records"), strict=True
        )
    }
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


def _raw(record: dict[Any, Any]) -> dict[str, Any]:
    # pandas' missing markers are stored as JSON null, as an empty CSV field reads.
    return {str(k): (None if _is_missing(v) else v) for k, v in record.items()}


def _is_missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # lists, arrays: not a scalar, so not missing
        return False
