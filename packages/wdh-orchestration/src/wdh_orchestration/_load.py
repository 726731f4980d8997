"""Load the validated rows and close the run's audit record in one transaction."""

from __future__ import annotations

from wdh_io.audit import AuditRecorder
from wdh_io.loader import LoadResult, WarehouseLoader
from wdh_orchestration._validation import ValidatedRows
from wdh_orchestration.sample import SAMPLE_DOMAIN, SAMPLE_KEYS, SAMPLE_SCHEMA, SAMPLE_TABLE

__all__ = ["load_and_complete"]


def load_and_complete(
    loader: WarehouseLoader, audit: AuditRecorder, rows: ValidatedRows, *, execution_id: str
) -> LoadResult:
    """Upsert *rows* into ``public.sample_data`` and mark the run ``success``, atomically.

    The load metrics and the ``success`` audit row commit together with the data, or not
    at all: a load that fails leaves the table and the audit row as they were (the
    failure hook then records the run as ``failed``).
    """
    with loader.transaction() as tx:
        result = tx.load_dataframe(
            rows.data, SAMPLE_TABLE, schema=SAMPLE_SCHEMA, upsert_keys=list(SAMPLE_KEYS)
        )
        audit.record_metrics(
            execution_id=execution_id,
            domain=SAMPLE_DOMAIN,
            metrics={"rows_inserted": result.rows_inserted, "rows_updated": result.rows_updated},
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
    return result
