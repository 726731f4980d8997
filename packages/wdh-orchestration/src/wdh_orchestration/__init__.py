"""WorkDataHub orchestration: Dagster ops, jobs and resources over ``wdh_domain`` and ``wdh_io``.

``sample_pipeline_job`` (read a CSV -> validate -> load) is the pattern every domain job
follows; `WarehouseResource` gives ops the warehouse; the code location that serves
them is ``apps/orchestrator`` (``wdh_orchestrator.definitions``).
"""

from wdh_orchestration._audit import execution_id_for, record_failed_run
from wdh_orchestration._failures import describe_failure, retry_only_transient
from wdh_orchestration._scope import op_scope
from wdh_orchestration._validation import ValidatedRows, build_sample_pipeline
from wdh_orchestration.jobs import retry_policy_for, sample_pipeline_job
from wdh_orchestration.ops import ReadCsvConfig, load_to_db_op, read_csv_op, validate_op
from wdh_orchestration.resources import WarehouseResource
from wdh_orchestration.schedules import SCHEDULES
from wdh_orchestration.sensors import SENSORS

__all__ = [
    "SCHEDULES",
    "SENSORS",
    "ReadCsvConfig",
    "ValidatedRows",
    "WarehouseResource",
    "build_sample_pipeline",
    "describe_failure",
    "execution_id_for",
    "load_to_db_op",
    "op_scope",
    "read_csv_op",
    "record_failed_run",
    "retry_only_transient",
    "retry_policy_for",
    "sample_pipeline_job",
    "validate_op",
]
