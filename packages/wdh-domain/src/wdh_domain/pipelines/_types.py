"""Pipeline step protocols and the values passed between the pipeline and its steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

__all__ = [
    "DataFrameStep",
    "PipelineContext",
    "Row",
    "RowIssue",
    "RowTransformStep",
    "StepResult",
    "ValidationStep",
]

Row = dict[str, Any]
"""One row as a row step sees it: column name -> Python value (NaN for missing floats)."""


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """Execution context of one pipeline run, passed to every step.

    A new context is made for every ``Pipeline.run``: ``execution_id`` is unique per run
    (``exec_%Y%m%d_%H%M%S_<random>``, UTC), ``timestamp`` is the run's start (UTC),
    ``config`` holds the free-form settings of the pipeline's configuration and
    ``domain`` the data domain named in error messages.
    """

    pipeline_name: str
    execution_id: str
    timestamp: datetime
    config: Mapping[str, Any] = field(default_factory=dict)
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class RowIssue:
    """An error or warning about one row, optionally naming the field at fault.

    Row steps may put plain strings or ``RowIssue`` objects in ``StepResult.errors`` and
    ``StepResult.warnings``; ``RowIssue`` adds the field and the ``ERROR_TYPE`` shown in
    the formatted message (``VALIDATION_ERROR`` by default for errors, ``WARNING`` for
    warnings when left ``None``) and ``code``, the precise cause (pydantic's error type,
    say; the ``error_type`` when left ``None``).
    """

    message: str
    field: str | None = None
    error_type: str | None = None
    code: str | None = None


@dataclass(slots=True)
class StepResult:
    """What a row step returns for one row.

    ``row`` is the transformed row (it replaces the input row in the output). A result
    with any ``errors`` fails the row: the row leaves the output and is reported in
    ``PipelineResult.failed_rows``. ``warnings`` are kept in the result and the row stays.
    """

    row: Row
    warnings: Sequence[str | RowIssue] = ()
    errors: Sequence[str | RowIssue] = ()


@runtime_checkable
class DataFrameStep(Protocol):
    """Bulk transformation of the whole frame (vectorized pandas), Decision #3.

    ``execute`` gets a shallow copy of the current frame (its own, so assigning columns
    in place cannot reach the caller or, when the step fails, the data that passes on)
    and returns the new frame; returning the frame it was given is free.

    Row provenance: when a later step can fail rows, the frame carries the column
    ``ROW_COLUMN`` (``__wdh_row__``, each row's input position). Keep it, as pandas
    does through sort, filter, ``reset_index(drop=True)``, ``concat``, ``assign`` and a
    left ``merge``, and every later failure names its exact input row; the column is
    removed from the step's output. A step that builds new rows (aggregation, pivot)
    decides their provenance: keep the column (e.g. ``.agg({ROW_COLUMN: "min"})`` names
    an aggregate after its first input row) or drop it, and those rows' failures carry
    no row number (``<NA>``) and quote the row as the failing step saw it. A step that
    drops the column keeps provenance only if it returns the same rows under the same
    unique index (a column projection); otherwise its rows are untraced. Row numbers
    are never guessed from labels or positions. A step may define a ``name``
    attribute; otherwise its class name is used.
    """

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:
        """Transform the entire frame."""
        ...


@runtime_checkable
class RowTransformStep(Protocol):
    """Per-row transformation with row-level error tracking, Decision #3.

    ``apply`` gets one row as a dict (a fresh dict per row, which the step may modify)
    and returns a :class:`StepResult`. To fail a row, return errors or raise
    :class:`~wdh_domain.errors.DataValidationError`; any other exception is treated as a
    bug in the step: the row fails with its traceback and the step counts as failed
    (the run is not successful).

    A row step may also define ``prepare(df, context) -> DataFrame``: called once with
    the whole frame before the rows are made, for column-wise pre-work (the rows
    ``apply`` gets are made from its result).
    """

    def apply(self, row: Row, context: PipelineContext) -> StepResult:
        """Transform one row."""
        ...


@runtime_checkable
class ValidationStep(Protocol):
    """A whole-frame step that rejects rows (``ValidateSchemaStep`` is one).

    ``validate`` returns an object with ``data`` (the valid rows), ``failed`` (positions
    of the rejected rows in ``df``), ``errors`` (a frame with ``position``, ``field``,
    ``code``, ``message``) and ``stopped`` (it stopped early because more than
    ``max_failures`` rows failed; ``None`` means no limit).
    """

    def validate(
        self, df: pd.DataFrame, context: PipelineContext, *, max_failures: int | None = None
    ) -> Any:
        """Validate the entire frame."""
        ...
