"""One pipeline run.

Each step kind has one function -- :func:`run_dataframe_step`, :func:`run_validation_step`,
:func:`run_row_step` -- that takes the current frame and returns a :class:`StepOutcome`
(next frame, which input row each of its rows came from, the rows that failed, errors,
warnings, whether to stop). :class:`Run` calls them in order and merges each outcome into
the run's state; it is the only place that state changes.

Row provenance: ``rows[i]`` is the input position of row ``i`` of the current frame
(``-1``: unknown). A DataFrame step sees it as the column :data:`ROW_COLUMN`; whatever the
step does to the rows (sort, filter, ``reset_index(drop=True)``, concat with duplicate
labels, ``assign``, a left merge), the column travels with them, and is taken off again.
"""

from __future__ import annotations

import copy
import math
import time
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
import pandas as pd

from wdh_domain._row_column import ROW_COLUMN
from wdh_domain._text import truncate
from wdh_domain.errors import DataValidationError, ErrorContext, WdhDomainError
from wdh_domain.pipelines._config import PipelineConfig
from wdh_domain.pipelines._frames import frame_from_rows, frame_to_rows
from wdh_domain.pipelines._ids import new_execution_id
from wdh_domain.pipelines._issues import IssueLog
from wdh_domain.pipelines._metrics import PipelineMetrics, StepMetrics, StepStatus, StepType
from wdh_domain.pipelines._result import FAILED_ROW_COLUMNS, PipelineResult, format_issues
from wdh_domain.pipelines._retry import RetryConfig, execute_with_retry
from wdh_domain.pipelines._types import PipelineContext, Row, RowIssue, StepResult
from wdh_logging import redact_text

__all__ = ["ROW_COLUMN", "Run", "StepSpec"]

"""The column that carries each row's input position through DataFrame steps."""

_MAX_MESSAGE_CHARS: Final = 1000


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A step as registered on a pipeline: the step object plus how to run it."""

    step: Any
    name: str
    step_type: StepType
    optional: bool = False
    retry: RetryConfig | None = None


@dataclass(frozen=True, slots=True)
class StepEnv:
    """What a step execution needs from its run (read-only).

    ``budget``: how many more rows may fail before the run must stop (``None``: no
    limit); ``track_rows``: whether a later step can fail rows, so that DataFrame steps
    must carry the provenance column.
    """

    context: PipelineContext
    domain: str
    log: Any
    sleep: Callable[[float], None]
    budget: int | None
    stop_on_error: bool
    track_rows: bool


@dataclass(slots=True)
class StepOutcome:
    """What one step did. ``failed_rows`` holds the input positions of the rows that
    failed here (``-1``: unknown; ``failed_data`` then holds those rows as the step got
    them); ``stop`` names why the run must stop after this step, if it must."""

    frame: pd.DataFrame
    rows: np.ndarray
    status: StepStatus = "completed"
    failed_rows: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    failed_data: pd.DataFrame | None = None
    errors: IssueLog = field(default_factory=IssueLog)
    warnings: IssueLog = field(default_factory=IssueLog)
    stop: str | None = None
    log: dict[str, Any] = field(default_factory=dict)


class _AbortStepError(Exception):
    """Internal: an optional row step raised; the whole step is abandoned."""


def _elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``perf_counter`` value), rounded to 1 µs."""
    return round((time.perf_counter() - start) * 1000.0, 3)


def _format_traceback(exc: BaseException) -> str:
    return redact_text("".join(traceback.format_exception(exc)))


def _describe(exc: BaseException) -> str:
    return truncate(redact_text(f"{type(exc).__name__}: {exc}"), _MAX_MESSAGE_CHARS)


def _call(spec: StepSpec, env: StepEnv, func: Callable[[], Any]) -> Any:
    if spec.retry is None:
        return func()
    return execute_with_retry(
        func,
        spec.retry,
        operation=f"{env.context.pipeline_name}.{spec.name}",
        sleep=env.sleep,
        logger=env.log,
    )


def _require_unique_columns(spec: StepSpec, frame: pd.DataFrame, domain: str) -> None:
    if not frame.columns.is_unique:
        duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DataValidationError(
            f"Step '{spec.name}' needs unique column names; duplicated: {', '.join(duplicated)}",
            operation=spec.name,
            domain=domain,
            field=", ".join(duplicated),
        )


