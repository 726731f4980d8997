"""Dagster's "Re-execute from failure": a new run, a new execution id, the steps that
succeeded skipped -- and still a complete audit trail for every run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    DagsterInstance,
    Definitions,
    EnvVar,
    JobDefinition,
    JobExecutionResult,
    ReexecutionOptions,
    execute_job,
    instance_for_test,
    reconstructable,
)
from sqlalchemy.engine import URL

from wdh_orchestration import WarehouseResource, sample_pipeline_job
from wdh_orchestration.domains.sample import sample_csv_path

pytestmark = pytest.mark.integration

URL_VARIABLE = "WDH_ORCHESTRATION_TEST_WAREHOUSE_URL"


def sample_job_on_test_warehouse() -> JobDefinition:
    """The sample job with its warehouse taken from ``$WDH_ORCHESTRATION_TEST_WAREHOUSE_URL``.

    ``execute_job`` needs a reconstructable job (resources bound, importable by name):
    a re-execution loads the outputs of the steps it skips from the parent run's
    storage, which ``execute_in_process`` (in-memory outputs) does not keep.
    """
    defs = Definitions(
        jobs=[sample_pipeline_job],
        resources={"warehouse": WarehouseResource(database_url=EnvVar(URL_VARIABLE), pool_size=2)},
    )
    return defs.resolve_job_def("sample_pipeline_job")


@pytest.fixture
def persistent_instance(
    migrated_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DagsterInstance]:
    """A Dagster instance that keeps run outputs on disk, on this test's database."""
    monkeypatch.setenv(URL_VARIABLE, migrated_url.render_as_string(hide_password=False))
    home = tmp_path / "dagster"
    home.mkdir()
    with instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def execute(instance: DagsterInstance, **kwargs: Any) -> JobExecutionResult:
    with execute_job(reconstructable(sample_job_on_test_warehouse), instance, **kwargs) as result:
        return result


def executed_steps(result: JobExecutionResult) -> list[str]:
    return [
        e.step_key or "" for e in result.all_events if e.event_type == DagsterEventType.STEP_START
    ]


def sql(url: URL, statement: str, **params: Any) -> list[sa.Row[Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def test_reexecution_from_failure_succeeds_and_audits_every_run(
    persistent_instance: DagsterInstance, migrated_url: URL
) -> None:
    run_config = {"ops": {"read_csv_op": {"config": {"path": str(sample_csv_path())}}}}
    sql(migrated_url, "ALTER TABLE sample_data RENAME TO sample_data_away")

    first = execute(persistent_instance, run_config=run_config)
    assert not first.success
    # Re-executed while the table is still away: fails again, and is audited too.
    second = execute(
        persistent_instance,
        reexecution_options=ReexecutionOptions.from_failure(first.run_id, persistent_instance),
    )
    assert not second.success
    assert executed_steps(second) == ["load_to_db_op"]

    sql(migrated_url, "ALTER TABLE sample_data_away RENAME TO sample_data")
    third = execute(
        persistent_instance,
        reexecution_options=ReexecutionOptions.from_failure(second.run_id, persistent_instance),
    )

    assert third.success
    assert executed_steps(third) == ["load_to_db_op"]
    assert sql(migrated_url, "SELECT count(*) FROM sample_data")[0][0] == 17
    rows = {
        row.execution_id.rsplit("_", 1)[-1]: row
        for row in sql(migrated_url, "SELECT * FROM pipeline_executions")
    }
    assert set(rows) == {first.run_id, second.run_id, third.run_id}
    for failed in (first.run_id, second.run_id):
        assert rows[failed].status == "failed"
        assert rows[failed].error_message.startswith(
            "load_to_db_op: cannot load the rows: TableNotFoundError:"
        )
        assert rows[failed].completed_at is not None
    done = rows[third.run_id]
    assert done.status == "success"
    assert done.pipeline_name == "sample_pipeline_job"
    assert done.input_file_path == str(sample_csv_path())  # from the parent's run config
    assert (done.rows_input, done.rows_output, done.rows_failed) == (20, 17, 3)
    metrics = {
        row.metric_name
        for row in sql(
            migrated_url,
            "SELECT metric_name FROM data_quality_metrics WHERE execution_id = :e",
            e=done.execution_id,
        )
    }
    assert metrics == {"rows_inserted", "rows_updated", "load_duration_ms"}
