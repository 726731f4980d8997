"""The sample domain's table asset, materialized in process against a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, ExecuteInProcessResult

from wdh_orchestration.domains.sample import SampleRecord, sample_csv_path

pytestmark = pytest.mark.integration

INVALID_RECORD_IDS = {7, 10, 14}  # not-a-number amount, 2024-02-30, blank customer_name
SAMPLE_ROWS = 20
CHECKS = {"failure_rate_within_threshold", "upsert_keys_unique", "non_empty_load"}


def materialization(result: ExecuteInProcessResult) -> dict[str, Any]:
    [event] = result.get_asset_materialization_events()
    assert event.asset_key == AssetKey("sample_data")
    return {k: v.value for k, v in event.materialization.metadata.items()}


def check_evaluations(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }


def test_sample_job_loads_valid_rows_and_audits_the_run(run_job: Any, db: Any) -> None:
    result = run_job()

    assert result.success
    loaded = db.query("SELECT record_id, customer_name FROM sample_data ORDER BY 1")
    assert [row.record_id for row in loaded] == [
        i for i in range(1, SAMPLE_ROWS + 1) if i not in INVALID_RECORD_IDS
    ]
    assert {row.record_id: row.customer_name for row in loaded}[1] == "张伟"

    execution = db.audit_row()
    assert execution.status == "success"
    assert execution.execution_id.endswith(result.run_id)
    assert execution.pipeline_name == "sample_pipeline_job"
    assert execution.input_file_path == str(sample_csv_path())
    assert (execution.rows_input, execution.rows_output, execution.rows_failed) == (20, 17, 3)
    assert execution.error_message is None
    assert materialization(result)["execution_id"] == execution.execution_id  # UI = audit
    metrics = db.metrics(execution.execution_id)
    assert (metrics["rows_read"], metrics["rows_valid"], metrics["rows_failed"]) == (20, 17, 3)
    assert (metrics["rows_inserted"], metrics["rows_updated"]) == (17, 0)


def test_materialization_metadata_reports_counts_failures_and_the_load(run_job: Any) -> None:
    meta = materialization(run_job())

    assert (meta["rows_read"], meta["rows_valid"], meta["rows_failed"]) == (20, 17, 3)
    assert (meta["rows_inserted"], meta["rows_updated"]) == (17, 0)
    assert meta["rejected_rows"] == 3  # one error each, stored in rejected_rows
    assert meta["load_method"] == "copy"
    assert meta["load_duration_ms"] >= 0
    assert meta["duration_s"] >= 0
    assert meta["table"] == "public.sample_data"
    preview = meta["failed_rows_preview"]
    # records 7, 10 and 14: input rows 6, 9, 13 (0-based), file lines 8, 11, 15
    for row, line, field in [
        (6, 8, "amount"),
        (9, 11, "transaction_date"),
        (13, 15, "customer_name"),
    ]:
        assert f"| {row} | {line} | {field}: " in preview


def test_every_check_passes_and_is_stored_with_the_run(run_job: Any, db: Any) -> None:
    result = run_job()

    assert check_evaluations(result) == dict.fromkeys(CHECKS, True)
    metrics = db.metrics(db.audit_row().execution_id)
    for check in CHECKS:
        assert metrics[f"check.{check}.passed"] == 1
    assert float(metrics["check.failure_rate_within_threshold.value"]) == pytest.approx(0.15)
    assert metrics["check.upsert_keys_unique.value"] == 0
    assert metrics["check.non_empty_load.value"] == 17


def test_second_run_updates_instead_of_duplicating(run_job: Any, db: Any) -> None:
    first, second = run_job(), run_job()

    assert first.success
    assert second.success
    assert db.scalar("SELECT count(*) FROM sample_data") == 17
    meta = materialization(second)
    # the same file again: every row is up to date, none is written
    assert (meta["rows_inserted"], meta["rows_updated"], meta["rows_unchanged"]) == (0, 0, 17)
    runs = db.query("SELECT execution_id, status FROM pipeline_executions ORDER BY started_at")
    assert [r.status for r in runs] == ["success", "success"]
    assert runs[0].execution_id != runs[1].execution_id


def test_structlog_events_reach_the_run_event_log(
    run_job: Any, instance: DagsterInstance, log_stream: Any
) -> None:
    result = run_job()
    assert result.success

    text = "\n".join(
        entry.user_message for entry in instance.all_logs(result.run_id) if not entry.dagster_event
    )
    assert "domain.materialized" in text  # wdh_orchestration
    assert "pipeline.completed" in text  # wdh_domain
    assert "database.load.completed" in text  # wdh_io
    assert result.run_id in text  # bound to every event of the run
    assert "domain.materialized" in log_stream.getvalue()  # and on the console


def test_no_dataframe_is_stored_in_dagster_storage(
    warehouse: Any, landing_dir: Path, tmp_path: Path
) -> None:
    from dagster import Definitions

    from wdh_orchestration import build_platform
    from wdh_orchestration.domains.sample import SAMPLE

    home = tmp_path / "dagster_home"
    home.mkdir()
    platform = build_platform([SAMPLE], landing_dir=landing_dir)
    defs = Definitions(**platform.definitions_kwargs(), resources={"warehouse": warehouse})
    with DagsterInstance.local_temp(tempdir=str(home)) as persistent:
        result = defs.resolve_job_def("sample_pipeline_job").execute_in_process(
            instance=persistent, raise_on_error=False
        )
    assert result.success

    # The asset returns metadata only: no IO manager handles an output, nothing is pickled.
    handled = [e for e in result.all_events if e.event_type == DagsterEventType.HANDLED_OUTPUT]
    assert handled == []
    stored = [p.name for p in (home / "storage").rglob("*") if p.is_file()]
    assert "sample_data" not in stored
    assert not any(name == "result" for name in stored), stored


def test_sample_record_accepts_exactly_the_valid_sample_rows() -> None:
    from wdh_domain.pipelines import Pipeline, PipelineConfig, ValidateSchemaStep

    frame = pd.read_csv(sample_csv_path(), dtype=str, keep_default_na=True)
    # Blank cells are missing for the validation steps (not for the bare model).
    config = PipelineConfig(stop_on_error=False, error_threshold=1.0)
    result = Pipeline("sample", config).add_step(ValidateSchemaStep(SampleRecord)).run(frame)
    invalid = {int(value) for value in result.failed_rows["record_id"]}
    assert invalid == INVALID_RECORD_IDS


def test_metrics_include_every_step_duration_and_the_load_duration(run_job: Any, db: Any) -> None:
    result = run_job()
    assert result.success

    durations = {
        name: value
        for name, value in db.metrics(db.audit_row().execution_id).items()
        if "duration_ms" in name
    }
    assert set(durations) == {
        "validation_duration_ms",
        "step_duration_ms.CheckRequiredColumnsStep",
        "step_duration_ms.ValidateSchemaStep",
        "load_duration_ms",
    }
    assert all(value is not None and value >= 0 for value in durations.values())
    assert float(durations["load_duration_ms"]) == pytest.approx(
        materialization(result)["load_duration_ms"], abs=1e-3
    )


def test_a_second_run_advances_loaded_at_of_the_updated_rows(
    run_job: Any, db: Any, tmp_path: Path
) -> None:
    assert run_job().success
    [first] = db.query("SELECT min(loaded_at) AS lo, max(loaded_at) AS hi FROM sample_data")
    assert first.lo == first.hi  # one load, one time
    # every valid row changed: its transaction a year earlier
    changed = tmp_path / "sample_changed.csv"
    text = sample_csv_path().read_text(encoding="utf-8")
    changed.write_text(text.replace(",2024-", ",2023-"), encoding="utf-8")

    second_run = run_job(changed)
    assert second_run.success
    assert materialization(second_run)["rows_updated"] == 17
    [second] = db.query("SELECT min(loaded_at) AS lo, max(loaded_at) AS hi FROM sample_data")
    assert second.lo == second.hi
    assert second.lo > first.hi  # updated rows carry the time of the load that updated them


def test_partitions_read_their_own_file_from_the_landing_directory(
    run_job: Any, db: Any, landing_dir: Path
) -> None:
    header = "record_id,customer_name,email,amount,transaction_date,region\n"
    (landing_dir / "sample_2024-01.csv").write_text(
        header + "101,A,,1.00,2024-01-01,\n102,B,,2.00,2024-01-02,\n", encoding="utf-8"
    )
    (landing_dir / "sample_2024-02.csv").write_text(
        header + "201,C,,3.00,2024-02-01,\n", encoding="utf-8"
    )

    january = run_job(partition="sample_2024-01.csv")
    february = run_job(partition="sample_2024-02.csv")

    assert january.success
    assert february.success
    assert [r[0] for r in db.query("SELECT record_id FROM sample_data ORDER BY 1")] == [
        101,
        102,
        201,
    ]
    paths = [r[0] for r in db.query("SELECT input_file_path FROM pipeline_executions")]
    assert sorted(paths) == sorted(str(p) for p in landing_dir.glob("*.csv"))
    [event] = february.get_asset_materialization_events()
    assert event.partition == "sample_2024-02.csv"
