"""Fixtures of the wdh-orchestration tests: a migrated database, a Dagster instance that
captures the platform's loggers like ``apps/orchestrator/dagster.yaml`` does, and the
platform's definitions built for the sample domain on this test's database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult, RetryPolicy
from sqlalchemy.engine import URL

from wdh_logging import configure_logging, reset_logging
from wdh_orchestration import Domain, WarehouseResource, build_platform
from wdh_orchestration.domains.sample import SAMPLE

MANAGED_LOGGERS = ["wdh_domain", "wdh_io", "wdh_orchestration"]
HEADER = "record_id,customer_name,email,amount,transaction_date,region\n"

RunJob = Callable[..., ExecuteInProcessResult]


@pytest.fixture
def migrated_url(migrated_database_url: URL) -> URL:
    """This test's own database, cloned from the session's template migrated to head
    with the packaged migrations (the root conftest's ``migrated_database_url``)."""
    return migrated_database_url


@pytest.fixture
def warehouse(migrated_url: URL) -> WarehouseResource:
    """The warehouse resource on this test's database."""
    return WarehouseResource(
        database_url=migrated_url.render_as_string(hide_password=False), pool_size=2
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """An in-memory Dagster instance whose run event logs capture the wdh_* loggers."""
    settings = {
        "python_logs": {"managed_python_loggers": MANAGED_LOGGERS, "python_log_level": "INFO"}
    }
    with DagsterInstance.ephemeral(settings=settings) as inst:
        yield inst


@pytest.fixture
def log_stream() -> Iterator[StringIO]:
    """Logging configured as an entry point does it, into a buffer the test can read."""
    stream = StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    yield stream
    reset_logging()


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    """This test's landing directory."""
    path = tmp_path / "landing"
    path.mkdir()
    return path


def platform_definitions(
    warehouse: WarehouseResource, landing_dir: Path, *domains: Domain
) -> Definitions:
    """The platform's definitions for *domains* (default: the sample), on *warehouse*,
    retrying at once instead of after 1, 2 and 3 s."""
    platform = build_platform(
        domains or (SAMPLE,),
        landing_dir=landing_dir,
        retry_policy=RetryPolicy(max_retries=2, delay=0),
    )
    return Definitions(**platform.definitions_kwargs(), resources={"warehouse": warehouse})


@pytest.fixture
def run_job(warehouse: WarehouseResource, instance: DagsterInstance, landing_dir: Path) -> RunJob:
    """Run a domain's job in process: ``run_job(path=None, partition=None, job=...)``;
    ``config`` adds to the table asset's op config (e.g. ``{"dry_run": True}``)."""

    def run(
        path: Path | None = None,
        *,
        partition: str | None = None,
        job: str = "sample_pipeline_job",
        resource: WarehouseResource | None = None,
        domains: tuple[Domain, ...] = (),
        config: dict[str, Any] | None = None,
    ) -> ExecuteInProcessResult:
        defs = platform_definitions(resource or warehouse, landing_dir, *domains)
        resolved = defs.resolve_job_def(job)
        run_config: dict[str, Any] = {}
        op_config = {**({"path": str(path)} if path is not None else {}), **(config or {})}
        if op_config:
            [node] = list(resolved.nodes_in_topological_order)
            run_config = {"ops": {node.name: {"config": op_config}}}
        if partition is not None and resolved.partitions_def is not None:
            instance.add_dynamic_partitions(resolved.partitions_def.name, [partition])  # type: ignore[attr-defined]
        return resolved.execute_in_process(
            run_config=run_config,
            instance=instance,
            partition_key=partition,
            raise_on_error=False,
        )

    return run


class Db:
    """Read-only helpers on this test's database."""

    def __init__(self, url: URL) -> None:
        self.url = url

    def query(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """The rows of *sql*."""
        engine = sa.create_engine(self.url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    def scalar(self, sql: str, **params: Any) -> Any:
        """The one value of *sql*."""
        [row] = self.query(sql, **params)
        return row[0]

    def metrics(self, execution_id: str) -> dict[str, Any]:
        """The ``data_quality_metrics`` of one run, by name."""
        rows = self.query(
            "SELECT metric_name, metric_value FROM data_quality_metrics WHERE execution_id = :e",
            e=execution_id,
        )
        return {row.metric_name: row.metric_value for row in rows}

    def audit_row(self) -> Any:
        """The one ``pipeline_executions`` row."""
        [row] = self.query("SELECT * FROM pipeline_executions")
        return row


@pytest.fixture
def db(migrated_url: URL) -> Db:
    """Read-only helpers on this test's migrated database."""
    return Db(migrated_url)
