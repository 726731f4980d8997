"""``build_domain``: a domain declaration turned into Dagster definitions.

One materialization of a domain's table asset does the whole domain -- stream the file,
validate it chunk by chunk, load the valid rows and keep the rejected ones, run the
checks, close the audit row, all in one transaction (``_stream.load_file``) -- in one
step of one process. With ``dry_run`` in its config it only plans the load
(``_stream.plan_file``), writes nothing and reports the plan as an asset observation.

Nothing is handed from step to step, so no DataFrame (personal data
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
    AssetObservation,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    RetryPolicy,
    SensorDefinition,
    define_asset_job,
    in_process_executor,
    multi_asset,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # not exported by dagster; the type of define_asset_job's result
)
from pydantic import Field
from structlog.contextvars import bound_contextvars

from wdh_domain.pipelines import RetryConfig
from wdh_orchestration._audit import execution_id_for, record_failed_run
from wdh_orchestration._checks import check_result, check_specs
from wdh_orchestration._domain import Domain
from wdh_orchestration._failures import is_last_attempt, retry_only_transient
from wdh_orchestration._landing import landing_sensor
from wdh_orchestration._metadata import dry_run_metadata, streamed_metadata
from wdh_orchestration._retry import retry_policy_for
from wdh_orchestration._scope import op_scope
from wdh_orchestration._stream import StreamedRunError, load_file, plan_file
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
    dry_run: bool = Field(
        default=False,
        description=(
            "report the rows the load would insert, update, leave unchanged and reject, "
            "with previews, and write nothing"
        ),
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

    @multi_asset(
        name=key.to_python_identifier(),
        specs=[
            AssetSpec(
                key=key,
                deps=[source],
                description=domain.description or f"{domain.schema}.{domain.table}",
                group_name=domain.name,
                kinds={"postgres"},
                partitions_def=partitions,
                metadata={
                    "table": f"{domain.schema}.{domain.table}",
                    "keys": ", ".join(domain.keys),
                },
                # A dry run yields no materialization...
                skippable=True,
            )
        ],
        partitions_def=partitions,
        check_specs=check_specs(domain, key),
        # ...and no check results: Dagster makes them optional for a subsettable asset.
        can_subset=True,
    )
    def _table(
        context: AssetExecutionContext, config: FileConfig, warehouse: WarehouseResource
    ) -> Iterator[MaterializeResult[None] | AssetCheckResult]:
        if key not in context.selected_asset_keys:
            raise Failure(
                description=(
                    f"the checks of {key.to_user_string()} run with its load: materialize "
                    "the asset (with its checks), not the checks alone"
                ),
                allow_retries=False,
            )
        path = _file_to_read(domain, context, config, landing)
        encoding = config.encoding or domain.encoding
        if config.dry_run:
            _dry_run(context, domain, warehouse, key, path=path, encoding=encoding)
            return
        started = time.perf_counter()
        last = is_last_attempt(context.op_execution_context)
        with op_scope(
            context.op_execution_context,
            warehouse,
            failure="cannot open the warehouse",
            input_file_path=path,
        ) as execution_id:
            try:
                loaded = load_file(
                    warehouse.loader(),
                    warehouse.audit(),
                    domain,
                    path,
                    execution_id=execution_id,
                    encoding=encoding,
                    last_attempt=last,
                    step=context.op_execution_context.op.name,
                )
            except StreamedRunError as failed:
                for check, outcome in failed.outcomes:
                    yield check_result(check, outcome)
                raise Failure(
                    description=str(failed),
                    metadata={"rejected_rows_kept": failed.rejected_kept},
                    allow_retries=False,
                ) from None
        _log.info(
            "domain.materialized",
            domain=domain.name,
            inserted=loaded.result.rows_inserted,
            updated=loaded.result.rows_updated,
            unchanged=loaded.rows_unchanged,
            rejected=loaded.rows_failed,
        )
        yield MaterializeResult(
            metadata=streamed_metadata(
                loaded,
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


def _dry_run(
    context: AssetExecutionContext,
    domain: Domain,
    warehouse: WarehouseResource,
    key: AssetKey,
    *,
    path: str,
    encoding: str | None,
) -> None:
    """Plan the load of *path* and report it as an observation of the table asset.

    Nothing is written: no table row, no rejected row, no metric, no audit row (a dry
    run is not a run of the pipeline; a failed one is recorded as failed by the job's
    failure hook, like any failed step). The table is not materialized.
    """
    op_context = context.op_execution_context
    execution_id = execution_id_for(op_context)
    with (
        bound_contextvars(execution_id=execution_id, dagster_run_id=op_context.run_id),
        retry_only_transient("dry run failed", last_attempt=is_last_attempt(op_context)),
    ):
        try:
            dry = plan_file(
                warehouse.loader(), domain, path, execution_id=execution_id, encoding=encoding
            )
        except StreamedRunError as failed:
            raise Failure(description=f"dry run: {failed}", allow_retries=False) from None
    plan = dry.plan
    _log.info(
        "domain.dry_run",
        domain=domain.name,
        insert=plan.rows_insert,
        update=plan.rows_update,
        unchanged=plan.rows_unchanged,
        rejected=dry.rows_failed,
    )
    context.log_event(
        AssetObservation(
            asset_key=key,
            partition=context.partition_key if context.has_partition_key else None,
            metadata=dry_run_metadata(dry, path=path, table=f"{domain.schema}.{domain.table}"),
        )
    )
