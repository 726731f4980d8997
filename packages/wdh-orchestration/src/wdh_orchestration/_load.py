"""Load a domain's validated rows, check them and close the run's audit row, atomically."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from wdh_io.audit import AuditRecorder
from wdh_io.loader import LoadResult, WarehouseLoader
from wdh_orchestration._checks import check_metrics, evaluate
from wdh_orchestration._domain import CheckOutcome, Domain, DomainCheck, LoadedFile
from wdh_orchestration._validation import ValidatedRows

__all__ = ["BlockingCheckFailedError", "CheckedLoad", "load_check_and_complete"]


@dataclass(frozen=True, slots=True)
class CheckedLoad:
    """A committed load: the loader's result and every check's verdict."""

    result: LoadResult
    outcomes: list[tuple[DomainCheck, CheckOutcome]]


class BlockingCheckFailedError(Exception):
    """A blocking check failed, so the load was rolled back; ``outcomes`` has them all."""

    def __init__(self, outcomes: list[tuple[DomainCheck, CheckOutcome]]) -> None:
        self.outcomes = outcomes
        failed = [f"{c.name}: {o.description}" for c, o in outcomes if c.blocking and not o.passed]
        super().__init__("check failed, nothing was loaded: " + "; ".join(failed))


def load_check_and_complete(
    loader: WarehouseLoader,
    audit: AuditRecorder,
    domain: Domain,
    rows: ValidatedRows,
    *,
    execution_id: str,
    path: str,
) -> CheckedLoad:
    """Upsert *rows* into the domain's table, run its checks and mark the run
    ``success``, in one transaction.

    Every row written, inserted or updated, gets ``loaded_at`` = the time of this load
    when the table has that column (its server default only covers inserts). The load
    metrics (``rows_inserted``, ``rows_updated``, ``load_duration_ms``), the checks'
    metrics and the ``success`` audit row commit together with the data, or not at all.

    Raises:
        BlockingCheckFailedError: a blocking check failed; the transaction was rolled back.
        wdh_io.errors.DatabaseError: the load failed; the transaction was rolled back.
    """
    frame = rows.data.assign(loaded_at=pd.Timestamp.now(tz="UTC"))
    with loader.transaction() as tx:
        result = tx.load_dataframe(
            frame, domain.table, schema=domain.schema, upsert_keys=list(domain.keys)
        )
        loaded = LoadedFile(
            domain=domain,
            path=path,
            rows_read=rows.rows_read,
            rows_valid=len(rows.data),
            rows_failed=rows.rows_failed,
            rows_inserted=result.rows_inserted,
            rows_updated=result.rows_updated,
            valid_rows=rows.data,
        )
        outcomes = evaluate(domain, tx.connection, loaded)
        if any(check.blocking and not outcome.passed for check, outcome in outcomes):
            raise BlockingCheckFailedError(outcomes)
        audit.record_metrics(
            execution_id=execution_id,
            domain=domain.name,
            metrics={
                "rows_inserted": result.rows_inserted,
                "rows_updated": result.rows_updated,
                "load_duration_ms": result.duration_ms,
                **check_metrics(outcomes),
            },
            connection=tx.connection,
        )
        audit.complete_run(
            execution_id=execution_id,
            status="success",
            rows_input=rows.rows_read,
            rows_output=result.rows_inserted + result.rows_updated,
            rows_failed=rows.rows_failed,
            connection=tx.connection,
        )
    return CheckedLoad(result=result, outcomes=outcomes)
