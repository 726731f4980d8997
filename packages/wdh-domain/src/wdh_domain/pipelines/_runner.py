"""One pipeline run: all per-run state lives here, never on the ``Pipeline``."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from wdh_domain._sanitize import sanitize_text, truncate
from wdh_domain.errors import DataValidationError, ErrorContext, WdhDomainError, render_input_data
from wdh_domain.pipelines._config import PipelineConfig
from wdh_domain.pipelines._frames import frame_from_rows, frame_to_rows, track_row_numbers
from wdh_domain.pipelines._ids import new_execution_id
from wdh_domain.pipelines._metrics import PipelineMetrics, StepMetrics, StepStatus, StepType
from wdh_domain.pipelines._result import FailedRow, PipelineResult
from wdh_domain.pipelines._retry import RetryConfig, execute_with_retry
from wdh_domain.pipelines._types import PipelineContext, Row, RowIssue, StepResult

__all__ = ["Run", "StepSpec"]

_MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A step as registered on a pipeline: the step object plus how to run it."""

    step: Any
    name: str
    step_type: StepType
    optional: bool = False
    retry: RetryConfig | None = None


@dataclass(slots=True)
class _Failure:
    row_number: int | None
    step: str
    step_row: Row
    errors: tuple[ErrorContext, ...]
    warnings: tuple[ErrorContext, ...]


@dataclass(slots=True)
class _StepOutcome:
    """What one step did; ``proceed`` is False when the run must stop after it."""

    status: StepStatus = "completed"
    rows_out: int = 0
    rows_failed: int = 0
    errors_count: int = 0
    warnings_count: int = 0
    proceed: bool = True
    extra_log: dict[str, Any] = field(default_factory=dict)


_FAILED_STATUSES: frozenset[StepStatus] = frozenset({"failed", "optional_failed", "stopped"})


class _AbortStepError(Exception):
    """Internal: an optional row step raised; the whole step is abandoned."""


