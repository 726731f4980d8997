"""Load the validated rows and close the run's audit record in one transaction."""

from __future__ import annotations

import pandas as pd

from wdh_io.audit import AuditRecorder
from wdh_io.loader import LoadResult, WarehouseLoader
from wdh_orchestration._validation import ValidatedRows
from wdh_orchestration.domains.sample import SAMPLE_DOMAIN, SAMPLE_KEYS, SAMPLE_SCHEMA, SAMPLE_TABLE

__all__ = ["load_and_complete"]


def load_and_complete(
    loader: WarehouseLoader, audit: AuditRecorder, rows: ValidatedRows, *, execution_id: str
) -> LoadResult:
    """Upsert *rows* into ``public.sample_data`` and mark the run ``success``, atomically.

    Every row written, inserted or updated, gets ``loaded_at`` = the time of this load
    (the column's server default only covers inserts, so without it an updated row
    would keep the time it was first loaded). The load metrics (``rows_inserted``,
    ``rows_updated``, ``load_duration_ms``) and the ``success`` audit row commit together
    with the data, or not at all: a load that fails leaves the table and the audit row
    as they were (the failure hook then records the run as ``failed``).
    """
    frame = rows.data.assign(loaded_at=pd.Timestamp.now(tz="UTC"))
    with loader.transaction() as tx:
        result = tx.load_dataframe(
            frame, SAMPLE_TABLE, schema=SAMPLE_SCHEMA, upsert_keys=list(SAMPLE_KEYS)
        )
        audit.record_metrics(
            execution_id=execution_id,
            domain=SAMPLE_DOMAIN,
            metrics={
                "rows_inserted": result.rows_inserted,
                "rows_updated": result.rows_updated,
                "load_duration_ms": result.duration_ms,
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
    return result
