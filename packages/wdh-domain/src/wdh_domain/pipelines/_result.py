"""What a pipeline run returns: output frame, failed rows, errors, warnings, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from wdh_domain._sanitize import sanitize
from wdh_domain.errors import ErrorContext, PipelineFailedError
from wdh_domain.pipelines._metrics import PipelineMetrics

__all__ = ["ROW_ERRORS_SHOWN", "FailedRow", "PipelineResult"]

ROW_ERRORS_SHOWN: Final = 3
"""Row errors quoted in the message of ``PipelineResult.raise_for_status()`` (the rest
are in ``errors`` and in the logs)."""


@dataclass(frozen=True, slots=True)
class FailedRow:
    """A row that left the output because a step reported errors for it.

    ``data`` holds the row's original values as they were in the run's input frame
    (``initial_data.iloc[row_number]``). ``row_number`` is that 0-based position; it is
    ``None`` only when a DataFrame step changed the rows in a way that cannot be traced
    (new index labels and a different row count), in which case ``data`` holds the row
    as the failing step received it. ``errors`` are the structured errors (one per field
    at fault), ``warnings`` those raised for the row before it failed.
    """

    row_number: int | None
    step: str
    data: dict[str, Any]
    errors: tuple[ErrorContext, ...]
    warnings: tuple[ErrorContext, ...] = ()

    def __repr__(self) -> str:
        # Values under sensitive keys (password, token, api_key...) never reach a repr.
        return (
            f"FailedRow(row_number={self.row_number!r}, step={self.step!r}, "
            f"data={sanitize(self.data)!r}, errors={self.errors!r}, warnings={self.warnings!r})"
        )

    @property
    def messages(self) -> list[str]:
        """The errors formatted ``[ERROR_TYPE] message | Domain: X | Row: N | Field: Y``."""
        return [error.format() for error in self.errors]


@dataclass(slots=True)
class PipelineResult:
    """Output of one ``Pipeline.run``.

    - ``success``: ``True`` when every required step completed and the run was not
      stopped. In collect mode (``stop_on_error=False``) rows may have failed in a
      successful run: they are in ``failed_rows``, not in ``output_data``.
    - ``output_data``: the rows that passed every step. On a run stopped inside a row
      step (``stop_on_error``), the frame as of the last completed step minus the rows
      that failed in the stopping step; that step's other work is discarded. On a run
      stopped by a failed step or the error threshold, the frame as of the last step
      that completed.

    Invariant (every run): each input row is in exactly one of ``output_data``,
    ``failed_rows`` or the rows a DataFrame step dropped on purpose, in input order; the
    last executed step's ``StepMetrics.rows_out == len(output_data)`` and, for row
    steps, ``rows_out == rows_in - rows_failed``.
    - ``failed_rows``: one :class:`FailedRow` per failed row, in input order.
    - ``errors``: every error as a formatted string
      (``[ERROR_TYPE] message | Domain: X | Row: N | Field: Y``); ``error_details`` holds
      the same errors as :class:`~wdh_domain.errors.ErrorContext` objects (with the
      traceback of unexpected step exceptions).
    - ``warnings`` / ``warning_details``: likewise for warnings (row warnings carry their
      row number; optional-step failures are warnings).
    - ``metrics``: run and per-step metrics; ``execution_id``: the run's unique id;
      ``stopped_at``: the step where the run stopped, or ``None``.
    """

    success: bool
    output_data: pd.DataFrame
    metrics: PipelineMetrics
    errors: list[str]
    execution_id: str
    pipeline_name: str
    warnings: list[str] = field(default_factory=list)
    failed_rows: list[FailedRow] = field(default_factory=list)
    error_details: list[ErrorContext] = field(default_factory=list)
    warning_details: list[ErrorContext] = field(default_factory=list)
    stopped_at: str | None = None

    def __repr__(self) -> str:
        # A summary: the frames and rows may be large and may hold sensitive values.
        return (
            f"PipelineResult(pipeline_name={self.pipeline_name!r}, "
            f"execution_id={self.execution_id!r}, success={self.success!r}, "
            f"rows_in={self.metrics.rows_in}, rows_out={self.metrics.rows_out}, "
            f"rows_failed={self.metrics.rows_failed}, errors={len(self.errors)}, "
            f"warnings={len(self.warnings)}, stopped_at={self.stopped_at!r})"
        )

    @property
    def rows_failed(self) -> int:
        """Number of failed rows."""
        return len(self.failed_rows)

    def failed_rows_frame(self) -> pd.DataFrame:
        """Return the failed rows as a frame for quarantine files or review.

        Columns: the original columns, then ``_row_number``, ``_step`` and ``_errors``
        (the formatted messages joined with ``"; "``).
        """
        records = [
            {
                **failed.data,
                "_row_number": failed.row_number,
                "_step": failed.step,
                "_errors": "; ".join(failed.messages),
            }
            for failed in self.failed_rows
        ]
        if not records:
            columns = [*map(str, self.output_data.columns), "_row_number", "_step", "_errors"]
            return pd.DataFrame(columns=columns)
        return pd.DataFrame(records)

    def raise_for_status(self) -> None:
        """Raise :class:`~wdh_domain.errors.PipelineFailedError` when the run did not succeed.

        The message names the pipeline, the execution id and the step where the run
        stopped, then gives the reason(s) -- the errors without a row number (a failed
        step, the error threshold, a missing column), joined with ``"; "`` -- and then the
        row errors: ``N row error(s), first: ...`` quoting up to :data:`ROW_ERRORS_SHOWN`
        of them. For example::

            Pipeline 'sample' (exec_20250101_120000_ab12cd34) failed at step 'Validate':
            [ERROR_THRESHOLD_EXCEEDED] ... | 7 row error(s), first: [VALIDATION_ERROR] ...;
            [VALIDATION_ERROR] ...; [VALIDATION_ERROR] ...

        (on one line). The error's ``operation`` is the step where the run stopped.
        """
        if self.success:
            return
        # Errors without a row are the reason the run stopped; row errors illustrate it.
        reasons = [e.format() for e in self.error_details if e.row_number is None]
        row_errors = [e.format() for e in self.error_details if e.row_number is not None]
        parts = ["; ".join(reasons)] if reasons else []
        if row_errors:
            shown = "; ".join(row_errors[:ROW_ERRORS_SHOWN])
            parts.append(f"{len(row_errors)} row error(s), first: {shown}")
        where = f" at step '{self.stopped_at}'" if self.stopped_at else ""
        raise PipelineFailedError(
            f"Pipeline '{self.pipeline_name}' ({self.execution_id}) failed{where}: "
            + (" | ".join(parts) or "no error recorded"),
            operation=self.stopped_at,
        )
