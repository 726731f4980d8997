"""Runs of ``sample_pipeline_job`` that fail: bad input, a failing database, retries."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    Failure,
    InitResourceContext,
    RetryPolicy,
    in_process_executor,
    job,
    op,
)
from pydantic import PrivateAttr
from sqlalchemy.engine import URL

from wdh_io.errors import ConnectionLostError
from wdh_io.loader import WarehouseLoader
from wdh_orchestration import WarehouseResource, record_failed_run, sample_pipeline_job

pytestmark = pytest.mark.integration

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret (trust auth ignores it)

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
    """A real loader whose ``transaction`` loses its connection while *warehouse* has
    transient failures left (a transient error)."""

    def __init__(self, inner: WarehouseLoader, warehouse: FlakyWarehouse) -> None:
        self._inner = inner
        self._warehouse = warehouse

    def transaction(self) -> Any:
        if self._warehouse.take_failure():
            raise ConnectionLostError("server closed the connection unexpectedly")
        return self._inner.transaction()


class FlakyWarehouse(WarehouseResource):
    """The test database, whose loader fails transiently ``transient_failures`` times
    per run, then works."""

    transient_failures: int = 1

    _failures_left: int = PrivateAttr(default=0)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        super().setup_for_execution(context)
        self._failures_left = self.transient_failures

    def take_failure(self) -> bool:
        """Whether the next transaction fails (and one failure fewer is left)."""
        if self._failures_left <= 0:
            return False
        self._failures_left -= 1
        return True

    def loader(self) -> WarehouseLoader:
        flaky: Any = _FlakyLoader(super().loader(), self)
        return flaky  # type: ignore[no-any-return]


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
    from wdh_orchestration.domains.sample import sample_csv_path

    warehouse = FlakyWarehouse(
        database_url=migrated_url.render_as_string(hide_password=False), transient_failures=2
    )

    result = run_job(warehouse, instance, sample_csv_path(), job=fast_retry_job)

    assert result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == ["load_to_db_op"] * 2
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
    from wdh_orchestration.domains.sample import sample_csv_path

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


@op
def _op_that_fails() -> None:
    raise Failure("the op's own error: input.csv line 3 is malformed", allow_retries=False)


@job(executor_def=in_process_executor, hooks={record_failed_run})
def hooked_failure_job() -> None:
    """One failing op that carries the audit failure hook, as every op of a domain job does."""
    _op_that_fails()


@pytest.mark.parametrize(
    ("where", "audit_error"),
    [("unmigrated", "TableNotFoundError: "), ("unreachable", "OperationalError: ")],
)
def test_an_audit_write_that_fails_is_logged_and_the_op_error_stays(
    where: str,
    audit_error: str,
    database_url: URL,
    instance: DagsterInstance,
    log_stream: StringIO,
) -> None:
    # A real database without the audit tables, or no server at all behind the URL
    # (port 1 refuses at once; query={} drops an embedded server's socket directory, which
    # would otherwise win over the host); the planted password must not leak from either.
    unreachable = database_url.set(host="127.0.0.1", port=1, query={})
    url = database_url if where == "unmigrated" else unreachable
    url = url.set(password=PLANTED)
    warehouse = WarehouseResource(database_url=url.render_as_string(hide_password=False))

    result = hooked_failure_job.execute_in_process(
        resources={"warehouse": warehouse}, instance=instance, raise_on_error=False
    )

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "the op's own error: input.csv line 3 is malformed" in str(
        failure.event_specific_data.error  # type: ignore[union-attr]
    )
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [lost] = [e for e in events if e["event"] == "audit.run.failure_not_recorded"]
    assert lost["op"] == "_op_that_fails"
    assert lost["execution_id"].endswith(result.run_id)
    assert lost["level"] == "error"
    assert lost["error"].startswith(audit_error)  # why the audit row was not written
    assert PLANTED not in log_stream.getvalue()
