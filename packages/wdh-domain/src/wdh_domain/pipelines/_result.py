"""What a pipeline run returns: output frame, failed rows, errors, warnings, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pandas as pd

from wdh_domain.errors import ErrorContext, PipelineFailedError
from wdh_domain.pipelines._metrics import PipelineMetrics

__all__ = ["FAILED_ROW_COLUMNS", "ROW_ERRORS_SHOWN", "PipelineResult", "format_issues"]

ROW_ERRORS_SHOWN: Final = 3
"""Row errors quoted in the message of ``PipelineResult.raise_for_status()`` (the rest
are in ``errors`` and in the logs)."""

FAILED_ROW_COLUMNS: Final = ("_row", "_step")
"""Columns ``PipelineResult.failed_rows`` puts before the input's own columns."""


def format_issues(issues: pd.DataFrame, domain: str | None, limit: int | None = None) -> list[str]:
    """Format issue-table rows as ``[ERROR_TYPE] message | Domain: X | Row: N | Field: Y``."""
    shown = issues if limit is None else issues.head(limit)
    out: list[str] = []
    for row, field, error_type, message in zip(
        shown["row"].tolist(),
        shown["field"].tolist(),
        shown["error_type"].tolist(),
        shown["message"].tolist(),
        strict=True,
    ):
        context = ErrorContext(
            error_type=error_type,
            message=message,
            domain=domain,
            row_number=None if row is pd.NA or row is None else int(row),
            field=field,
        )
        out.append(context.format())
    return out


@dataclass(slots=True)
class PipelineResult:
    """Output of one ``Pipeline.run``.

    - ``success``: ``True`` when every required step completed and the run was not
      stopped. In collect mode (``stop_on_error=False``) rows may have failed in a
      successful run: they are in ``failed_rows``, not in ``output_data``.
    - ``output_data``: the rows that passed every step. When the run stopped inside a
      step (a row error with ``stop_on_error``, or the error budget exceeded), the frame
      as the previous step left it minus the rows that failed in the stopping step; that
      step's other work is discarded. When a required step raised, the frame as of the
      last step that completed.
    - ``failed_rows``: one row per failed row, in input order: ``_row`` (the input row's
      0-based position, ``<NA>`` when a DataFrame step lost it), ``_step`` (the step
      that rejected it), then the row's values as they were in the input (as the
      failing step saw them when ``_row`` is ``<NA>``).
    - ``errors``: every error, one per row (see ``ISSUE_COLUMNS``: ``row``, ``step``,
      ``field``, ``error_type``, ``code``, ``message``, ``traceback``), in the order
      they were found: field errors of failed rows, then whole-step errors (a step that
      raised, the error threshold) with ``row`` ``<NA>``.
    - ``warnings``: the same table for warnings (row warnings carry their row; a skipped
      optional step is a warning without one).
    - ``metrics``: run and per-step metrics; ``execution_id``: the run's unique id;
      ``stopped_at``: the step where the run stopped, or ``None``; ``domain``: the data
      domain named in formatted messages.

    Invariant (every run): each input row is in exactly one of ``output_data``,
    ``failed_rows`` or the rows a DataFrame step dropped on purpose; the last executed
    step's ``StepMetrics.rows_out == len(output_data)`` and, for row and validation
    steps, ``rows_out == rows_in - rows_failed``.
    """

    success: bool
    output_data: pd.DataFrame
    failed_rows: pd.DataFrame
    errors: pd.DataFrame
    warnings: pd.DataFrame
    metrics: PipelineMetrics
    execution_id: str
    pipeline_name: str
    domain: str | None = None
    stopped_at: str | None = None

    def __repr__(self) -> str:
        # A summary: the frames may be large and may hold sensitive values.
        return (
            f"PipelineResult(pipeline_name={self.pipeline_name!r}, "
            f"execution_id={self.execution_id!r}, success={self.success!r}, "
            f"rows_in={self.metrics.rows_in}, rows_out={self.metrics.rows_out}, "
            f"rows_failed={self.metrics.rows_failed}, errors={len(self.errors)}, "
            f"warnings={len(self.warnings)}, stopped_at={self.stopped_at!r})"
        )

    @property
    def rows_failed(self) -> int:
        """Number of failed rows (``len(failed_rows)``)."""
        return len(self.failed_rows)

    def error_summary(self) -> pd.DataFrame:
        """Errors counted per ``step``, ``field`` and ``code`` (column ``count``), most
        frequent first; whole-step errors have no field (missing)."""
        columns = ["step", "field", "code"]
        if self.errors.empty:
            return pd.DataFrame({**{c: [] for c in columns}, "count": []}).astype(
                {"count": "int64"}
            )
        counts = (
            self.errors[columns]
            .fillna({"field": ""})
            .value_counts(sort=True)
            .rename("count")
            .reset_index()
        )
        counts["field"] = counts["field"].replace("", None)
        return counts

    def error_messages(self, limit: int | None = None) -> list[str]:
        """The first ``limit`` errors (all when ``None``) formatted for people and logs:
        ``[ERROR_TYPE] message | Domain: X | Row: N | Field: Y``."""
        return format_issues(self.errors, self.domain, limit)

    def warning_messages(self, limit: int | None = None) -> list[str]:
        """Like :meth:`error_messages`, for the warnings."""
        return format_issues(self.warnings, self.domain, limit)

    def raise_for_status(self) -> None:
        """Raise :class:`~wdh_domain.errors.PipelineFailedError` when the run did not succeed.

        The message names the pipeline, the execution id and the step where the run
        stopped, then gives the reason(s) -- the errors without a row (a failed step,
        the error threshold, a missing column), joined with ``"; "`` -- and then the row
        errors: ``N row error(s), first: ...`` quoting up to :data:`ROW_ERRORS_SHOWN` of
        them, on one line (not the rows' ``missing`` errors of a field a reason names:
        a missing column says it once). The error's ``operation`` is the step where the
        run stopped.
        """
        if self.success:
            return
        errors = self.errors
        # Errors without a row are the reason the run stopped; row errors illustrate it.
        whole_step = errors["row"].isna().to_numpy(dtype=bool)
        reasons = format_issues(errors[whole_step], self.domain)
        # A column the run missed fails every row as "missing" too: that says it again.
        named = set(errors.loc[whole_step, "field"].dropna().astype(str))
        repeated = errors["code"].eq("missing").to_numpy(dtype=bool) & errors["field"].isin(
            named
        ).to_numpy(dtype=bool)
        row_errors = errors[~whole_step & ~repeated]
        parts = ["; ".join(reasons)] if reasons else []
        if len(row_errors):
            shown = "; ".join(format_issues(row_errors, self.domain, ROW_ERRORS_SHOWN))
            parts.append(f"{len(row_errors)} row error(s), first: {shown}")
        where = f" at step '{self.stopped_at}'" if self.stopped_at else ""
        raise PipelineFailedError(
            f"Pipeline '{self.pipeline_name}' ({self.execution_id}) failed{where}: "
            + (" | ".join(parts) or "no error recorded"),
            operation=self.stopped_at,
        )
