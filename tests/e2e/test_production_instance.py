"""The production instance configuration (``apps/orchestrator/deploy/dagster.yaml``) on a
real PostgreSQL: Dagster's runs, event logs and schedule state in a database of their own
on the warehouse server, and the queued run coordinator's per-domain limit."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRunStatus, Definitions
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._utils.tags import TagConcurrencyLimitsCounter
from sqlalchemy.engine import URL

from wdh_orchestration import WarehouseResource, build_platform
from wdh_orchestration.domains.sample import SAMPLE

pytestmark = pytest.mark.integration


@pytest.fixture
def dagster_database(postgresql: psycopg.Connection[Any]) -> Iterator[dict[str, str]]:
    """A database of its own for Dagster on the test server, as ``DAGSTER_PG_*`` variables."""
    info = postgresql.info
    name = f"wdh_dagster_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(
        host=info.host, port=info.port, user=info.user, password=info.password,
        dbname="postgres", autocommit=True,
    )  # fmt: skip
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "DAGSTER_PG_USER": info.user,
            "DAGSTER_PG_PASSWORD": info.password or "",
            "DAGSTER_PG_HOST": info.host,
            "DAGSTER_PG_DB": name,
            "DAGSTER_PG_PORT": str(info.port),
        }
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def production_instance(
    dagster_database: dict[str, str],
    repo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(repo_root / "apps/orchestrator/deploy/dagster.yaml", home / "dagster.yaml")
    for name, value in dagster_database.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_DIR", str(tmp_path / "compute_logs"))
    # Dagster sets the level of the managed loggers (python_logs) on the process's
    # loggers; put them back so later tests see the logging they configure.
    managed = [
        logging.getLogger(n)
        for n in ("wdh_domain", "wdh_io", "wdh_orchestration", "wdh_orchestrator")
    ]
    levels = [logger.level for logger in managed]
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance
    finally:
        for logger, level in zip(managed, levels, strict=True):
            logger.setLevel(level)


def _dagster_sql(env: dict[str, str], sql: str) -> Any:
    with psycopg.connect(
        host=env["DAGSTER_PG_HOST"], port=int(env["DAGSTER_PG_PORT"]),
        user=env["DAGSTER_PG_USER"], password=env["DAGSTER_PG_PASSWORD"] or None,
        dbname=env["DAGSTER_PG_DB"],
    ) as conn:  # fmt: skip
        row = conn.execute(sql).fetchone()
        return None if row is None else row[0]


def test_runs_events_and_schedules_are_stored_in_postgres(
    production_instance: DagsterInstance,
    dagster_database: dict[str, str],
    migrated_url: URL,
    tmp_path: Path,
) -> None:
    warehouse = WarehouseResource(database_url=migrated_url.render_as_string(hide_password=False))
    platform = build_platform([SAMPLE], landing_dir=tmp_path / "landing")
    defs = Definitions(**platform.definitions_kwargs(), resources={"warehouse": warehouse})

    result = defs.resolve_job_def("sample_pipeline_job").execute_in_process(
        instance=production_instance, raise_on_error=False
    )

    assert result.success
    run_id = result.run_id
    assert (
        _dagster_sql(dagster_database, f"SELECT count(*) FROM runs WHERE run_id = '{run_id}'") == 1
    )
    assert (
        _dagster_sql(dagster_database, f"SELECT count(*) FROM event_logs WHERE run_id = '{run_id}'")
        > 5
    )
    # Schedule and sensor state (instigators, ticks) live there too.
    assert type(production_instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert (
        _dagster_sql(
            dagster_database,
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name IN ('instigators', 'job_ticks')",
        )
        == 2
    )


def test_queued_runs_respect_the_per_domain_limit(production_instance: DagsterInstance) -> None:
    coordinator = production_instance.run_coordinator
    assert isinstance(coordinator, QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    assert queue.max_concurrent_runs == 10
    platform = build_platform([SAMPLE], landing_dir=Path("unused"))
    defs = Definitions(
        **platform.definitions_kwargs(), resources={"warehouse": WarehouseResource()}
    )
    job = defs.resolve_job_def("sample_pipeline_job")

    def run(status: DagsterRunStatus, domain: str) -> Any:
        return production_instance.create_run_for_job(job, status=status, tags={"domain": domain})

    started = [run(DagsterRunStatus.STARTED, "sample") for _ in range(2)]
    # Candidates the daemon would dequeue (a QUEUED run needs a code-location origin; the
    # daemon judges a candidate by its tags alone).
    waiting_sample = run(DagsterRunStatus.NOT_STARTED, "sample")
    waiting_other = run(DagsterRunStatus.NOT_STARTED, "annuity")

    # What the daemon counts before it dequeues: the runs in progress, from PostgreSQL.
    in_progress = production_instance.get_runs()
    in_progress = [r for r in in_progress if r.status == DagsterRunStatus.STARTED]
    assert {r.run_id for r in in_progress} == {r.run_id for r in started}
    counter = TagConcurrencyLimitsCounter(list(queue.tag_concurrency_limits), in_progress)
    assert counter.is_blocked(waiting_sample)  # a third sample run waits
    assert not counter.is_blocked(waiting_other)  # another domain does not
    counter.update_counters_with_launched_item(waiting_other)
    assert not counter.is_blocked(run(DagsterRunStatus.NOT_STARTED, "annuity"))  # 2 per domain
