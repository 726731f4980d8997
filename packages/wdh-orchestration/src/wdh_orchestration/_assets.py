"""``build_domain``: a domain declaration turned into Dagster definitions.

One materialization of a domain's table asset does the whole domain -- read the file,
validate it, load the valid rows, run the checks, close the audit row -- in one step of
one process. Nothing is handed from step to step, so no DataFrame (personal data
included) is ever pickled into Dagster's storage: the asset returns a
``MaterializeResult`` (metadata and check results only), which no IO manager stores.
"""

# No ``from __future__ import annotations`` here: Dagster reads the asset function's
# parameter annotations at decoration time to find its config and resources.
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    RetryPolicy,
    SensorDefinition,
    asset,
    define_asset_job,
    in_process_executor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # not exported by dagster; the type of define_asset_job's result
)
from pydantic import Field

from wdh_domain.pipelines import PipelineResult, RetryConfig
from wdh_io.readers import read_csv
from wdh_orchestration._audit import record_failed_run
from wdh_orchestration._checks import (
    FAILURE_RATE_CHECK,
    check_metrics,
    check_result,
    check_specs,
    domain_checks,
    failure_rate_outcome,
)
from wdh_orchestration._domain import Domain
from wdh_orchestration._failures import is_last_attempt, retry_only_transient
from wdh_orchestration._landing import landing_sensor
from wdh_orchestration._load import BlockingCheckFailedError, load_check_and_complete
from wdh_orchestration._metadata import materialization_metadata
from wdh_orchestration._retry import retry_policy_for
from wdh_orchestration._scope import op_scope
from wdh_orchestration._validation import (
    ValidatedRows,
    build_validation_pipeline,
    quality_metrics,
)
from wdh_orchestration.resources import WarehouseResource

__all__ = ["DomainDefinitions", "FileConfig", "build_domain", "table_asset_key"]

_log = structlog.get_logger(__name__)


class FileConfig(Config):
    """Which file a run of a domain's table asset reads, when it has no partition."""

    path: str | None = Field(
        default=None,
        description=(
            "file to read; unset: the partition's file in the landing directory, else the "
            "domain's default file"
        ),
    )
    encoding: str | None = Field(
        default=None, description="text encoding, e.g. 'gbk'; detected when unset"
    )


@dataclass(frozen=True, slots=True)
class DomainDefinitions:
    """What the platform builds from one domain declaration."""

    domain: Domain
    source: AssetSpec
    table: AssetsDefinition
    job: UnresolvedAssetJobDefinition
    sensor: SensorDefinition
    partitions: DynamicPartitionsDefinition | None


def table_asset_key(domain: Domain) -> AssetKey:
    """``<table>`` for a table in ``public``, else ``<schema>/<table>``."""
    return AssetKey(domain.table if domain.schema == "public" else [domain.schema, domain.table])