def _elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``perf_counter`` value), rounded to 3 places (1 µs).

    Every duration in the metrics and log lines comes from here, rounded like the
    loader's ``duration_ms``, so the figures of one run compare as they are shown.
    """
    return round((time.perf_counter() - start) * 1000.0, 3)


def _format_traceback(exc: BaseException) -> str:
    return sanitize_text("".join(traceback.format_exception(exc)))


def _describe(exc: BaseException) -> str:
    return truncate(sanitize_text(f"{type(exc).__name__}: {exc}"), _MAX_MESSAGE_CHARS)


class Run:
    """One run of a pipeline: ``Run(...).execute()`` runs ``specs`` over ``initial_data``
    once and returns the `PipelineResult` (it never raises for bad data).

    All per-run state lives here -- current frame, row numbers, failures, errors,
    warnings, metrics -- so one ``Pipeline`` can run from several threads at once.
    ``execution_id`` names the run (a new unique id when ``None``).
    """

    def __init__(
        self,
        *,
        pipeline_name: str,
        config: PipelineConfig,
        specs: tuple[StepSpec, ...],
        initial_data: pd.DataFrame,
        logger: Any,
        sleep: Callable[[float], None],
        execution_id: str | None = None,
    ) -> None:
        started = datetime.now(UTC)
        self.pipeline_name = pipeline_name
        self.config = config
        self.specs = specs
        self.domain = config.domain or pipeline_name
        self.context = PipelineContext(
            pipeline_name=pipeline_name,
            execution_id=execution_id if execution_id is not None else new_execution_id(started),
            timestamp=started,
            config=dict(config.settings),
            domain=self.domain,
        )
        self.log = logger.bind(pipeline_name=pipeline_name, execution_id=self.context.execution_id)
        self.sleep = sleep
        self.input = initial_data
        # Shallow copies cost O(columns) under copy-on-write: one here, one handed to each
        # DataFrame step call, so no step can change the caller's frame or the frame that
        # passes on unchanged when it fails. Row steps rebuild the frame once per step.
        self.df = initial_data.copy(deep=False)
        self.rows_in = len(initial_data)
        # row_numbers[i] is the input row number of row i of self.df; None means "i".
        self.row_numbers: list[int] | None = None
        self.traceable = True
        self.failures: list[_Failure] = []
        self.errors: list[ErrorContext] = []
        self.warnings: list[ErrorContext] = []
        self.step_metrics: dict[str, StepMetrics] = {}
        self.stopped_at: str | None = None
        self.warnings_mark = 0

    # ------------------------------------------------------------------ run

    def execute(self) -> PipelineResult:
        start = time.perf_counter()
        self.log.info(
            "pipeline.started",
            rows_in=self.rows_in,
            steps_count=len(self.specs),
            step_names=[spec.name for spec in self.specs],
            stop_on_error=self.config.stop_on_error,
            error_threshold=self.config.error_threshold,
        )
        for spec in self.specs:
            if not self._run_step(spec):
                break
        return self._result(_elapsed_ms(start))

    def _run_step(self, spec: StepSpec) -> bool:
        before = self.df
        rows_in = len(before)
        self.log.info(
            "pipeline.step.started",
            step_name=spec.name,
            step_type=spec.step_type,
            optional=spec.optional,
            rows_in=rows_in,
        )
        self.warnings_mark = len(self.warnings)
        start = time.perf_counter()
        try:
            if spec.step_type == "dataframe":
                outcome = self._run_dataframe_step(spec, before)
            else:
                outcome = self._run_row_step(spec, before)
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, not raised
            outcome = self._step_failed(spec, exc, rows_in)
        duration_ms = _elapsed_ms(start)
        self.step_metrics[spec.name] = StepMetrics(
            step_name=spec.name,
            step_type=spec.step_type,
            duration_ms=duration_ms,
            rows_in=rows_in,
            rows_out=outcome.rows_out,
            errors_count=outcome.errors_count,
            warnings_count=outcome.warnings_count,
            rows_failed=outcome.rows_failed,
            status=outcome.status,
        )
        log_fields = {
            "step_name": spec.name,
            "step_type": spec.step_type,
            "duration_ms": duration_ms,
            "rows_processed": rows_in,
            "rows_out": outcome.rows_out,
            "rows_failed": outcome.rows_failed,
            "errors_count": outcome.errors_count,
            "warnings_count": outcome.warnings_count,
            **outcome.extra_log,
        }
        if outcome.status not in _FAILED_STATUSES:
            self.log.info("pipeline.step.completed", **log_fields)
        elif outcome.status == "optional_failed":
            # An optional step's failure is a warning (AC-1.10.3); same fields otherwise.
            self.log.warning("pipeline.step.failed", **log_fields)
        else:
            self.log.error("pipeline.step.failed", **log_fields)
        if not outcome.proceed:
            self.stopped_at = self.stopped_at or spec.name
            return False
        if outcome.status in ("completed", "failed"):
            return self._within_threshold(spec)
        return True

    # ------------------------------------------------------------- steps

    def _call(self, spec: StepSpec, func: Callable[[], Any]) -> Any:
        if spec.retry is None:
            return func()
        return execute_with_retry(
            func,
            spec.retry,
            operation=f"{self.pipeline_name}.{spec.name}",
            sleep=self.sleep,
            logger=self.log,
        )

    def _run_dataframe_step(self, spec: StepSpec, before: pd.DataFrame) -> _StepOutcome:
        execute = spec.step.execute
        context = self.context
        # A fresh shallow copy per call (retries included): a step that changes its input in
        # place and then raises must not leak the change into the data that passes on.
        after = self._call(spec, lambda: execute(before.copy(deep=False), context))
        if not isinstance(after, pd.DataFrame):
            raise TypeError(
                f"DataFrameStep '{spec.name}' returned {type(after).__name__}, expected a "
                "pandas DataFrame"
            )
        if self.traceable:
            self.traceable, self.row_numbers = track_row_numbers(before, after, self.row_numbers)
            if not self.traceable:
                self.log.warning(
                    "pipeline.row_numbers.untraceable",
                    step_name=spec.name,
                    rows_in=len(before),
                    rows_out=len(after),
                )
        self.df = after
        return _StepOutcome(rows_out=len(after))

    def _run_row_step(self, spec: StepSpec, before: pd.DataFrame) -> _StepOutcome:
        if not before.columns.is_unique:
            duplicated = sorted({str(c) for c in before.columns[before.columns.duplicated()]})
            raise DataValidationError(
                f"Row step '{spec.name}' needs unique column names; duplicated: "
                f"{', '.join(duplicated)}",
                operation=spec.name,
                domain=self.domain,
                field=", ".join(duplicated),
            )
        records = frame_to_rows(before)
        apply: Callable[[Row, PipelineContext], StepResult] = spec.step.apply
        if spec.retry is not None:
            apply = partial(self._apply_with_retry, spec, apply)
        rows = _RowStepState(self, spec)
        kept = rows.kept
        keep = kept.append
        context = self.context
        # The hot loop: one call per row, and nothing else unless the row has issues.
        for position, record in enumerate(records):
            try:
                result = apply(record, context)
            except Exception as exc:  # noqa: BLE001 - row failures are collected
                if not rows.on_exception(position, record, exc):
                    break
                continue
            if result.errors or result.warnings:
                if not rows.on_issues(position, record, result):
                    break
                continue
            keep(result.row)
        return rows.finish(before)

    def _apply_with_retry(
        self,
        spec: StepSpec,
        apply: Callable[[Row, PipelineContext], StepResult],
        record: Row,
        context: PipelineContext,
    ) -> StepResult:
        # A fresh dict per attempt: an attempt that changed the row and then raised must
        # not hand its half-done changes to the next attempt.
        return self._call(spec, lambda: apply(dict(record), context))  # type: ignore[no-any-return]

    def _step_failed(self, spec: StepSpec, exc: Exception, rows_in: int) -> _StepOutcome:
        cause: BaseException = exc
        if isinstance(exc, _AbortStepError) and exc.__cause__ is not None:
            cause = exc.__cause__
        expected = isinstance(cause, WdhDomainError)
        if isinstance(cause, WdhDomainError):
            base = replace(
                cause.context,
                message=f"Step '{spec.name}' failed: {cause.context.message}",
                operation=cause.context.operation or spec.name,
                domain=cause.context.domain or self.domain,
            )
        else:
            base = ErrorContext(
                error_type="STEP_ERROR",
                message=f"Step '{spec.name}' raised {_describe(cause)}",
                operation=spec.name,
                domain=self.domain,
                traceback=_format_traceback(cause),
            )
        log_fields: dict[str, Any] = {
            "optional": spec.optional,
            "reason": "step_exception",
            "error_type": base.error_type,
            "error": base.format(),
        }
        if not expected:
            # The sanitized text, not exc_info: some renderers print frame locals (row data).
            log_fields["traceback"] = base.traceback
        if spec.optional:
            # Row warnings of an abandoned step describe data that was not kept.
            del self.warnings[self.warnings_mark :]
            warning = replace(
                base,
                error_type="OPTIONAL_STEP_FAILED",
                message=f"Optional step '{spec.name}' failed and was skipped, data passed on "
                f"unchanged: {_describe(cause)}",
            )
            self.warnings.append(warning)
            # the log line says what the result says: a skipped optional step, not an error
            log_fields.update(error_type=warning.error_type, error=warning.format())
            return _StepOutcome(
                status="optional_failed", rows_out=rows_in, warnings_count=1, extra_log=log_fields
            )
        self.errors.append(base)
        return _StepOutcome(
            status="failed",
            rows_out=rows_in,
            errors_count=1,
            proceed=not self.config.stop_on_error,
            extra_log=log_fields,
        )

    def _within_threshold(self, spec: StepSpec) -> bool:
        if self.config.stop_on_error or not self.failures or self.rows_in == 0:
            return True
        rate = len(self.failures) / self.rows_in
        threshold = self.config.error_threshold
        if rate <= threshold:
            return True
        error = ErrorContext(
            error_type="ERROR_THRESHOLD_EXCEEDED",
            message=(
                f"Step '{spec.name}': failed row rate {rate:.2%} ({len(self.failures)} of "
                f"{self.rows_in} input rows) exceeds error_threshold {threshold:.2%}"
            ),
            operation=spec.name,
            domain=self.domain,
        )
        self.errors.append(error)
        self.stopped_at = spec.name
        self.log.error(
            "pipeline.error_threshold.exceeded",
            step_name=spec.name,
            rows_failed=len(self.failures),
            failed_rate=rate,
            error_threshold=threshold,
        )
        return False

    # ------------------------------------------------------------ helpers

    def row_number(self, position: int) -> int | None:
        """Input row number of row ``position`` of the current frame, if traceable."""
        if not self.traceable:
            return None
        if self.row_numbers is None:
            return position
        return self.row_numbers[position]

    def issue_context(
        self,
        issue: str | RowIssue,
        *,
        default_type: str,
        step: str,
        row_number: int | None,
        input_data: str | None,
    ) -> ErrorContext:
        if isinstance(issue, RowIssue):
            return ErrorContext(
                error_type=issue.error_type or default_type,
                message=sanitize_text(issue.message),
                operation=step,
                domain=self.domain,
                row_number=row_number,
                field=issue.field,
                input_data=input_data,
            )
        return ErrorContext(
            error_type=default_type,
            message=sanitize_text(str(issue)),
            operation=step,
            domain=self.domain,
            row_number=row_number,
            input_data=input_data,
        )

    def _result(self, duration_ms: float) -> PipelineResult:
        failed_rows = self._failed_rows()
        # A required step that failed (status "failed") makes the run unsuccessful even
        # when the run went on past it (collect mode).
        step_failed = any(m.status == "failed" for m in self.step_metrics.values())
        success = self.stopped_at is None and not step_failed
        metrics = PipelineMetrics(
            duration_ms=duration_ms,
            rows_in=self.rows_in,
            rows_out=len(self.df),
            rows_failed=len(failed_rows),
            errors_count=len(self.errors),
            warnings_count=len(self.warnings),
            step_metrics=self.step_metrics,
        )
        completed = self.log.info if success else self.log.error
        completed(
            "pipeline.completed",
            success=success,
            duration_ms=duration_ms,
            rows_in=self.rows_in,
            rows_out=metrics.rows_out,
            rows_failed=metrics.rows_failed,
            errors_count=metrics.errors_count,
            warnings_count=metrics.warnings_count,
            stopped_at=self.stopped_at,
        )
        return PipelineResult(
            success=success,
            output_data=self.df,
            metrics=metrics,
            errors=[error.format() for error in self.errors],
            execution_id=self.context.execution_id,
            pipeline_name=self.pipeline_name,
            warnings=[warning.format() for warning in self.warnings],
            failed_rows=failed_rows,
            error_details=list(self.errors),
            warning_details=list(self.warnings),
            stopped_at=self.stopped_at,
        )

    def _failed_rows(self) -> list[FailedRow]:
        if not self.failures:
            return []
        numbered = [f.row_number for f in self.failures if f.row_number is not None]
        originals: dict[int, Row] = {}
        if numbered and self.input.columns.is_unique:
            rows = frame_to_rows(self.input.iloc[numbered])
            originals = dict(zip(numbered, rows, strict=True))
        failed = [
            FailedRow(
                row_number=f.row_number,
                step=f.step,
                data=originals.get(f.row_number, f.step_row)
                if f.row_number is not None
                else f.step_row,
                errors=f.errors,
                warnings=f.warnings,
            )
            for f in self.failures
        ]
        # Input order; rows whose number could not be traced go last, in failure order.
        failed.sort(key=lambda r: (r.row_number is None, r.row_number or 0))
        return failed


class _RowStepState:
    """Book-keeping of one row step; only touched for rows that have issues."""

    def __init__(self, run: Run, spec: StepSpec) -> None:
        self.run = run
        self.spec = spec
        self.kept: list[Row] = []
        self.failed_positions: list[int] = []
        self.errors_count = 0
        self.warnings_count = 0
        self.row_exceptions = 0
        self.first_error_context: ErrorContext | None = None
        self.stopped = False
        self.stop_on_error = run.config.stop_on_error and not spec.optional

    def on_exception(self, position: int, record: Row, exc: Exception) -> bool:
        """Handle an exception raised by ``apply``; return False to stop the loop.

        A ``DataValidationError`` fails the row like a returned error. Any other
        exception is a bug: the row fails with a ``STEP_ERROR`` carrying the error type
        and message; only the FIRST such row of a step also carries the (sanitized)
        traceback, which the step-level error reuses -- later rows do not pay for
        formatting a traceback nobody reads.
        """
        if isinstance(exc, DataValidationError):
            row_number = self.run.row_number(position)
            context = replace(
                exc.context,
                operation=exc.context.operation or self.spec.name,
                domain=exc.context.domain or self.run.domain,
                row_number=row_number,
                input_data=exc.context.input_data or render_input_data(record),
            )
            if self.spec.optional:
                return self._downgrade(record, (context,))
            return self._fail(position, record, (context,), ())
        if self.spec.optional:
            raise _AbortStepError(self.spec.name) from exc
        self.row_exceptions += 1
        first = self.first_error_context is None
        context = ErrorContext(
            error_type="STEP_ERROR",
            message=f"Step '{self.spec.name}' raised {_describe(exc)}",
            operation=self.spec.name,
            domain=self.run.domain,
            row_number=self.run.row_number(position),
            input_data=render_input_data(record),
            # Formatting and sanitizing a traceback is the costly part; a bug usually
            # raises the same way on every row, so only the first row keeps one.
            traceback=_format_traceback(exc) if first else None,
        )
        if first:
            self.first_error_context = context
        return self._fail(position, record, (context,), ())

    def on_issues(self, position: int, record: Row, result: StepResult) -> bool:
        """Handle a result with errors and/or warnings; return False to stop the loop."""
        run, step = self.run, self.spec.name
        row_number = run.row_number(position)
        warnings = tuple(
            run.issue_context(
                issue, default_type="WARNING", step=step, row_number=row_number, input_data=None
            )
            for issue in result.warnings
        )
        if not result.errors:
            self.warnings_count += len(warnings)
            run.warnings.extend(warnings)
            self.kept.append(result.row)
            return True
        input_data = render_input_data(record)
        errors = tuple(
            run.issue_context(
                issue,
                default_type="VALIDATION_ERROR",
                step=step,
                row_number=row_number,
                input_data=input_data,
            )
            for issue in result.errors
        )
        if self.spec.optional:
            return self._downgrade(record, errors + warnings)
        return self._fail(position, record, errors, warnings)

    def _downgrade(self, record: Row, issues: tuple[ErrorContext, ...]) -> bool:
        """Optional step: errors become warnings and the row passes on as it came in."""
        self.warnings_count += len(issues)
        self.run.warnings.extend(issues)
        self.kept.append(record)
        return True

    def _fail(
        self,
        position: int,
        record: Row,
        errors: tuple[ErrorContext, ...],
        warnings: tuple[ErrorContext, ...],
    ) -> bool:
        run = self.run
        self.failed_positions.append(position)
        self.errors_count += len(errors)
        self.warnings_count += len(warnings)
        run.errors.extend(errors)
        run.warnings.extend(warnings)
        run.failures.append(
            _Failure(
                row_number=errors[0].row_number,
                step=self.spec.name,
                step_row=record,
                errors=errors,
                warnings=warnings,
            )
        )
        if self.stop_on_error:
            self.stopped = True
            return False
        return True

    def finish(self, before: pd.DataFrame) -> _StepOutcome:
        """Close the step: rebuild the frame, count, and decide the step's status.

        A step whose ``apply`` raised (a bug, not a row error) on any row is ``failed``:
        its rows are failed rows (only the first carries the traceback), one step-level
        ``STEP_ERROR`` (with that traceback) is recorded and the run is not successful.
        When the run stops inside this step (``stop_on_error``), the output is the frame
        as the previous step left it minus the rows that failed here, so ``rows_out``
        equals the rows of the returned frame.
        """
        run, spec = self.run, self.spec
        status: StepStatus = "completed"
        extra: dict[str, Any] = {}
        first = self.first_error_context  # set with the first row exception, if any
        if first is not None:
            step_error = ErrorContext(
                error_type="STEP_ERROR",
                message=(
                    f"Step '{spec.name}' raised an exception on {self.row_exceptions} row(s); "
                    f"first: {first.message}"
                ),
                operation=spec.name,
                domain=run.domain,
                traceback=first.traceback,
            )
            run.errors.append(step_error)
            self.errors_count += 1
            status = "failed"
            extra = {
                "reason": "row_exceptions",
                "row_exceptions": self.row_exceptions,
                "error_type": step_error.error_type,
                "error": step_error.format(),
                "traceback": first.traceback,
            }
        elif self.stopped:
            last = run.errors[-1]
            status = "stopped"
            extra = {"reason": "row_error", "error_type": last.error_type, "error": last.format()}
        self._drop_failed_row_numbers(len(before))
        if self.stopped:
            # Discard this step's work: the rows as the previous step left them, minus the
            # failed ones (they are in failed_rows, never in both places).
            keep = np.ones(len(before), dtype=bool)
            keep[self.failed_positions] = False
            run.df = before.iloc[keep]
        else:
            index = before.index.delete(self.failed_positions) if self.failed_positions else None
            run.df = frame_from_rows(
                self.kept, index=before.index if index is None else index, template=before
            )
        return _StepOutcome(
            status=status,
            rows_out=len(run.df),
            rows_failed=len(self.failed_positions),
            errors_count=self.errors_count,
            warnings_count=self.warnings_count,
            proceed=not self.stopped,
            extra_log=extra,
        )

    def _drop_failed_row_numbers(self, rows_before: int) -> None:
        run = self.run
        if not self.failed_positions or not run.traceable:
            return
        failed = set(self.failed_positions)
        numbers = run.row_numbers
        run.row_numbers = [
            numbers[p] if numbers is not None else p for p in range(rows_before) if p not in failed
        ]
