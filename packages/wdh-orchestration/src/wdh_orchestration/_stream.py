"""A domain's file streamed end to end: read, validate and load chunk by chunk, in one
transaction, with the error budget judged on the whole file before COMMIT.

:func:`load_file` reads the file with ``wdh_io.readers.stream_csv`` and validates each
chunk with the domain's pipeline in a background thread (up to two chunks ahead),
while the calling thread hands each validated chunk's valid rows to the loader's
staged load and its rejected rows to ``write_rejected_rows``: the database works on
chunk *n* while chunk *n + 1* is validated, and the transaction's one connection has
one user, the calling thread. At the end, before COMMIT: the budget
(the domain's ``max_failure_rate`` over every input row of the file), the merge into the
table, the domain's checks, the run's metrics and its ``success`` audit row. All of it
commits together, or none of it does.

When the run fails (the budget, a blocking check, a bad record, a load error), the
transaction rolls back and the rejected rows found so far are written in a transaction
of their own, together with the run's metrics and its ``failed`` audit row saying why:
they are kept on disk meanwhile (:class:`~wdh_orchestration._spool.RejectedSpool`), so
memory does not grow with the file.

:func:`plan_file` does the same reading, validating and staging, then asks the loader
what the merge would do and rolls everything back: a dry run writes nothing.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, cast

import numpy as np
import pandas as pd
import structlog

from wdh_domain.errors import PipelineFailedError
from wdh_domain.pipelines import Pipeline, PipelineResult
from wdh_io.audit import AuditRecorder
from wdh_io.errors import DatabaseAccessError, ReaderError
from wdh_io.loader import LoadPlan, LoadResult, LoadTransaction, StagedLoad, WarehouseLoader
from wdh_io.quarantine import (
    ErrorBudgetExceededError,
    RejectedRow,
    RejectionBudget,
    write_rejected_rows,
)
from wdh_io.readers import DEFAULT_BLOCK_SIZE, CsvChunk, prefetched, read_csv, stream_csv
from wdh_orchestration._checks import (
    FAILURE_RATE_CHECK,
    check_metrics,
    domain_checks,
    evaluate,
    failure_rate_outcome,
)
from wdh_orchestration._domain import CheckOutcome, Domain, DomainCheck, LoadedFile
from wdh_orchestration._failures import describe_failure, is_transient
from wdh_orchestration._load import BlockingCheckFailedError
from wdh_orchestration._rejections import rejected_rows
from wdh_orchestration._spool import RejectedSpool
from wdh_orchestration._validation import build_chunk_pipeline, step_metric_name

__all__ = [
    "DryRun",
    "FileValidation",
    "StreamedLoad",
    "StreamedRunError",
    "load_file",
    "plan_file",
]

_log = structlog.get_logger(__name__)

PREVIEW_ROWS: Final = 10
"""Rows shown in each preview (rejected, and in a dry run inserted/updated/unchanged)."""

COMPARE_IGNORE: Final = ("loaded_at",)
"""Columns the load stamps itself: left out when deciding whether a row changed."""

Outcomes = list[tuple[DomainCheck, CheckOutcome]]


@dataclass(slots=True)
class FileValidation:
    """The validation of a whole file, summed over its chunks.

    ``rows_failed`` counts rejected input rows; ``rejected`` is the spool of their
    records (one per error), whose ``preview`` holds the first few.
    """

    rejected: RejectedSpool
    rows_read: int = 0
    rows_valid: int = 0
    rows_failed: int = 0
    chunks: int = 0
    duration_ms: float = 0.0
    step_durations_ms: dict[str, float] = field(default_factory=dict)

    def add(self, chunk: CsvChunk, result: PipelineResult, records: list[RejectedRow]) -> None:
        """Count one validated chunk and keep its rejected rows."""
        self.chunks += 1
        self.rows_read += len(chunk)
        self.rows_valid += len(result.output_data)
        self.rows_failed += result.rows_failed
        self.duration_ms += result.metrics.duration_ms
        for name, step in result.metrics.step_metrics.items():
            key = step_metric_name(name)
            self.step_durations_ms[key] = self.step_durations_ms.get(key, 0.0) + step.duration_ms
        self.rejected.add(records)

    @property
    def failure_rate(self) -> float:
        """Rejected input rows over input rows (0.0 for an empty file)."""
        return self.rows_failed / self.rows_read if self.rows_read else 0.0

    def metrics(self) -> dict[str, float | int]:
        """The run's ``data_quality_metrics`` of validation (as ``quality_metrics``)."""
        return {
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "rows_failed": self.rows_failed,
            "failure_rate": self.failure_rate,
            "rejected_rows": self.rejected.records,
            "validation_duration_ms": round(self.duration_ms, 3),
            **{name: round(ms, 3) for name, ms in self.step_durations_ms.items()},
        }