def build_domain(
    domain: Domain, *, landing_dir: Path, retry_policy: RetryPolicy | None = None
) -> DomainDefinitions:
    """The source asset, table asset (with its checks), job and landing sensor of *domain*.

    *landing_dir* is where the domain's files arrive; with ``per_file`` partitioning a
    partition's file is ``landing_dir / <partition key>``. *retry_policy* is the job's op
    retry policy (default: the platform's ``RetryConfig()``: 3 retries after 1, 2, 3 s).
    """
    landing = landing_dir.expanduser().resolve()
    partitions = (
        DynamicPartitionsDefinition(name=f"{domain.name}_files")
        if domain.partitioning == "per_file"
        else None
    )
    source = AssetSpec(
        key=AssetKey(f"{domain.name}_files"),
        description=(
            f"{domain.name} files arriving in the landing directory ({domain.file_pattern})"
        ),
        group_name=domain.name,
        metadata={"landing_dir": str(landing), "file_pattern": domain.file_pattern},
        kinds={"csv"},
        partitions_def=partitions,
    )
    key = table_asset_key(domain)
    pipeline = build_validation_pipeline(domain)

    @asset(
        key=key,
        deps=[source],
        description=domain.description or f"{domain.schema}.{domain.table}",
        group_name=domain.name,
        kinds={"postgres"},
        partitions_def=partitions,
        check_specs=check_specs(domain, key),
        metadata={"table": f"{domain.schema}.{domain.table}", "keys": ", ".join(domain.keys)},
    )
    def _table(
        context: AssetExecutionContext, config: FileConfig, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
        path = _file_to_read(domain, context, config, landing)
        started = time.perf_counter()
        last = is_last_attempt(context.op_execution_context)
        with op_scope(
            context.op_execution_context,
            warehouse,
            failure="cannot open the warehouse",
            input_file_path=path,
        ) as execution_id:
            with retry_only_transient("cannot read the input file", last_attempt=last):
                raw = read_csv(path, encoding=config.encoding or domain.encoding, dtype=str)
            with retry_only_transient("validation failed", last_attempt=last):
                result = pipeline.run(raw, execution_id=execution_id)
                warehouse.audit().record_metrics(
                    execution_id=execution_id,
                    domain=domain.name,
                    metrics=quality_metrics(result),
                )
            if not result.success:
                yield from _refuse_invalid_file(domain, warehouse, execution_id, len(raw), result)
            rows = ValidatedRows(
                result.output_data, rows_read=len(raw), rows_failed=result.rows_failed
            )
            blocked: BlockingCheckFailedError | None = None
            with retry_only_transient("cannot load the rows", last_attempt=last):
                try:
                    loaded = load_check_and_complete(
                        warehouse.loader(),
                        warehouse.audit(),
                        domain,
                        rows,
                        execution_id=execution_id,
                        path=path,
                    )
                except BlockingCheckFailedError as exc:
                    blocked = exc
            if blocked is not None:
                yield from _report_blocked_load(domain, warehouse, execution_id, blocked)
        _log.info(
            "domain.materialized",
            domain=domain.name,
            inserted=loaded.result.rows_inserted,
            updated=loaded.result.rows_updated,
        )
        yield MaterializeResult(
            metadata=materialization_metadata(
                result,
                loaded.result,
                path=path,
                execution_id=execution_id,
                duration_s=time.perf_counter() - started,
            ),
            check_results=[check_result(check, outcome) for check, outcome in loaded.outcomes],
        )

    job = define_asset_job(
        domain.job_name,
        selection=AssetSelection.assets(key),
        description=(
            f"{domain.name}: file -> validate ({domain.model.__name__}) -> "
            f"{domain.schema}.{domain.table}"
        ),
        # One process for the whole run: one engine and pool, no process start per step.
        executor_def=in_process_executor,
        # The platform's default RetryConfig: 4 attempts, waits 1 s, 2 s, 3 s in Dagster.
        op_retry_policy=retry_policy or retry_policy_for(RetryConfig()),
        hooks={record_failed_run},
        # The queued run coordinator limits concurrent runs per value of this tag.
        tags={"domain": domain.name},
    )
    sensor = landing_sensor(domain, job=job, partitions=partitions, landing_dir=landing)
    return DomainDefinitions(
        domain=domain, source=source, table=_table, job=job, sensor=sensor, partitions=partitions
    )


def _file_to_read(
    domain: Domain, context: AssetExecutionContext, config: FileConfig, landing: Path
) -> str:
    if config.path:
        return config.path
    if context.has_partition_key:
        return str(landing / context.partition_key)
    if domain.default_file is not None:
        return str(domain.default_file)
    raise Failure(
        description=(
            f"no file to read: launch a partition of {domain.name} (a file in {landing}) or "
            f"set ops.{context.op_execution_context.op.name}.config.path in the run config"
        ),
        allow_retries=False,
    )


def _refuse_invalid_file(
    domain: Domain,
    warehouse: WarehouseResource,
    execution_id: str,
    rows_read: int,
    result: PipelineResult,
) -> Iterator[AssetCheckResult]:
    """Report a file the validation pipeline stopped on, then fail; nothing is loaded."""
    outcome = failure_rate_outcome(domain, rows_read, result.rows_failed)
    if not outcome.passed:
        [check] = [c for c in domain_checks(domain) if c.name == FAILURE_RATE_CHECK]
        with retry_only_transient("validation failed"):
            warehouse.audit().record_metrics(
                execution_id=execution_id,
                domain=domain.name,
                metrics=check_metrics([(check, outcome)]),
            )
        yield check_result(check, outcome)
    with retry_only_transient("validation failed"):
        result.raise_for_status()
    raise Failure(description="validation failed", allow_retries=False)  # not reached


def _report_blocked_load(
    domain: Domain,
    warehouse: WarehouseResource,
    execution_id: str,
    blocked: BlockingCheckFailedError,
) -> Iterator[AssetCheckResult]:
    """Record and report the checks of a rolled-back load, then fail."""
    with retry_only_transient("cannot record the checks"):
        warehouse.audit().record_metrics(
            execution_id=execution_id, domain=domain.name, metrics=check_metrics(blocked.outcomes)
        )
    for check, outcome in blocked.outcomes:
        yield check_result(check, outcome)
    raise Failure(description=f"cannot load the rows: {blocked}", allow_retries=False)
