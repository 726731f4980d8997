"""Runs of ``sample_pipeline_job`` that fail: bad input, a failing database, retries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    RetryPolicy,
    in_process_executor,
)
from sqlalchemy.engine import URL

from wdh_io.errors import ConnectionLostError
from wdh_io.loader import WarehouseLoader
from wdh_orchestration import WarehouseResource, record_failed_run, sample_pipeline_job

pytestmark = pytest.mark.integration

HEADER = "record_id,customer_name,email,amount,transaction_date,region\n"


def run_job(
    warehouse: WarehouseResource,
    instance: DagsterInstance,
    path: Path,
    *,
    job: Any = sample_pipeline_job,
) -> ExecuteInProcessResult:
    result: ExecuteInProcessResult = job.execute_in_process(
        run_config={"ops": {"read_csv_op": {"config": {"path": str(path)}}}},
        resources={"warehouse": warehouse},
        instance=instance,
        raise_on_error=False,
    )
    return result


def scalar(url: URL, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar_one()
    finally:
        engine.dispose()


def audit_row(url: URL) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT * FROM pipeline_executions")).one()
    finally:
        engine.dispose()


def step_events(result: ExecuteInProcessResult, kind: DagsterEventType) -> list[str]:
    return [e.step_key or "" for e in result.all_events if e.event_type == kind]


def test_malformed_csv_fails_the_run_and_is_audited(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "1,张伟,a@b.cn,1.00,2024-01-01,x\n2,Bob,b@c.com,2.00,2024-01-02,y,EXTRA,FIELDS\n",
        encoding="utf-8",
    )

    result = run_job(warehouse, instance, path)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_FAILURE) == ["read_csv_op"]
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []  # data: no retry
    assert scalar(migrated_url, "SELECT count(*) FROM sample_data") == 0
    row = audit_row(migrated_url)
    assert row.status == "failed"
    assert row.execution_id.endswith(result.run_id)
    assert row.error_message.startswith("read_csv_op: cannot read the input file: ReaderError:")
    assert "line: 3" in row.error_message
    assert str(path) in row.error_message
    assert row.completed_at is not None


def test_missing_required_column_fails_validation_and_is_audited(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL, tmp_path: Path
) -> None:
    path = tmp_path / "no_amount.csv"
    path.write_text(
        "record_id,customer_name,email,transaction_date,region\n1,张伟,a@b.cn,2024-01-01,x\n",
        encoding="utf-8",
    )

    result = run_job(warehouse, instance, path)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_FAILURE) == ["validate_op"]
    assert scalar(migrated_url, "SELECT count(*) FROM sample_data") == 0
    row = audit_row(migrated_url)
    assert row.status == "failed"
    assert row.error_message.startswith("validate_op: validation failed:")
    assert "MISSING_COLUMNS" in row.error_message
    assert "amount" in row.error_message


def test_too_many_invalid_rows_fail_the_run(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL, tmp_path: Path
) -> None:
    path = tmp_path / "mostly_bad.csv"
    path.write_text(
        HEADER
        + "1,张伟,a@b.cn,1.00,2024-01-01,x\n"
        + "2,Bob,b@c.com,abc,2024-01-02,y\n"
        + "3,Eve,e@c.com,3.00,not-a-date,y\n",
        encoding="utf-8",
    )

    result = run_job(warehouse, instance, path)

    assert not result.success
    assert scalar(migrated_url, "SELECT count(*) FROM sample_data") == 0
    row = audit_row(migrated_url)
    assert row.status == "failed"
    assert "[ERROR_THRESHOLD_EXCEEDED]" in row.error_message
    assert "(2 of 3 input rows) exceeds error_threshold 25.00%" in row.error_message


class _FlakyLoader:
    """A real loader whose first ``transaction`` loses its connection (a transient error)."""

    def __init__(self, inner: WarehouseLoader, failures: list[int]) -> None:
        self._inner = inner
        self._failures = failures

    def transaction(self) -> Any:
        if self._failures:
            self._failures.pop()
            raise ConnectionLostError("server closed the connection unexpectedly")
        return self._inner.transaction()


class FlakyWarehouse(WarehouseResource):
    """The test database, whose loader fails transiently ``transient_failures`` times."""

    transient_failures: int = 1

    def loader(self) -> WarehouseLoader:
        flaky: Any = _FlakyLoader(super().loader(), _FAILURES)
        return flaky  # type: ignore[no-any-return]


_FAILURES: list[int] = []

# The sample job as it is, but without waiting between retries.
fast_retry_job = sample_pipeline_job.graph.to_job(
    name="sample_pipeline_job_fast_retry",
    executor_def=in_process_executor,
    op_retry_policy=RetryPolicy(max_retries=2, delay=0),
    hooks={record_failed_run},
)


def test_transient_load_error_is_retried_and_the_run_succeeds(
    instance: DagsterInstance, migrated_url: URL
) -> None:
    from wdh_orchestration.sample import sample_csv_path

    _FAILURES[:] = [1]
    warehouse = FlakyWarehouse(database_url=migrated_url.render_as_string(hide_password=False))

    result = run_job(warehouse, instance, sample_csv_path(), job=fast_retry_job)

    assert result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == ["load_to_db_op"]
    assert scalar(migrated_url, "SELECT count(*) FROM sample_data") == 17
    assert audit_row(migrated_url).status == "success"


def test_non_transient_load_error_is_not_retried(
    warehouse: WarehouseResource, instance: DagsterInstance, migrated_url: URL, tmp_path: Path
) -> None:
    # Two rows with the same key: the upsert refuses the file as a whole.
    path = tmp_path / "duplicate_keys.csv"
    path.write_text(
        HEADER + "1,张伟,a@b.cn,1.00,2024-01-01,x\n1,Bob,b@c.com,2.00,2024-01-02,y\n",
        encoding="utf-8",
    )

    result = run_job(warehouse, instance, path, job=fast_retry_job)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_FAILURE) == ["load_to_db_op"]
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert scalar(migrated_url, "SELECT count(*) FROM sample_data") == 0
    row = audit_row(migrated_url)
    assert row.status == "failed"
    assert row.error_message.startswith("load_to_db_op: cannot load the rows:")
    assert "record_id" in row.error_message
    # The success row was never written: the audit completion shares the load's transaction.
    assert (
        scalar(
            migrated_url,
            "SELECT count(*) FROM data_quality_metrics WHERE metric_name = 'rows_inserted'",
        )
        == 0
    )


def test_a_warehouse_that_cannot_start_fails_the_run_before_any_audit_row(
    instance: DagsterInstance, migrated_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Resources start before the first op (in-process executor): nothing was opened, so
    # nothing is left "running" -- and with no database there is nowhere to write.
    from wdh_config import get_settings
    from wdh_orchestration.sample import sample_csv_path

    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = run_job(WarehouseResource(), instance, sample_csv_path())
    finally:
        get_settings.cache_clear()

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_START) == []
    failures = [
        e.event_specific_data.error.message  # type: ignore[union-attr]
        for e in result.all_events
        if e.event_type == DagsterEventType.RESOURCE_INIT_FAILURE
    ]
    assert len(failures) == 1
    assert "DATABASE_URL" in failures[0]
    assert scalar(migrated_url, "SELECT count(*) FROM pipeline_executions") == 0
