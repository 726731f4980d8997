"""Replay: a run's rejected rows validated again with the current domain model.

After the rules (the domain's row model) or the data are fixed, :func:`replay_run` reads
the run's unresolved rejected rows (``wdh_io.quarantine``), rebuilds the text frame they
came from (their raw values; index = input row), validates it with the domain's
validation pipeline in collect mode with no error budget, and then, in ONE transaction:

* upserts the rows that now pass into the domain's table (``loaded_at`` stamped, as a
  load does),
* marks them resolved by the replaying execution,
* gives the rows still rejected their new reasons (reasons that did not change are not
  touched), and
* completes the replaying execution's audit row (``<domain>_replay``) with its metrics.

A failure anywhere rolls all of it back. Replaying again with the same model reaches the
same verdicts, so it resolves nothing and changes no reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
import structlog
from pydantic import BaseModel

from wdh_domain.pipelines import Pipeline, PipelineResult, new_execution_id
from wdh_io.audit import AuditRecorder
from wdh_io.loader import LoadTransaction, WarehouseLoader
from wdh_io.quarantine import (
    RejectionReason,
    ReplayRow,
    mark_resolved,
    unresolved_rows,
    update_reasons,
)
from wdh_io.schema import pipeline_executions, rejected_rows
from wdh_orchestration._domain import Domain
from wdh_orchestration._failures import describe_failure
from wdh_orchestration._rejections import rejection_reasons
from wdh_orchestration._validation import build_validation_pipeline, quality_metrics

__all__ = [
    "ReplayError",
    "ReplayResult",
    "replay_frame",
    "replay_pipeline",
    "replay_run",
]

_log = structlog.get_logger(__name__)


class ReplayError(Exception):
    """A replay that cannot be done as asked (unknown run or domain, a model that cannot
    validate the rows, ...). The message says what and where; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay of run ``execution_id`` did.

    ``replay_execution_id`` is the replaying execution's audit id (``None`` when there
    was nothing to replay: then nothing was written, not even an audit row).
    ``rows_replayed`` input rows were validated again: ``rows_resolved`` now pass (upserted:
    ``rows_inserted`` + ``rows_updated``), ``rows_rejected`` still fail, and
    ``reasons_changed`` stored reasons were replaced or added. ``rows_resolved_before``:
    rows of the run that earlier replays had resolved already.
    """

    execution_id: str
    domain: str | None
    replay_execution_id: str | None
    rows_replayed: int = 0
    rows_resolved: int = 0
    rows_rejected: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    reasons_changed: int = 0
    rows_resolved_before: int = 0

    @property
    def nothing_to_replay(self) -> bool:
        """Whether the run had no unresolved rejected row (of the chosen domain)."""
        return self.rows_replayed == 0

    def summary(self) -> str:
        """One line for people: what was replayed, resolved and still rejected."""
        if self.nothing_to_replay:
            earlier = (
                f" ({self.rows_resolved_before} resolved by earlier replays)"
                if self.rows_resolved_before
                else ""
            )
            return (
                f"nothing to replay: run {self.execution_id} has no unresolved rejected "
                f"rows{earlier}"
            )
        return (
            f"replayed {self.rows_replayed} rejected rows of run {self.execution_id} "
            f"({self.domain}) as {self.replay_execution_id}: {self.rows_resolved} resolved "
            f"({self.rows_inserted} inserted, {self.rows_updated} updated), "
            f"{self.rows_rejected} still rejected ({self.reasons_changed} reasons changed)"
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    domain: Domain | None
    unresolved: int
    resolved: int
    source_file: str | None


def replay_pipeline(domain: Domain) -> Pipeline:
    """The domain's validation pipeline (``build_validation_pipeline``) with no error
    budget: a replay judges every row, however many still fail."""
    return build_validation_pipeline(dataclasses.replace(domain, max_failure_rate=1.0))


def replay_frame(rows: Sequence[ReplayRow], model: type[BaseModel]) -> pd.DataFrame:
    """The text frame *rows* were read as: one column per raw value, index = input row.

    ``jsonb`` does not keep the file's column order, so the model's fields come first, in
    the model's order, then the other columns as stored. A column whose values are all
    text or missing is a ``str`` column (missing: NaN), as ``read_csv(dtype=str)`` gives;
    any other (an input that was not text) keeps its stored values as objects.
    """
    seen: dict[str, None] = {}
    for row in rows:
        for key in row.raw_values:
            seen.setdefault(key)
    fields = list(model.model_fields)
    columns = [f for f in fields if f in seen] + [c for c in seen if c not in fields]
    index = pd.Index([row.input_row for row in rows], dtype="int64")
    data: dict[str, pd.Series] = {}
    for column in columns:
        values = [row.raw_values.get(column) for row in rows]
        text = all(v is None or isinstance(v, str) for v in values)
        data[column] = pd.Series(values, index=index, dtype="str" if text else object)
    return pd.DataFrame(data, index=index)


def replay_run(
    loader: WarehouseLoader,
    audit: AuditRecorder,
    domains: Sequence[Domain],
    *,
    execution_id: str,
    replay_execution_id: str | None = None,
    domain: str | None = None,
    close_failed: bool = True,
) -> ReplayResult:
    """Replay the unresolved rejected rows of run *execution_id* with the current model
    of their domain (one of *domains*; *domain* names it when the run rejected rows of
    several), as execution *replay_execution_id* (default: a new ``exec_…`` id; see the
    module docstring).

    Nothing to replay (the run rejected no row, or every one is resolved) returns a
    result whose :attr:`~ReplayResult.nothing_to_replay` is true and writes nothing.
    Otherwise the replaying execution's ``running`` audit row (``<domain>_replay``) is
    opened first, in its own transaction; on failure, with *close_failed*, it is
    completed as ``failed`` with the reason (a Dagster step leaves that to its failure
    hook, which runs after the last retry).

    Raises:
        ReplayError: *execution_id* is not a recorded run, *domain* is not declared,
            the run's rows belong to an undeclared domain or to several domains and none
            was named, two of its domains share input rows, or the model cannot
            validate the rows (a required column the rows do not have, say).
        wdh_io.errors.WdhIoError: the database failed, or the rows that now pass cannot
            be loaded (duplicate keys, a constraint). Nothing was changed.
    """
    replay_id = replay_execution_id or new_execution_id()
    if execution_id == replay_id:
        raise ReplayError(f"run {execution_id!r} cannot replay itself")
    plan = loader.run_in_transaction(
        lambda tx: _plan(tx.connection, domains, execution_id, domain),
        operation=f"plan the replay of {execution_id}",
    )
    chosen = plan.domain
    if chosen is None or plan.unresolved == 0:
        result = ReplayResult(
            execution_id=execution_id,
            domain=chosen.name if chosen is not None else domain,
            replay_execution_id=None,
            rows_resolved_before=plan.resolved,
        )
        _log.info("replay.nothing_to_replay", execution_id=execution_id, domain=result.domain)
        return result
    audit.ensure_run(
        execution_id=replay_id,
        pipeline_name=f"{chosen.name}_replay",
        input_file_path=plan.source_file,
    )
    try:
        result = loader.run_in_transaction(
            lambda tx: _replay_in(
                tx,
                audit,
                chosen,
                execution_id=execution_id,
                replay_execution_id=replay_id,
                resolved_before=plan.resolved,
            ),
            operation=f"replay {execution_id}",
        )
    except Exception as exc:
        if close_failed:
            _close_failed(audit, replay_id, exc)
        raise
    _log.info(
        "replay.completed",
        execution_id=execution_id,
        replay_execution_id=replay_id,
        domain=chosen.name,
        rows_replayed=result.rows_replayed,
        rows_resolved=result.rows_resolved,
        rows_rejected=result.rows_rejected,
    )
    return result


def _plan(
    connection: sa.Connection, domains: Sequence[Domain], execution_id: str, name: str | None
) -> _Plan:
    """Check the request and choose the domain; read only."""
    declared = {d.name: d for d in domains}
    known = ", ".join(sorted(declared)) or "none"
    if name is not None and name not in declared:
        raise ReplayError(f"unknown domain {name!r}; the declared domains are: {known}")
    exists = connection.execute(
        sa.select(pipeline_executions.c.execution_id).where(
            pipeline_executions.c.execution_id == execution_id
        )
    ).first()
    if exists is None:
        raise ReplayError(
            f"no run {execution_id!r} in pipeline_executions: check the execution id "
            "(python -m wdh_orchestrator.show lists the latest runs)"
        )
    unresolved = sa.func.count().filter(rejected_rows.c.resolved_at.is_(None))
    counts = {
        row.domain: row
        for row in connection.execute(
            sa.select(
                rejected_rows.c.domain,
                unresolved.label("unresolved"),
                sa.func.count(sa.distinct(rejected_rows.c.input_row))
                .filter(rejected_rows.c.resolved_at.is_not(None))
                .label("resolved"),
                sa.func.min(rejected_rows.c.source_file).label("source_file"),
            )
            .where(rejected_rows.c.execution_id == execution_id)
            .group_by(rejected_rows.c.domain)
        )
    }
    if not counts:
        return _Plan(declared.get(name) if name else None, 0, 0, None)
    if name is None:
        if len(counts) > 1:
            raise ReplayError(
                f"run {execution_id!r} rejected rows of several domains "
                f"({', '.join(sorted(counts))}): name the one to replay"
            )
        [name] = counts
        if name not in declared:
            raise ReplayError(
                f"the rejected rows of run {execution_id!r} belong to domain {name!r}, "
                f"which is not declared (declared: {known})"
            )
    elif name not in counts:
        raise ReplayError(
            f"run {execution_id!r} rejected no rows of domain {name!r} "
            f"(it rejected rows of: {', '.join(sorted(counts))})"
        )
    row = counts[name]
    return _Plan(declared[name], int(row.unresolved), int(row.resolved), row.source_file)


def _replay_in(
    tx: LoadTransaction,
    audit: AuditRecorder,
    domain: Domain,
    *,
    execution_id: str,
    replay_execution_id: str,
    resolved_before: int,
) -> ReplayResult:
    """The replay's one transaction: lock, validate, upsert, resolve, re-reason, close."""
    connection = tx.connection
    locked = unresolved_rows(connection, execution_id)  # FOR UPDATE until COMMIT
    _refuse_shared_input_rows(connection, execution_id, domain)
    rows = [r for r in locked if r.domain == domain.name]
    verdict = _validate(domain, rows, execution_id, replay_execution_id) if rows else None
    still_rejected = verdict.reasons if verdict is not None else {}
    passed = [r.input_row for r in rows if r.input_row not in still_rejected]
    inserted = updated = 0
    load_ms = 0.0
    if verdict is not None and len(verdict.result.output_data):
        # Every row written, inserted or updated, is stamped with this load's time.
        frame = verdict.result.output_data.assign(loaded_at=tx.timestamp())
        loaded = tx.load_dataframe(
            frame, domain.table, schema=domain.schema, upsert_keys=list(domain.keys)
        )
        inserted, updated, load_ms = loaded.rows_inserted, loaded.rows_updated, loaded.duration_ms
    errors_resolved = mark_resolved(
        connection, execution_id=execution_id, input_rows=passed, resolved_by=replay_execution_id
    )
    changed = update_reasons(connection, execution_id=execution_id, reasons=still_rejected)
    metrics: dict[str, float | int] = {
        **(quality_metrics(verdict.result) if verdict is not None else {}),
        "rows_resolved": len(passed),
        "errors_resolved": errors_resolved,
        "rows_inserted": inserted,
        "rows_updated": updated,
        "reasons_changed": changed,
        "load_duration_ms": load_ms,
    }
    audit.record_metrics(
        execution_id=replay_execution_id,
        domain=domain.name,
        metrics=metrics,
        connection=connection,
    )
    audit.complete_run(
        execution_id=replay_execution_id,
        status="success",
        rows_input=len(rows),
        rows_output=inserted + updated,
        rows_failed=len(still_rejected),
        connection=connection,
    )
    return ReplayResult(
        execution_id=execution_id,
        domain=domain.name,
        replay_execution_id=replay_execution_id,
        rows_replayed=len(rows),
        rows_resolved=len(passed),  # input rows; all of their errors are resolved
        rows_rejected=len(still_rejected),
        rows_inserted=inserted,
        rows_updated=updated,
        reasons_changed=changed,
        rows_resolved_before=resolved_before,
    )