def _untraced(rows: np.ndarray, positions: np.ndarray, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The rows at ``positions`` of ``frame`` whose input position is unknown, if any."""
    unknown = positions[rows[positions] < 0]
    return frame.iloc[unknown] if len(unknown) else None


def _stop_reason(env: StepEnv, failed: int) -> str | None:
    if env.budget is None or failed <= env.budget:
        return None
    return "row_error" if env.stop_on_error else "error_threshold"


# ------------------------------------------------------------ DataFrame steps


def _rows_without_column(before: pd.DataFrame, after: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """Provenance when a step dropped :data:`ROW_COLUMN`: kept when the step kept the very
    same index (a projection, say), else unknown. Never guessed from labels or positions:
    a relabelled frame can reuse old labels for other rows."""
    if after.index is before.index or (
        len(after) == len(before) and after.index.equals(before.index) and before.index.is_unique
    ):
        return rows
    return np.full(len(after), -1, dtype=np.int64)


def run_dataframe_step(
    spec: StepSpec, before: pd.DataFrame, rows: np.ndarray, env: StepEnv
) -> StepOutcome:
    """Run ``execute`` on a shallow copy of ``before`` (retried as a whole when asked)."""
    execute = spec.step.execute
    context = env.context

    def attempt() -> Any:
        # A fresh shallow copy per attempt: a step that changes its input in place and
        # then raises must not leak the change into the data that passes on.
        given = before.copy(deep=False)
        if env.track_rows:
            given[ROW_COLUMN] = rows
        return execute(given, context)

    after = _call(spec, env, attempt)
    if not isinstance(after, pd.DataFrame):
        raise TypeError(
            f"DataFrameStep '{spec.name}' returned {type(after).__name__}, expected a "
            "pandas DataFrame"
        )
    if not env.track_rows:  # no later step can fail rows: provenance is not needed
        return StepOutcome(frame=after, rows=rows)
    if ROW_COLUMN in after.columns:
        carried = pd.to_numeric(after[ROW_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
        new_rows = np.where(np.isnan(carried), -1, carried).astype(np.int64)
        after = after.drop(columns=ROW_COLUMN)
    else:
        new_rows = _rows_without_column(before, after, rows)
    lost = int(np.count_nonzero(new_rows < 0)) - int(np.count_nonzero(rows < 0))
    if lost > 0:
        env.log.warning(
            "pipeline.row_numbers.untraceable",
            step_name=spec.name,
            rows_in=len(before),
            rows_out=len(after),
            rows_untraceable=int(np.count_nonzero(new_rows < 0)),
        )
    return StepOutcome(frame=after, rows=new_rows)


# ------------------------------------------------------------ validation steps


def run_validation_step(
    spec: StepSpec, before: pd.DataFrame, rows: np.ndarray, env: StepEnv
) -> StepOutcome:
    """Run a step with ``validate(df, context, max_failures=...)`` (``ValidateSchemaStep``).

    Rejected rows become failed rows; the budget is handed to the step so that it stops
    early. An optional validation step that rejects rows passes the frame on unchanged
    and reports the rejections as warnings.
    """
    budget = None if spec.optional else env.budget
    outcome = _call(spec, env, lambda: spec.step.validate(before, env.context, max_failures=budget))
    table = outcome.errors
    size = len(table)
    issues = pd.DataFrame(
        {
            "row": pd.array(rows[table["position"].to_numpy()], dtype="Int64"),
            "step": pd.Categorical([spec.name]).repeat(size),
            "field": table["field"].array,
            "error_type": pd.Categorical(["VALIDATION_ERROR"]).repeat(size),
            "code": table["code"].array,
            "message": table["message"].array,
            "traceback": pd.Categorical([None], categories=pd.Index([], dtype=object)).repeat(size),
        }
    )
    issues.loc[issues["row"] < 0, "row"] = pd.NA
    failed = np.asarray(outcome.failed, dtype=np.int64)
    log = IssueLog()
    if len(issues):
        log.add_frame(issues)
    if spec.optional:
        if not len(failed):
            return StepOutcome(frame=outcome.data, rows=rows)
        warnings = IssueLog()
        if len(issues):
            warnings.add_frame(issues.assign(error_type="WARNING"))
        return StepOutcome(frame=before, rows=rows, warnings=warnings)
    stop = _stop_reason(env, len(failed))
    if stop is None and outcome.stopped:
        stop = "error_threshold"
    keep = np.ones(len(before), dtype=bool)
    keep[failed] = False
    frame = before.iloc[keep] if stop is not None else outcome.data
    return StepOutcome(
        frame=frame,
        rows=rows[keep],
        status="stopped" if stop is not None else "completed",
        failed_rows=rows[failed],
        failed_data=_untraced(rows, failed, before),
        errors=log,
        stop=stop,
    )


# ----------------------------------------------------------------- row steps


def _record(
    log: IssueLog,
    issue: str | RowIssue,
    *,
    default_type: str,
    row: int | None,
    step: str,
    traceback: str | None = None,
) -> None:
    """Add a row step's error or warning to ``log``, its message redacted."""
    if isinstance(issue, RowIssue):
        log.add(
            row=row,
            step=step,
            field=issue.field,
            error_type=issue.error_type or default_type,
            code=issue.code,
            message=redact_text(issue.message),
            traceback=traceback,
        )
    else:
        log.add(
            row=row,
            step=step,
            field=None,
            error_type=default_type,
            message=redact_text(str(issue)),
            traceback=traceback,
        )


@dataclass(slots=True)
class _RowBugs:
    """Unexpected exceptions of a row step: counted; only the first keeps a traceback
    (a bug usually raises the same way on every row, and formatting one is costly)."""

    step: str
    count: int = 0
    first: ErrorContext | None = None

    def row_result(self, record: Row, exc: Exception) -> tuple[StepResult, str | None]:
        """The failed-row result standing for ``exc``, and its traceback if it is the first."""
        self.count += 1
        message = f"Step '{self.step}' raised {_describe(exc)}"
        trace = None
        if self.first is None:
            trace = _format_traceback(exc)
            self.first = ErrorContext(
                error_type="STEP_ERROR", message=message, operation=self.step, traceback=trace
            )
        return StepResult(row=record, errors=[RowIssue(message, error_type="STEP_ERROR")]), trace

    def close(self, errors: IssueLog, domain: str) -> dict[str, Any]:
        """Record the step-level ``STEP_ERROR`` and return its log fields ({} if no bug)."""
        if self.first is None:
            return {}
        step_error = replace(
            self.first,
            message=f"Step '{self.step}' raised an exception on {self.count} row(s); first: "
            f"{self.first.message}",
            domain=domain,
        )
        errors.add(
            row=None,
            step=self.step,
            field=None,
            error_type="STEP_ERROR",
            message=step_error.message,
            traceback=step_error.traceback,
        )
        return {
            "reason": "row_exceptions",
            "row_exceptions": self.count,
            "error_type": "STEP_ERROR",
            "error": step_error.format(),
            "traceback": step_error.traceback,
        }


def _with_retry(
    spec: StepSpec, env: StepEnv, apply: Callable[[Row, PipelineContext], StepResult]
) -> Callable[[Row, PipelineContext], StepResult]:
    def retried(record: Row, context: PipelineContext) -> StepResult:
        # A fresh dict per attempt: a failed attempt must not leak half-done changes.
        return _call(spec, env, lambda: apply(dict(record), context))  # type: ignore[no-any-return]

    return retried


def run_row_step(  # noqa: PLR0912 - the per-row loop stays flat: no call per row
    spec: StepSpec, before: pd.DataFrame, rows: np.ndarray, env: StepEnv
) -> StepOutcome:
    """Call ``apply`` once per row; collect kept rows, failed rows and issues.

    A row fails when ``apply`` returns errors or raises ``DataValidationError``. Any
    other exception is a bug: the row fails with a ``STEP_ERROR`` (only the first such
    row keeps the traceback), the step ends ``failed`` with one step-level
    ``STEP_ERROR``. An optional step's row errors become warnings and the row passes on
    as it came in; an optional step that raises is abandoned (:class:`_AbortStepError`).
    When failures exceed the budget the loop stops, and the output is ``before`` minus
    the rows that failed here (the step's other work is discarded).
    """
    _require_unique_columns(spec, before, env.domain)
    context, name, optional = env.context, spec.name, spec.optional
    prepare = getattr(spec.step, "prepare", None)
    source = prepare(before, context) if callable(prepare) else before
    apply: Callable[[Row, PipelineContext], StepResult] = spec.step.apply
    if spec.retry is not None:
        apply = _with_retry(spec, env, apply)
    kept: list[Row] = []
    failed: list[int] = []
    errors, warnings = IssueLog(), IssueLog()
    bugs = _RowBugs(name)
    stop: str | None = None
    for position, record in enumerate(frame_to_rows(source)):
        # The hot loop: _attempt's body, inline (no extra call per row).
        trace = None
        try:
            result = apply(record, context)
        except DataValidationError as exc:
            raised = RowIssue(exc.context.message, exc.context.field, exc.context.error_type)
            result = StepResult(row=record, errors=[raised])
        except Exception as exc:
            if optional:
                raise _AbortStepError(name) from exc
            result, trace = bugs.row_result(record, exc)
        if not (result.errors or result.warnings):
            kept.append(result.row)
            continue
        row = int(rows[position])
        row_number = row if row >= 0 else None
        if result.errors and not optional:  # the row fails
            for issue in result.errors:
                _record(
                    errors,
                    issue,
                    default_type="VALIDATION_ERROR",
                    row=row_number,
                    step=name,
                    traceback=trace,
                )
            for issue in result.warnings:
                _record(warnings, issue, default_type="WARNING", row=row_number, step=name)
            failed.append(position)
            stop = _stop_reason(env, len(failed))
            if stop is not None:
                break
            continue
        # The row stays: its warnings, and an optional step's errors, are warnings.
        for issue, default in [
            *((i, "VALIDATION_ERROR") for i in result.errors),
            *((i, "WARNING") for i in result.warnings),
        ]:
            _record(warnings, issue, default_type=default, row=row_number, step=name)
        kept.append(record if result.errors else result.row)
    failed_positions = np.asarray(failed, dtype=np.int64)
    keep = np.ones(len(before), dtype=bool)
    keep[failed_positions] = False
    if stop is not None:
        frame = before.iloc[keep]
    else:
        frame = frame_from_rows(kept, index=before.index[keep], template=before)
    log_fields = bugs.close(errors, env.domain)
    status: StepStatus = "stopped" if stop is not None else "completed"
    return StepOutcome(
        frame=frame,
        rows=rows[keep],
        status="failed" if log_fields else status,
        failed_rows=rows[failed_positions],
        failed_data=_untraced(rows, failed_positions, before),
        errors=errors,
        warnings=warnings,
        stop=stop,
        log=log_fields,
    )


# ------------------------------------------------------------------ the run


def _step_failed(
    spec: StepSpec, exc: Exception, before: pd.DataFrame, rows: np.ndarray, env: StepEnv
) -> StepOutcome:
    """The outcome of a step that raised: the data passes on unchanged."""
    cause: BaseException = exc
    if isinstance(exc, _AbortStepError) and exc.__cause__ is not None:
        cause = exc.__cause__
    if isinstance(cause, WdhDomainError):
        base = replace(
            cause.context,
            message=f"Step '{spec.name}' failed: {cause.context.message}",
            operation=cause.context.operation or spec.name,
            domain=cause.context.domain or env.domain,
        )
    else:
        base = ErrorContext(
            error_type="STEP_ERROR",
            message=f"Step '{spec.name}' raised {_describe(cause)}",
            operation=spec.name,
            domain=env.domain,
            traceback=_format_traceback(cause),
        )
    log_fields: dict[str, Any] = {
        "optional": spec.optional,
        "reason": "step_exception",
        "error_type": base.error_type,
        "error": base.format(),
    }
    if not isinstance(cause, WdhDomainError):
        # The sanitized text, not exc_info: some renderers print frame locals (row data).
        log_fields["traceback"] = base.traceback
    issue = IssueLog()
    if spec.optional:
        warning = replace(
            base,
            error_type="OPTIONAL_STEP_FAILED",
            message=f"Optional step '{spec.name}' failed and was skipped, data passed on "
            f"unchanged: {_describe(cause)}",
        )
        issue.add(
            row=None,
            step=spec.name,
            field=warning.field,
            error_type=warning.error_type,
            message=warning.message,
            traceback=warning.traceback,
        )
        log_fields.update(error_type=warning.error_type, error=warning.format())
        return StepOutcome(
            frame=before, rows=rows, status="optional_failed", warnings=issue, log=log_fields
        )
    issue.add(
        row=None,
        step=spec.name,
        field=base.field,
        error_type=base.error_type,
        message=base.message,
        traceback=base.traceback,
    )
    return StepOutcome(
        frame=before,
        rows=rows,
        status="failed",
        errors=issue,
        stop="step_failed" if env.stop_on_error else None,
        log=log_fields,
    )


def _input_rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """``frame.take(positions)`` for sorted ``positions`` (repeats allowed); a slice when
    they are consecutive (every row failed, say): a slice shares the input's columns
    (copy-on-write) where ``take`` would copy the whole input once more."""
    if not len(positions):
        return frame.iloc[:0]
    first, last = int(positions[0]), int(positions[-1])
    if last - first == len(positions) - 1 and bool(np.all(np.diff(positions) == 1)):
        return frame.iloc[first : last + 1]
    return frame.take(positions)


_EMPTY_FAILED: dict[Hashable, pd.DataFrame] = {}
_EMPTY_FAILED_KEPT: Final = 64


def _no_failed_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The (empty) failed rows of a run with no failure: ``_row``, ``_step`` and
    *frame*'s columns and dtypes.

    Building even an empty frame column by column costs pandas about a millisecond --
    more than a clean run of a DataFrame step -- so the frame is built once per shape
    (column labels and dtypes) and each run gets a shallow copy of it.
    """
    key: Hashable = None
    try:
        key = (type(frame.columns), tuple(frame.columns.names), tuple(frame.columns.tolist()))
        key = (*key, tuple(frame.dtypes.tolist()))
        hash(key)
    except TypeError:  # an unhashable label or dtype: built every time
        key = None
    empty = _EMPTY_FAILED.get(key) if key is not None else None
    if empty is None:
        empty = _put_first(
            frame.iloc[:0].reset_index(drop=True),
            pd.array([], dtype="Int64"),
            np.array([], dtype=object),
        )
        empty.attrs = {}
        if key is not None:
            if len(_EMPTY_FAILED) >= _EMPTY_FAILED_KEPT:
                _EMPTY_FAILED.clear()
            _EMPTY_FAILED[key] = empty
    out = empty.copy(deep=False)
    if frame.attrs:
        out.attrs = copy.deepcopy(frame.attrs)
    return out


def _put_first(frame: pd.DataFrame, row: Any, step: Any) -> pd.DataFrame:
    """Insert the ``_row`` and ``_step`` columns in front of ``frame`` (changed in place).

    A run's input may not have columns of those names (``ValueError``, as pandas says).
    The check is done on a list of labels: ``label in frame.columns`` builds a hash table
    for the index, which on every run of a clean pipeline cost more than the run itself.
    """
    taken = [c for c in FAILED_ROW_COLUMNS if c in frame.columns.tolist()]
    if taken:
        raise ValueError(f"cannot insert {taken[0]}, already exists")
    frame.insert(0, FAILED_ROW_COLUMNS[1], step, allow_duplicates=True)
    frame.insert(0, FAILED_ROW_COLUMNS[0], row, allow_duplicates=True)
    return frame


_RUNNERS: Final[
    dict[StepType, Callable[[StepSpec, pd.DataFrame, np.ndarray, StepEnv], StepOutcome]]
] = {
    "dataframe": run_dataframe_step,
    "validation": run_validation_step,
    "row_transform": run_row_step,
}


def _allowed_failures(config: PipelineConfig, rows_in: int) -> int | None:
    """The most failed rows the run tolerates (``None``: no limit)."""
    if config.stop_on_error:
        return 0
    threshold = config.error_threshold
    allowed = math.floor(threshold * rows_in)
    if (allowed + 1) / max(rows_in, 1) <= threshold:  # float rounding of threshold * rows_in
        allowed += 1
    return None if allowed >= rows_in else allowed


class Run:
    """One run of a pipeline: ``Run(...).execute()`` runs ``specs`` over ``initial_data``
    once and returns the :class:`PipelineResult` (it never raises for bad data).

    All per-run state lives here, so one ``Pipeline`` can run from several threads.
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
        self.rows_in = len(initial_data)
        self.allowed = _allowed_failures(config, self.rows_in)
        # The frame and, per row, its input position; both replaced by each step's outcome.
        # Positions are only kept when a step can fail rows (not for DataFrame-only runs).
        self.df = initial_data.copy(deep=False)
        can_fail = any(spec.step_type != "dataframe" for spec in specs)
        self.rows = np.arange(self.rows_in if can_fail else 0, dtype=np.int64)
        self.failed_rows: list[np.ndarray] = []
        self.failed_steps: list[str] = []
        self.failed_data: list[pd.DataFrame] = []
        self.failed_count = 0
        self.errors = IssueLog()
        self.warnings = IssueLog()
        self.step_metrics: dict[str, StepMetrics] = {}
        self.stopped_at: str | None = None

    def execute(self) -> PipelineResult:
        """Run every step in order until one says stop; return the result."""
        start = time.perf_counter()
        self.log.info(
            "pipeline.started",
            rows_in=self.rows_in,
            steps_count=len(self.specs),
            step_names=[spec.name for spec in self.specs],
            stop_on_error=self.config.stop_on_error,
            error_threshold=self.config.error_threshold,
        )
        for index, spec in enumerate(self.specs):
            later = self.specs[index + 1 :]
            outcome = self._run_step(spec, any(s.step_type != "dataframe" for s in later))
            if outcome.stop is not None:
                self.stopped_at = spec.name
                break
        return self._result(_elapsed_ms(start))

    def _env(self, spec: StepSpec, track_rows: bool) -> StepEnv:
        budget = None
        if self.allowed is not None and not spec.optional:
            budget = max(self.allowed - self.failed_count, 0)
        return StepEnv(
            context=self.context,
            domain=self.domain,
            log=self.log,
            sleep=self.sleep,
            budget=budget,
            stop_on_error=self.config.stop_on_error and not spec.optional,
            track_rows=track_rows,
        )

    def _run_step(self, spec: StepSpec, track_rows: bool) -> StepOutcome:
        before, rows = self.df, self.rows
        self.log.info(
            "pipeline.step.started",
            step_name=spec.name,
            step_type=spec.step_type,
            optional=spec.optional,
            rows_in=len(before),
        )
        env = self._env(spec, track_rows)
        start = time.perf_counter()
        try:
            outcome = _RUNNERS[spec.step_type](spec, before, rows, env)
        except Exception as exc:  # noqa: BLE001 - a failed step is reported, not raised
            outcome = _step_failed(spec, exc, before, rows, env)
        self._merge(spec, outcome, len(before), _elapsed_ms(start))
        return outcome

    def _merge(
        self, spec: StepSpec, outcome: StepOutcome, rows_in: int, duration_ms: float
    ) -> None:
        """Fold one step's outcome into the run: frame, failures, issues, metrics, logs."""
        self.df, self.rows = outcome.frame, outcome.rows
        failed = len(outcome.failed_rows)
        if failed:
            self.failed_rows.append(outcome.failed_rows)
            self.failed_steps.append(spec.name)
            self.failed_count += failed
            if outcome.failed_data is not None:
                self.failed_data.append(outcome.failed_data.assign(_step=spec.name))
        self.errors.extend(outcome.errors)
        self.warnings.extend(outcome.warnings)
        metrics = StepMetrics(
            step_name=spec.name,
            step_type=spec.step_type,
            duration_ms=duration_ms,
            rows_in=rows_in,
            rows_out=len(outcome.frame),
            errors_count=len(outcome.errors),
            warnings_count=len(outcome.warnings),
            rows_failed=failed,
            status=outcome.status,
        )
        self.step_metrics[spec.name] = metrics
        fields = {
            "step_name": spec.name,
            "step_type": spec.step_type,
            "duration_ms": duration_ms,
            "rows_processed": rows_in,
            "rows_out": metrics.rows_out,
            "rows_failed": failed,
            "errors_count": metrics.errors_count,
            "warnings_count": metrics.warnings_count,
            **outcome.log,
        }
        if outcome.stop == "error_threshold":
            self._threshold_exceeded(spec)
        elif outcome.stop == "row_error":
            last = outcome.errors.frame().tail(1)
            fields.update(
                reason="row_error",
                error_type=last["error_type"].iloc[0],
                error=format_issues(last, self.domain)[0],
            )
        if outcome.status in ("completed", "stopped") and outcome.stop != "row_error":
            self.log.info("pipeline.step.completed", **fields)
        elif outcome.status == "optional_failed":
            self.log.warning("pipeline.step.failed", **fields)  # an optional step: a warning
        else:
            self.log.error("pipeline.step.failed", **fields)

    def _threshold_exceeded(self, spec: StepSpec) -> None:
        rate = self.failed_count / self.rows_in
        threshold = self.config.error_threshold
        message = (
            f"Step '{spec.name}': failed row rate {rate:.2%} ({self.failed_count} of "
            f"{self.rows_in} input rows) exceeds error_threshold {threshold:.2%}; "
            "stopped early"
        )
        self.errors.add(
            row=None,
            step=spec.name,
            field=None,
            error_type="ERROR_THRESHOLD_EXCEEDED",
            message=message,
        )
        self.log.error(
            "pipeline.error_threshold.exceeded",
            step_name=spec.name,
            rows_failed=self.failed_count,
            failed_rate=rate,
            error_threshold=threshold,
        )

    def _failed_frame(self) -> pd.DataFrame:
        """The failed rows: known ones taken from the input by position, in input order,
        then the ones whose position a DataFrame step lost, as the failing step saw them."""
        columns = list(FAILED_ROW_COLUMNS)
        if not self.failed_rows:
            return _no_failed_rows(self.input)
        positions = np.concatenate(self.failed_rows)
        # The failing step of each row, as category codes: a few steps, many rows (an
        # array of step names would cost a hash table of them to become categories).
        names = sorted(set(self.failed_steps))
        steps: np.ndarray[Any, np.dtype[np.int64]] = np.repeat(
            np.array([names.index(step) for step in self.failed_steps], dtype=np.int64),
            [len(part) for part in self.failed_rows],
        )
        known = positions >= 0
        order = np.argsort(positions[known], kind="stable")
        taken = positions[known][order]
        frame = _input_rows(self.input, taken)
        frame = _put_first(
            frame.reset_index(drop=True),
            pd.array(taken, dtype="Int64"),
            pd.Categorical.from_codes(steps[known][order], categories=pd.Index(names)),
        )
        if self.failed_data:
            lost = pd.concat(self.failed_data, ignore_index=True)
            lost.insert(0, "_step", lost.pop("_step"))
            lost.insert(0, "_row", pd.Series([pd.NA] * len(lost), dtype="Int64"))
            frame = pd.concat([frame, lost], ignore_index=True)
        return frame.loc[:, [*columns, *[c for c in frame.columns if c not in columns]]]

    def _result(self, duration_ms: float) -> PipelineResult:
        failed = self._failed_frame()
        errors = self.errors.frame()
        warnings = self.warnings.frame()
        # A required step that failed makes the run unsuccessful even in collect mode.
        step_failed = any(m.status == "failed" for m in self.step_metrics.values())
        success = self.stopped_at is None and not step_failed
        metrics = PipelineMetrics(
            duration_ms=duration_ms,
            rows_in=self.rows_in,
            rows_out=len(self.df),
            rows_failed=len(failed),
            errors_count=len(errors),
            warnings_count=len(warnings),
            step_metrics=self.step_metrics,
        )
        (self.log.info if success else self.log.error)(
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
            failed_rows=failed,
            errors=errors,
            warnings=warnings,
            metrics=metrics,
            execution_id=self.context.execution_id,
            pipeline_name=self.pipeline_name,
            domain=self.domain,
            stopped_at=self.stopped_at,
        )
