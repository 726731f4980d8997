"""Errors and warnings of a run, kept column by column (never one object per row)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = ["ISSUE_COLUMNS", "IssueLog", "empty_issues"]

ISSUE_COLUMNS: Final = ("row", "step", "field", "error_type", "code", "message", "traceback")
"""Columns of ``PipelineResult.errors`` and ``PipelineResult.warnings``, one row per issue:

- ``row``: the input row's 0-based position (``Int64``; ``<NA>`` for an issue about a
  whole step, or a row whose origin a DataFrame step did not keep);
- ``step``: the step that reported it; ``field``: the dotted field, or ``None``;
- ``error_type``: the ``[ERROR_TYPE]`` of the formatted message (``VALIDATION_ERROR``,
  ``STEP_ERROR``, ``ERROR_THRESHOLD_EXCEEDED``, ``WARNING``...);
- ``code``: the precise cause -- pydantic's error type for validation failures
  (``int_parsing``, ``greater_than``, ``missing``...), else the ``error_type`` again;
- ``message``: readable text, secrets masked; ``traceback``: the sanitized traceback of
  an unexpected exception (a bug in a step), else ``None``.
"""


def _new_empty_issues() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.array([], dtype="Int64"),
            **{name: np.array([], dtype=object) for name in ISSUE_COLUMNS[1:]},
        }
    )


_EMPTY: Final = _new_empty_issues()


def empty_issues() -> pd.DataFrame:
    """An issue table with no rows and the columns' dtypes (a cheap copy: every run of a
    clean pipeline returns two of them)."""
    return _EMPTY.copy(deep=False)


class IssueLog:
    """Append-only issue table: single issues go to Python lists, column-wise batches
    (a validation step's errors) are kept as frames; :meth:`frame` joins them in order."""

    def __init__(self) -> None:
        self._lists: dict[str, list[Any]] = {name: [] for name in ISSUE_COLUMNS}
        self._parts: list[pd.DataFrame] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        *,
        row: int | None,
        step: str,
        field: str | None,
        error_type: str,
        message: str,
        code: str | None = None,
        traceback: str | None = None,
    ) -> None:
        """Record one issue."""
        values = (row, step, field, error_type, code or error_type, message, traceback)
        for name, value in zip(ISSUE_COLUMNS, values, strict=True):
            self._lists[name].append(value)
        self._count += 1

    def add_frame(self, frame: pd.DataFrame) -> None:
        """Record a batch of issues given as a frame with the :data:`ISSUE_COLUMNS`."""
        self._flush()
        self._parts.append(frame.loc[:, list(ISSUE_COLUMNS)])
        self._count += len(frame)

    def extend(self, other: IssueLog) -> None:
        """Append every issue of ``other``."""
        if len(other):
            self.add_frame(other.frame())

    def _flush(self) -> None:
        if self._lists["step"]:
            self._parts.append(_list_frame(self._lists))
            self._lists = {name: [] for name in ISSUE_COLUMNS}

    def frame(self) -> pd.DataFrame:
        """The issues as one frame (columns :data:`ISSUE_COLUMNS`), in recording order."""
        self._flush()
        if not self._parts:
            return empty_issues()
        if len(self._parts) == 1:
            return self._parts[0].reset_index(drop=True)
        return pd.concat(self._parts, ignore_index=True)


def _list_frame(lists: dict[str, list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.array(lists["row"], dtype="Int64"),
            **{name: np.array(lists[name], dtype=object) for name in ISSUE_COLUMNS[1:]},
        }
    )
