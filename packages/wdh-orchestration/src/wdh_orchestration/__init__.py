"""WorkDataHub orchestration: domains as Dagster assets, on a shared platform.

A domain is declared once (:class:`Domain`, in ``domains/<name>/``); :func:`build_platform`
turns the declarations into source and table assets, asset checks, one job per domain
(``<name>_pipeline_job``), a landing sensor per domain, the ``replay_rejected_rows`` job
(:func:`replay_run`: a run's rejected rows validated again with the current model) and
the run-status sensors that close the audit rows of failed and cancelled runs.
`WarehouseResource` gives them the warehouse; the code location that serves them is
``apps/orchestrator`` (``wdh_orchestrator.definitions``).
"""

from wdh_orchestration._assets import DomainDefinitions, FileConfig, build_domain, table_asset_key
from wdh_orchestration._audit import (
    close_run,
    execution_id_for,
    record_failed_run,
    resolve_execution_id,
)
from wdh_orchestration._console import one_line_console_logger
from wdh_orchestration._domain import CheckOutcome, Domain, DomainCheck, LoadedFile, Partitioning
from wdh_orchestration._failures import describe_failure, is_transient, retry_only_transient
from wdh_orchestration._landing import file_sha256
from wdh_orchestration._platform import Platform, build_platform
from wdh_orchestration._replay import (
    ReplayError,
    ReplayResult,
    replay_frame,
    replay_pipeline,
    replay_run,
)
from wdh_orchestration._replay_job import REPLAY_JOB_NAME, ReplayConfig, build_replay_job
from wdh_orchestration._retry import retry_policy_for
from wdh_orchestration._scope import op_scope
from wdh_orchestration._stream import DryRun, StreamedLoad, StreamedRunError, load_file, plan_file
from wdh_orchestration._validation import build_validation_pipeline
from wdh_orchestration.resources import WarehouseResource

__all__ = [
    "REPLAY_JOB_NAME",
    "CheckOutcome",
    "Domain",
    "DomainCheck",
    "DomainDefinitions",
    "DryRun",
    "FileConfig",
    "LoadedFile",
    "Partitioning",
    "Platform",
    "ReplayConfig",
    "ReplayError",
    "ReplayResult",
    "StreamedLoad",
    "StreamedRunError",
    "WarehouseResource",
    "build_domain",
    "build_platform",
    "build_replay_job",
    "build_validation_pipeline",
    "close_run",
    "describe_failure",
    "execution_id_for",
    "file_sha256",
    "is_transient",
    "load_file",
    "one_line_console_logger",
    "op_scope",
    "plan_file",
    "record_failed_run",
    "replay_frame",
    "replay_pipeline",
    "replay_run",
    "resolve_execution_id",
    "retry_only_transient",
    "retry_policy_for",
    "table_asset_key",
]
