"""The landing sensor (one run per new file, by content) and the run-status sensors that
close the audit rows of failed and cancelled runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
    DagsterRun,
    Definitions,
    RunStatusSensorDefinition,
    SensorResult,
    build_run_status_sensor_context,
    build_sensor_context,
)

from wdh_orchestration import WarehouseResource, build_platform, file_sha256
from wdh_orchestration._audit import execution_id_of_run
from wdh_orchestration.domains.sample import SAMPLE

pytestmark = pytest.mark.integration

HEADER = "record_id,customer_name,email,amount,transaction_date,region\n"


def landing(instance: DagsterInstance, landing_dir: Path, cursor: str | None) -> SensorResult:
    platform = build_platform([SAMPLE], landing_dir=landing_dir)
    sensor = platform.domains["sample"].sensor
    result = sensor(build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, SensorResult)
    return result


def test_one_run_request_per_new_file_keyed_by_content(
    instance: DagsterInstance, landing_dir: Path
) -> None:
    january = landing_dir / "sample_2024-01.csv"
    january.write_text(HEADER + "1,A,,1.00,2024-01-01,\n", encoding="utf-8")
    (landing_dir / "notes.txt").write_text("not a sample file", encoding="utf-8")

    first = landing(instance, landing_dir, None)

    [request] = first.run_requests or []
    digest = file_sha256(january)
    assert request.run_key == f"sample:{digest}"
    assert request.partition_key == "sample_2024-01.csv"
    assert request.tags["wdh/file_sha256"] == digest
    [add] = first.dynamic_partitions_requests or []
    assert list(add.partition_keys) == ["sample_2024-01.csv"]

    # Nothing new: no request. The same content under a second name: the same run key,
    # which Dagster launches only once.
    assert landing(instance, landing_dir, first.cursor).run_requests == []
    copy = landing_dir / "sample_2024-01-again.csv"
    copy.write_bytes(january.read_bytes())
    again = landing(instance, landing_dir, first.cursor)
    [repeat] = again.run_requests or []
    assert repeat.run_key == request.run_key

    # New content in a known file: a new run key for the same partition.
    january.write_text(HEADER + "1,A,,9.99,2024-01-01,\n", encoding="utf-8")
    os.utime(january, ns=(1, 1))  # a different modification time, whatever the clock
    changed = landing(instance, landing_dir, again.cursor)
    [update] = changed.run_requests or []
    assert update.partition_key == "sample_2024-01.csv"
    assert update.run_key != request.run_key


def test_a_missing_landing_directory_is_nothing_to_do(
    instance: DagsterInstance, tmp_path: Path
) -> None:
    result = landing(instance, tmp_path / "absent", None)
    assert result.run_requests == []


def _run_status_sensor(warehouse: WarehouseResource, name: str) -> RunStatusSensorDefinition:
    platform = build_platform([SAMPLE], landing_dir=Path("unused"))
    [sensor] = [s for s in platform.sensors if s.name == name]
    assert isinstance(sensor, RunStatusSensorDefinition)
    return sensor


def _started_run(instance: DagsterInstance, warehouse: WarehouseResource) -> DagsterRun:
    """A run of the sample job whose audit row is open, as after its asset started."""
    platform = build_platform([SAMPLE], landing_dir=Path("unused"))
    defs = Definitions(**platform.definitions_kwargs(), resources={"warehouse": warehouse})
    run = instance.create_run_for_job(defs.resolve_job_def("sample_pipeline_job"))
    warehouse.audit().ensure_run(
        execution_id=execution_id_of_run(instance, run.run_id), pipeline_name=run.job_name
    )
    return run


def test_a_cancelled_run_gets_its_audit_row_closed(
    instance: DagsterInstance, warehouse: WarehouseResource, db: Any
) -> None:
    run = _started_run(instance, warehouse)
    assert db.audit_row().status == "running"

    event = instance.report_run_canceled(run)
    sensor = _run_status_sensor(warehouse, "audit_cancelled_runs")
    with build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),  # type: ignore[arg-type]
        resources={"warehouse": warehouse},
    ) as context:
        sensor(context)

    row = db.audit_row()
    assert row.status == "failed"
    assert row.execution_id.endswith(run.run_id)
    assert row.error_message == "run cancelled in Dagster before it finished"
    assert row.completed_at is not None


def test_a_failed_run_is_closed_once_whoever_comes_first(
    instance: DagsterInstance, warehouse: WarehouseResource, db: Any
) -> None:
    run = _started_run(instance, warehouse)
    event = instance.report_run_failed(run, "the run worker died")
    sensor = _run_status_sensor(warehouse, "audit_failed_runs")
    with build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),  # type: ignore[arg-type]
        resources={"warehouse": warehouse},
    ) as context:
        sensor(context.for_run_failure())
        first = db.audit_row()
        sensor(context.for_run_failure())  # a second evaluation (or the hook) changes nothing
        second = db.audit_row()

    assert first.status == "failed"
    assert first.error_message.startswith("run failed: ")
    assert "the run worker died" in first.error_message
    assert (second.completed_at, second.error_message) == (first.completed_at, first.error_message)
