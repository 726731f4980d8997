"""``sample_pipeline_job`` executed in process against a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult
from sqlalchemy.engine import URL

from wdh_orchestration import WarehouseResource, sample_pipeline_job
from wdh_orchestration.sample import SampleRecord, sample_csv_path

pytestmark = pytest.mark.integration

INVALID_RECORD_IDS = {7, 10, 14}  # not-a-number amount, 2024-02-30, blank customer_name
SAMPLE_ROWS = 20


def run_job(
    warehouse: WarehouseResource, instance: DagsterInstance, path: Path | None = None
) -> ExecuteInProcessResult:
    run_config: dict[str, Any] = {}
    if path is not None:
        run_config = {"ops": {"read_csv_op": {"config": {"path": str(path)}}}}
    return sample_pipeline_job.execute_in_process(
        run_config=run_config,
        resources={"warehouse": warehouse},
        instance=instance,
        raise_on_error=False,
    )


def query(url: URL, sql: str, **params: Any) -> list[sa.Row[Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def test_sample_job_loads_valid_rows_and_audits_the_run(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL
) -> None:
    result = run_job(warehouse, instance)

    assert result.success
    loaded = query(migrated_url, "SELECT record_id, customer_name FROM sample_data ORDER BY 1")
    assert [row.record_id for row in loaded] == [
        i for i in range(1, SAMPLE_ROWS + 1) if i not in INVALID_RECORD_IDS
    ]
    names = {row.record_id: row.customer_name for row in loaded}
    assert names[1] == "张伟"  # non-ASCII text survives the round trip

    validate_meta = result.output_for_node("validate_op")
    assert validate_meta.rows_read == SAMPLE_ROWS
    assert validate_meta.rows_failed == len(INVALID_RECORD_IDS)

    [execution] = query(migrated_url, "SELECT * FROM pipeline_executions")
    assert execution.status == "success"
    assert execution.execution_id.endswith(result.run_id)
    assert execution.pipeline_name == "sample_pipeline_job"
    assert execution.input_file_path == str(sample_csv_path())
    assert (execution.rows_input, execution.rows_output, execution.rows_failed) == (20, 17, 3)
    assert execution.error_message is None
    [validate_output] = [
        e
        for e in result.all_events
        if e.event_type == DagsterEventType.STEP_OUTPUT and e.step_key == "validate_op"
    ]
    metadata = validate_output.event_specific_data.metadata  # type: ignore[union-attr]
    assert metadata["execution_id"].value == execution.execution_id  # UI and audit agree
    metrics = {
        row.metric_name: row.metric_value
        for row in query(
            migrated_url,
            "SELECT metric_name, metric_value FROM data_quality_metrics WHERE execution_id = :e",
            e=execution.execution_id,
        )
    }
    assert metrics["rows_read"] == 20
    assert metrics["rows_valid"] == 17
    assert metrics["rows_failed"] == 3
    assert metrics["rows_inserted"] == 17
    assert metrics["rows_updated"] == 0


def test_op_metadata_reports_counts_and_failed_rows(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    result = run_job(warehouse, instance)
    assert result.success

    def output_metadata(op: str) -> dict[str, Any]:
        [event] = [
            e for e in result.events_for_node(op) if e.event_type == DagsterEventType.STEP_OUTPUT
        ]
        return {k: v.value for k, v in event.step_output_data.metadata.items()}

    read = output_metadata("read_csv_op")
    assert read["rows_read"] == 20
    validate = output_metadata("validate_op")
    assert (validate["rows_read"], validate["rows_valid"], validate["rows_failed"]) == (20, 17, 3)
    preview = validate["failed_rows_preview"]
    # records 7, 10 and 14: input rows 6, 9, 13 (0-based), file lines 8, 11, 15
    for row, line, field in [
        (6, 8, "amount"),
        (9, 11, "transaction_date"),
        (13, 15, "customer_name"),
    ]:
        assert f"| {row} | {line} | ValidateSchemaStep |" in preview
        assert f"Row: {row} \\| Field: {field}" in preview
    load = output_metadata("load_to_db_op")
    assert (load["rows_inserted"], load["rows_updated"]) == (17, 0)
    assert load["table"] == "public.sample_data"
    assert load["duration_ms"] >= 0


def test_second_run_updates_instead_of_duplicating(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL
) -> None:
    first = run_job(warehouse, instance)
    second = run_job(warehouse, instance)

    assert first.success
    assert second.success
    assert query(migrated_url, "SELECT count(*) FROM sample_data")[0][0] == 17
    assert query(migrated_url, "SELECT count(DISTINCT record_id) FROM sample_data")[0][0] == 17
    load = second.output_for_node("load_to_db_op")
    assert (load.rows_inserted, load.rows_updated) == (0, 17)
    runs = query(
        migrated_url, "SELECT execution_id, status FROM pipeline_executions ORDER BY started_at"
    )
    assert [r.status for r in runs] == ["success", "success"]
    assert runs[0].execution_id != runs[1].execution_id


def test_structlog_events_reach_the_run_event_log(
    warehouse: WarehouseResource, instance: DagsterInstance, log_stream: Any
) -> None:
    result = run_job(warehouse, instance)
    assert result.success

    messages = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event is None
    ]
    text = "\n".join(messages)
    assert "sample.read.completed" in text  # wdh_orchestration
    assert "pipeline.completed" in text  # wdh_domain
    assert "database.load.completed" in text  # wdh_io
    assert result.run_id in text  # bound to every event of the run


def test_console_logging_still_works_while_dagster_captures(
    warehouse: WarehouseResource, instance: DagsterInstance, log_stream: Any
) -> None:
    # Dagster's capture handler rewrites record.msg before the console handler sees it.
    result = run_job(warehouse, instance)
    assert result.success
    assert "sample.load.completed" in log_stream.getvalue()


def test_sample_record_accepts_exactly_the_valid_sample_rows() -> None:
    import pandas as pd

    from wdh_domain.pipelines import Pipeline, PipelineConfig, ValidateSchemaStep

    frame = pd.read_csv(sample_csv_path(), dtype=str, keep_default_na=True)
    # Blank cells are missing for the validation steps (not for the bare model).
    config = PipelineConfig(stop_on_error=False, error_threshold=1.0)
    result = Pipeline("sample", config).add_step(ValidateSchemaStep(SampleRecord)).run(frame)
    invalid = {int(value) for value in result.failed_rows["record_id"]}
    assert invalid == INVALID_RECORD_IDS


def test_metrics_include_every_step_duration_and_the_load_duration(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL
) -> None:
    result = run_job(warehouse, instance)
    assert result.success

    durations = {
        row.metric_name: row.metric_value
        for row in query(
            migrated_url,
            "SELECT metric_name, metric_value FROM data_quality_metrics "
            "WHERE metric_name LIKE '%duration_ms%'",
        )
    }
    assert set(durations) == {
        "validation_duration_ms",
        "step_duration_ms.CheckRequiredColumnsStep",
        "step_duration_ms.ValidateSchemaStep",
        "load_duration_ms",
    }
    assert all(value is not None and value >= 0 for value in durations.values())
    steps = (
        durations["step_duration_ms.CheckRequiredColumnsStep"]
        + durations["step_duration_ms.ValidateSchemaStep"]
    )
    assert steps <= durations["validation_duration_ms"]  # the steps are part of the pipeline
    load_meta = result.output_for_node("load_to_db_op")
    assert float(durations["load_duration_ms"]) == pytest.approx(load_meta.duration_ms, abs=1e-3)


def test_a_second_run_advances_loaded_at_of_the_updated_rows(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL
) -> None:
    assert run_job(warehouse, instance).success
    [first_times] = query(
        migrated_url, "SELECT min(loaded_at) AS lo, max(loaded_at) AS hi FROM sample_data"
    )
    first_min, first_max = first_times.lo, first_times.hi
    assert first_min == first_max  # one load, one time

    second = run_job(warehouse, instance)
    assert second.success
    assert second.output_for_node("load_to_db_op").rows_updated == 17
    [second_times] = query(
        migrated_url, "SELECT min(loaded_at) AS lo, max(loaded_at) AS hi FROM sample_data"
    )
    second_min, second_max = second_times.lo, second_times.hi
    assert second_min == second_max
    assert second_min > first_max  # updated rows carry the time of the load that updated them