@dataclass(frozen=True, slots=True)
class StreamedLoad:
    """A committed streamed load: the validation, the load and every check's verdict.

    ``rejected_preview``: the first rejected rows' records (all of them are in
    ``rejected_rows``, ``rejected_records`` of them).
    """

    rows_read: int
    rows_valid: int
    rows_failed: int
    rejected_records: int
    rejected_preview: tuple[RejectedRow, ...]
    chunks: int
    validation_duration_ms: float
    result: LoadResult
    outcomes: Outcomes

    @property
    def rows_unchanged(self) -> int:
        """Valid rows whose table row already held the same data (not written)."""
        return self.result.rows_unchanged


@dataclass(frozen=True, slots=True)
class DryRun:
    """What loading the file would do; nothing was written."""

    rows_read: int
    rows_failed: int
    rejected_records: int
    rejected_preview: tuple[RejectedRow, ...]
    plan: LoadPlan
    validation_duration_ms: float


class StreamedRunError(Exception):
    """The run failed and nothing of its load was committed.

    ``action`` says what could not be done (``"validation failed"``, ``"cannot read
    the input file"``, ``"cannot load the rows"``); ``outcomes`` are the checks judged
    before it failed (to report); ``rejected_kept`` is how many rejected-row records
    were stored for diagnosis (0 in a dry run). The message is ``<action>: <reason>``.
    """

    def __init__(
        self,
        action: str,
        cause: BaseException,
        *,
        outcomes: Outcomes | None = None,
        rejected_kept: int = 0,
        suffix: str = "",
    ) -> None:
        self.action = action
        self.cause = cause
        self.outcomes: Outcomes = outcomes or []
        self.rejected_kept = rejected_kept
        super().__init__(f"{action}: {describe_failure(cause)}{suffix}")


_JUDGED: Final = (BlockingCheckFailedError, ErrorBudgetExceededError)
"""Failures that come with check verdicts to report."""


def _staged(tx: LoadTransaction, domain: Domain, *, plan_only: bool) -> StagedLoad:
    """The file's staged upsert into the domain's table, in *tx*."""
    return tx.staged_load(
        domain.table,
        schema=domain.schema,
        upsert_keys=list(domain.keys),
        compare_ignore=COMPARE_IGNORE,
        plan_only=plan_only,
    )


def _action(exc: BaseException) -> str:
    if isinstance(exc, ReaderError):
        return "cannot read the input file"
    if isinstance(exc, DatabaseAccessError):  # unknown database, login refused
        return "cannot connect to the database"
    if isinstance(exc, PipelineFailedError | ErrorBudgetExceededError):
        return "validation failed"
    return "cannot load the rows"


def _failure_rate_check(domain: Domain) -> DomainCheck:
    [check] = [c for c in domain_checks(domain) if c.name == FAILURE_RATE_CHECK]
    return check


_AHEAD: Final = 2
"""Chunks validated ahead of the database work at most: while the database writes one,
the next waits and the one after is validated, so neither side idles on the other's
uneven chunk times (memory: two validated chunks)."""

