"""The sample job's ops: thin wrappers that delegate to ``wdh_io`` and ``wdh_domain``.

Each op reports its figures as Dagster metadata (shown on the run page) and logs through
structlog (shown in the run's event log). Failures other than transient database errors
are not retried (see ``_failures``).
"""

# No ``from __future__ import annotations`` here: Dagster reads the ops' parameter
# annotations at decoration time to find their config, resources and inputs.
from collections.abc import Mapping
from typing import Any

import pandas as pd
import structlog
from dagster import Config, OpExecutionContext, op
from pydantic import Field

from wdh_io.loader import LoadResult
from wdh_io.readers import read_csv
from wdh_orchestration._load import load_and_complete
from wdh_orchestration._metadata import load_metadata, read_metadata, validation_metadata
from wdh_orchestration._scope import op_scope
from wdh_orchestration._validation import (
    ValidatedRows,
    build_sample_pipeline,
    quality_metrics,
    validate_rows,
)
from wdh_orchestration.resources import WarehouseResource
from wdh_orchestration.domains.sample import SAMPLE_DOMAIN, sample_csv_path

__all__ = [
    "ReadCsvConfig",
    "input_path_of",
    "load_to_db_op",
    "read_csv_op",
    "validate_op",
]

_log = structlog.get_logger(__name__)


class ReadCsvConfig(Config):
    """Which file ``read_csv_op`` reads."""

    path: str = Field(
        default=str(sample_csv_path()),
        description="CSV file to read (default: the sample shipped with wdh-orchestration)",
    )
    encoding: str | None = Field(
        default=None, description="text encoding, e.g. 'gbk'; detected when unset"
    )


def input_path_of(context: OpExecutionContext) -> str:
    """The file this run reads: ``read_csv_op``'s configured path, or its default.

    Ops after ``read_csv_op`` record it when they open the run's audit row (in a
    re-execution from failure ``read_csv_op`` does not run again).
    """
    read_config = _section(_section(_section(context.run_config, "ops"), "read_csv_op"), "config")
    return ReadCsvConfig(**read_config).path


def _section(config: object, key: str) -> Mapping[str, Any]:
    value = config.get(key) if isinstance(config, Mapping) else None
    return value if isinstance(value, Mapping) else {}


@op(description="Open the run's audit record and read the CSV file into a DataFrame.")
def read_csv_op(
    context: OpExecutionContext, config: ReadCsvConfig, warehouse: WarehouseResource
) -> pd.DataFrame:
    """Record the run as ``running``, then read ``config.path``."""
    with op_scope(
        context, warehouse, failure="cannot read the input file", input_file_path=config.path
    ):
        # Every column as text: the row model, not the reader, decides what is valid.
        df = read_csv(config.path, encoding=config.encoding, dtype=str)
    context.add_output_metadata(read_metadata(df, config.path))
    _log.info("sample.read.completed", rows_read=len(df), path=config.path)
    return df


@op(description="Validate every row against SampleRecord; invalid rows are reported, not loaded.")
def validate_op(
    context: OpExecutionContext, raw: pd.DataFrame, warehouse: WarehouseResource
) -> ValidatedRows:
    """Run the ``sample_validation`` pipeline and record its data-quality metrics."""
    path = input_path_of(context)
    with op_scope(context, warehouse, failure="validation failed", input_file_path=path) as eid:
        result = validate_rows(raw, build_sample_pipeline(), execution_id=eid)
        metrics = quality_metrics(result)
        warehouse.audit().record_metrics(execution_id=eid, domain=SAMPLE_DOMAIN, metrics=metrics)
    context.add_output_metadata(validation_metadata(result))
    _log.info("sample.validate.completed", **metrics)
    return ValidatedRows(result.output_data, rows_read=len(raw), rows_failed=result.rows_failed)


@op(description="Upsert the valid rows into public.sample_data and complete the audit record.")
def load_to_db_op(
    context: OpExecutionContext, validated: ValidatedRows, warehouse: WarehouseResource
) -> LoadResult:
    """Load on ``record_id`` (reloading a file updates, never duplicates) and mark success."""
    path = input_path_of(context)
    with op_scope(context, warehouse, failure="cannot load the rows", input_file_path=path) as eid:
        result = load_and_complete(
            warehouse.loader(), warehouse.audit(), validated, execution_id=eid
        )
    context.add_output_metadata(load_metadata(result))
    _log.info("sample.load.completed", inserted=result.rows_inserted, updated=result.rows_updated)
    return result