def _refuse_shared_input_rows(connection: sa.Connection, execution_id: str, domain: Domain) -> None:
    # The quarantine reads, resolves and re-reasons rows by (execution id, input row):
    # another domain's unresolved rows of the same run at the same input rows would be
    # mixed with these.
    unresolved = sa.and_(
        rejected_rows.c.execution_id == execution_id, rejected_rows.c.resolved_at.is_(None)
    )
    mine = sa.select(rejected_rows.c.input_row).where(
        unresolved, rejected_rows.c.domain == domain.name
    )
    shared = connection.execute(
        sa.select(sa.func.min(rejected_rows.c.input_row)).where(
            unresolved,
            rejected_rows.c.domain != domain.name,
            rejected_rows.c.input_row.in_(mine),
        )
    ).scalar_one()
    if shared is not None:
        raise ReplayError(
            f"run {execution_id!r} has unresolved rejected rows of another domain at the "
            f"same input rows as {domain.name!r} (first: {shared}); they cannot be "
            "replayed apart"
        )


@dataclass(frozen=True, slots=True)
class _Verdict:
    result: PipelineResult
    reasons: dict[int, list[RejectionReason]]  # by input row, the rows still rejected


def _validate(
    domain: Domain, rows: list[ReplayRow], execution_id: str, replay_execution_id: str
) -> _Verdict:
    frame = replay_frame(rows, domain.model)
    result = replay_pipeline(domain).run(frame, execution_id=replay_execution_id)
    if not result.success:
        errors = result.errors
        whole = errors[errors["row"].isna()]["message"].tolist() or ["the pipeline failed"]
        raise ReplayError(
            f"the current model of domain {domain.name!r} cannot validate the rejected rows "
            f"of run {execution_id!r}: {'; '.join(str(m) for m in whole)}"
        )
    positions = result.failed_rows["_row"]
    if positions.isna().any():
        raise ReplayError(
            f"domain {domain.name!r}: a validation step lost the input row of a rejected row"
        )
    reasons = {int(frame.index[p]): r for p, r in rejection_reasons(result).items()}
    failed = {int(frame.index[int(p)]) for p in positions}
    for input_row in failed - set(reasons):
        # A row rejected without a row error (never by the platform's own steps) still
        # needs a reason: update_reasons keeps every stored row explained.
        reasons[input_row] = [
            RejectionReason(error_code="REJECTED", message="rejected without a row error")
        ]
    return _Verdict(result=result, reasons=reasons)


def _close_failed(audit: AuditRecorder, replay_execution_id: str, exc: Exception) -> None:
    try:
        audit.complete_run(
            execution_id=replay_execution_id,
            status="failed",
            error_message=f"replay failed: {describe_failure(exc)}",
        )
    except Exception as audit_error:  # noqa: BLE001 - the replay's own error is the one to see
        _log.error(
            "audit.run.failure_not_recorded",
            execution_id=replay_execution_id,
            error=type(audit_error).__name__,
        )
