"""The records of the quarantine: what a run rejects, what is stored, what a replay reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wdh_logging import sanitize_for_logging

__all__ = ["RejectedRow", "RejectionReason", "ReplayRow", "StoredRejectedRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectionReason:
    """Why a row was rejected: the field at fault (``None``: the row as a whole), a
    machine-readable code (``VALIDATION_ERROR``, ``missing``...) and a message for people."""

    error_code: str
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectedRow:
    """One error of one rejected input row, to be written by ``write_rejected_rows``.

    ``input_row`` is the 0-based position of the row in the run's input; ``file_line``
    the 1-based line of the file where its record starts (``None`` when the input was
    not a file). A row with several faulty fields is several ``RejectedRow`` with the
    same ``input_row`` and ``raw_values``.
    """

    input_row: int
    reason: RejectionReason
    raw_values: Mapping[str, Any]
    file_line: int | None = None

    def __repr__(self) -> str:
        # Raw values under sensitive column names (password, token...) never reach a repr.
        return (
            f"RejectedRow(input_row={self.input_row!r}, reason={self.reason!r}, "
            f"raw_values={sanitize_for_logging(dict(self.raw_values))!r}, "
            f"file_line={self.file_line!r})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRejectedRow:
    """One row of ``rejected_rows`` as listed by ``list_rejected_rows``."""

    rejected_row_id: int
    execution_id: str
    domain: str
    source_file: str | None
    input_row: int
    file_line: int | None
    reason: RejectionReason
    raw_values: dict[str, Any]
    rejected_at: dt.datetime
    resolved_by_execution_id: str | None
    resolved_at: dt.datetime | None

    def __repr__(self) -> str:
        return (
            f"StoredRejectedRow(rejected_row_id={self.rejected_row_id!r}, "
            f"execution_id={self.execution_id!r}, input_row={self.input_row!r}, "
            f"file_line={self.file_line!r}, reason={self.reason!r}, "
            f"raw_values={sanitize_for_logging(self.raw_values)!r}, "
            f"resolved_by_execution_id={self.resolved_by_execution_id!r})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRow:
    """One unresolved input row of a run, with all its current reasons: what a replay
    re-validates. ``raw_values`` are decoded back to the values that were stored."""

    input_row: int
    file_line: int | None
    source_file: str | None
    domain: str
    raw_values: dict[str, Any]
    reasons: tuple[RejectionReason, ...] = field(default=())

    def __repr__(self) -> str:
        return (
            f"ReplayRow(input_row={self.input_row!r}, file_line={self.file_line!r}, "
            f"domain={self.domain!r}, raw_values={sanitize_for_logging(self.raw_values)!r}, "
            f"reasons={self.reasons!r})"
        )