_SWITCH_INTERVAL_S: Final = 0.0005
"""The interpreter's thread switch interval while a load overlaps (Python's default: 5 ms).

Validation calls hundreds of Arrow kernels per chunk, each of which releases the GIL;
with the loading thread runnable, every release can cost the validating thread a whole
switch interval before it gets the GIL back (the "convoy effect"), which measured as
much time lost as the overlap gained. A shorter interval hands the GIL back promptly.
"""


@contextmanager
def _switching_often(*, overlap: bool) -> Iterator[None]:
    interval = sys.getswitchinterval()
    if overlap:
        sys.setswitchinterval(min(interval, _SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        if overlap:
            sys.setswitchinterval(interval)


def _validated(pipeline: Pipeline, chunk_frame: pd.DataFrame, execution_id: str) -> PipelineResult:
    result = pipeline.run(chunk_frame, execution_id=execution_id)
    result.raise_for_status()  # only a missing column or a broken step stops a chunk
    return result


def _chunks(path: str, encoding: str | None, block_size: int) -> Iterator[CsvChunk]:
    """The file's chunks; a file with a header and no record gives one empty chunk, so
    its columns are still checked."""
    empty = True
    for chunk in stream_csv(path, encoding=encoding, block_size=block_size):
        empty = False
        yield chunk
    if empty:
        frame = read_csv(path, encoding=encoding, dtype=str).iloc[:0]
        yield CsvChunk(frame=frame, lines=np.empty(0, dtype=np.int64), start=0)


def _stream_into(
    tx: LoadTransaction,
    domain: Domain,
    path: str,
    *,
    validation: FileValidation,
    budget: RejectionBudget,
    execution_id: str,
    encoding: str | None,
    block_size: int,
    overlap: bool,
    dry_run: bool,
    on_chunk: Callable[[int], None] | None,
) -> tuple[StagedLoad, float]:
    """Validate every chunk of *path* into *validation* and *budget* and stage its valid
    rows in the domain's table, and write its rejected rows -- or, for a *dry_run*, only
    stage the valid rows, to be planned; returns the staged load and the seconds the
    database work took."""
    staged = _staged(tx, domain, plan_only=dry_run)
    pipeline = build_chunk_pipeline(domain)
    # The transaction's now(): COPY then leaves loaded_at to its default. A dry run has
    # no load time to show (and loaded_at is left out of the comparison anyway).
    stamp = None if dry_run else tx.timestamp()
    load_seconds = [0.0]

    def validated() -> Iterator[tuple[CsvChunk, PipelineResult, list[RejectedRow]]]:
        for chunk in _chunks(path, encoding, block_size):
            result = _validated(pipeline, chunk.frame, execution_id)
            # An array of lines indexes like the sequence rejected_rows asks for.
            lines = cast("Sequence[int]", chunk.lines)
            yield chunk, result, rejected_rows(result, row_offset=chunk.start, file_lines=lines)

    # With overlap, chunks are read and validated in a background thread while this
    # one does the database work: the transaction's connection has one user.
    chunks = prefetched(validated(), _AHEAD) if overlap else validated()
    with _switching_often(overlap=overlap):
        for chunk, result, records in chunks:
            validation.add(chunk, result, records)
            budget.record(rows=len(chunk), rejected=result.rows_failed)
            started = time.perf_counter()
            valid = result.output_data
            if len(valid):
                staged.append(valid if stamp is None else valid.assign(loaded_at=stamp))
            if not dry_run and records:
                write_rejected_rows(
                    tx.connection,
                    records,
                    execution_id=execution_id,
                    domain=domain.name,
                    source_file=path,
                )
            load_seconds[0] += time.perf_counter() - started
            if on_chunk is not None:
                on_chunk(validation.rows_read)
    return staged, load_seconds[0]


def load_file(
    loader: WarehouseLoader,
    audit: AuditRecorder,
    domain: Domain,
    path: str,
    *,
    execution_id: str,
    encoding: str | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    overlap: bool = True,
    last_attempt: bool = True,
    on_chunk: Callable[[int], None] | None = None,
    step: str | None = None,
) -> StreamedLoad:
    """Stream *path* into the domain's table and commit it with its rejected rows, the
    run's metrics and its ``success`` audit row -- or nothing.

    Valid rows are upserted on the domain's keys with ``loaded_at`` = the time of this
    load (the transaction's start, PostgreSQL's ``now()``); rows whose data did not
    change are not written (``rows_unchanged``). The run's audit row (``execution_id``)
    must be ``running``. *on_chunk* is called with the rows read so far after each
    chunk is handed to the database. *step* (the Dagster step)
    leads the reason stored in a failed run's audit row, as the job's failure hook
    writes it.

    Raises:
        StreamedRunError: the run failed (budget exceeded, naming the rate and the
            threshold; a blocking check; a bad record; a load error); nothing of the
            load was committed, and the rejected rows found, the metrics and the
            ``failed`` audit row were written in a transaction of their own.
        wdh_io.errors.TransientDatabaseError: a transient failure when not
            *last_attempt*; nothing was written, so the run can be tried again.
    """
    budget = RejectionBudget(threshold=domain.max_failure_rate, table=domain.table)
    with RejectedSpool(PREVIEW_ROWS) as spool:
        validation = FileValidation(rejected=spool)
        outcomes: Outcomes = []
        try:
            with loader.transaction() as tx:
                staged, seconds = _stream_into(
                    tx,
                    domain,
                    path,
                    validation=validation,
                    budget=budget,
                    execution_id=execution_id,
                    encoding=encoding,
                    block_size=block_size,
                    overlap=overlap,
                    dry_run=False,
                    on_chunk=on_chunk,
                )
                outcomes = [
                    (
                        _failure_rate_check(domain),
                        failure_rate_outcome(domain, budget.rows, budget.rejected),
                    )
                ]
                budget.check()  # the whole file, before anything is merged or committed
                started = time.perf_counter()
                merged = staged.merge()
                result = dataclasses.replace(
                    merged,
                    duration_ms=round((seconds + time.perf_counter() - started) * 1000, 3),
                )
                outcomes = evaluate(
                    domain, tx.connection, _loaded(domain, path, validation, result)
                )
                if any(c.blocking and not o.passed for c, o in outcomes):
                    raise BlockingCheckFailedError(outcomes)
                audit.record_metrics(
                    execution_id=execution_id,
                    domain=domain.name,
                    metrics={
                        **validation.metrics(),
                        "rows_inserted": result.rows_inserted,
                        "rows_updated": result.rows_updated,
                        "rows_unchanged": result.rows_unchanged,
                        "load_duration_ms": result.duration_ms,
                        **check_metrics(outcomes),
                    },
                    connection=tx.connection,
                )
                audit.complete_run(
                    execution_id=execution_id,
                    status="success",
                    rows_input=validation.rows_read,
                    rows_output=result.rows_inserted + result.rows_updated,
                    rows_failed=validation.rows_failed,
                    connection=tx.connection,
                )
        except Exception as exc:
            transient = is_transient(exc)
            if transient and not last_attempt:
                raise
            suffix = " (retried, no attempt left)" if transient else ""
            failure = StreamedRunError(
                _action(exc),
                exc,
                outcomes=outcomes if isinstance(exc, _JUDGED) else [],
                suffix=suffix,
            )
            failure.rejected_kept = _keep_failed_run(
                loader,
                audit,
                domain,
                path=path,
                validation=validation,
                failure=failure,
                execution_id=execution_id,
                step=step,
            )
            raise failure from exc
        _log.info(
            "domain.file.loaded",
            domain=domain.name,
            chunks=validation.chunks,
            rows_read=validation.rows_read,
            rows_failed=validation.rows_failed,
            inserted=result.rows_inserted,
            updated=result.rows_updated,
            unchanged=result.rows_unchanged,
        )
        return StreamedLoad(
            rows_read=validation.rows_read,
            rows_valid=validation.rows_valid,
            rows_failed=validation.rows_failed,
            rejected_records=spool.records,
            rejected_preview=tuple(spool.preview),
            chunks=validation.chunks,
            validation_duration_ms=validation.duration_ms,
            result=result,
            outcomes=outcomes,
        )


def _loaded(
    domain: Domain, path: str, validation: FileValidation, result: LoadResult
) -> LoadedFile:
    return LoadedFile(
        domain=domain,
        path=path,
        rows_read=validation.rows_read,
        rows_valid=validation.rows_valid,
        rows_failed=validation.rows_failed,
        rows_inserted=result.rows_inserted,
        rows_updated=result.rows_updated,
        rows_unchanged=result.rows_unchanged,
    )


def _keep_failed_run(
    loader: WarehouseLoader,
    audit: AuditRecorder,
    domain: Domain,
    *,
    path: str,
    validation: FileValidation,
    failure: StreamedRunError,
    execution_id: str,
    step: str | None,
) -> int:
    """Store the failed run's rejected rows, metrics and ``failed`` audit row, in one
    transaction; return how many rejected-row records were stored.

    A failure here is logged, not raised: the run's own error is the one to report (and
    the run's failure hook closes its audit row if this could not).
    """
    try:
        with loader.transaction() as tx:
            kept = write_rejected_rows(
                tx.connection,
                iter(validation.rejected),
                execution_id=execution_id,
                domain=domain.name,
                source_file=path,
            )
            audit.record_metrics(
                execution_id=execution_id,
                domain=domain.name,
                metrics={**validation.metrics(), **check_metrics(failure.outcomes)},
                connection=tx.connection,
            )
            audit.complete_run(
                execution_id=execution_id,
                status="failed",
                rows_input=validation.rows_read,
                rows_output=0,
                rows_failed=validation.rows_failed,
                error_message=f"{step}: {failure}" if step else str(failure),
                connection=tx.connection,
            )
    except Exception as exc:  # noqa: BLE001 - reported, and the run's own error wins
        _log.error(
            "domain.rejected_rows.not_kept",
            domain=domain.name,
            execution_id=execution_id,
            error=describe_failure(exc),
        )
        return 0
    _log.info("domain.failed_run.kept", domain=domain.name, rejected_rows=kept)
    return kept


class _DryRunDone(Exception):  # noqa: N818 - not an error: it carries the plan out
    """Raised inside the dry run's transaction so that it rolls back."""

    def __init__(self, plan: LoadPlan) -> None:
        super().__init__("dry run: rolled back")
        self.plan = plan


def plan_file(
    loader: WarehouseLoader,
    domain: Domain,
    path: str,
    *,
    execution_id: str,
    encoding: str | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    overlap: bool = True,
    preview_rows: int = PREVIEW_ROWS,
) -> DryRun:
    """What :func:`load_file` would do with *path*, without writing anything.

    The file is read, validated and staged as for a load (in a transaction that is
    rolled back); the loader says which valid rows would be inserted, updated or left
    unchanged. The budget is not enforced: the plan reports the rejected rows. The rows
    are staged even when the table is empty (where a load copies them straight in), so
    the table is neither written nor locked.

    Raises:
        StreamedRunError: the file could not be read or validated, or staging failed.
    """
    budget = RejectionBudget(threshold=1.0, table=domain.table)
    with RejectedSpool(preview_rows) as spool:
        validation = FileValidation(rejected=spool)
        try:
            with loader.transaction() as tx:
                staged, _ = _stream_into(
                    tx,
                    domain,
                    path,
                    validation=validation,
                    budget=budget,
                    execution_id=execution_id,
                    encoding=encoding,
                    block_size=block_size,
                    overlap=overlap,
                    dry_run=True,
                    on_chunk=None,
                )
                raise _DryRunDone(staged.plan(preview_rows=preview_rows))
        except _DryRunDone as done:
            plan = done.plan
        except Exception as exc:
            raise StreamedRunError(_action(exc), exc) from exc
        return DryRun(
            rows_read=validation.rows_read,
            rows_failed=validation.rows_failed,
            rejected_records=spool.records,
            rejected_preview=tuple(spool.preview),
            plan=plan,
            validation_duration_ms=validation.duration_ms,
        )
