"""Runs of a domain's job that fail: bad input, bad settings, a failing database, retries.

Every failure ends in one readable line (the step's ``Failure`` description, stored in
the audit row as ``<step>: <reason>``), permanent errors are never retried, and nothing
is loaded.
"""

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
    in_process_executor,
    job,
    op,
)
from pydantic import PrivateAttr
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from wdh_config import get_settings
from wdh_io.errors import ConnectionLostError
from wdh_io.loader import WarehouseLoader
from wdh_orchestration import (
    CheckOutcome,
    DomainCheck,
    LoadedFile,
    WarehouseResource,
    record_failed_run,
)
from wdh_orchestration.domains.sample import SAMPLE, sample_csv_path

pytestmark = pytest.mark.integration

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret (trust auth ignores it)
HEADER = "record_id,customer_name,email,amount,transaction_date,region\n"
STEP = "sample_data"


def step_events(result: ExecuteInProcessResult, kind: DagsterEventType) -> list[str]:
    return [e.step_key or "" for e in result.all_events if e.event_type == kind]


def failure_of(result: ExecuteInProcessResult) -> Any:
    [event] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    return event.step_failure_data


def reason_of(result: ExecuteInProcessResult) -> str:
    """The one line a user reads: the failure's description."""
    description = failure_of(result).user_failure_data.description
    assert "\n" not in description
    assert "Traceback" not in description
    return str(description)


def test_malformed_csv_fails_the_run_and_is_audited(run_job: Any, db: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "1,张伟,a@b.cn,1.00,2024-01-01,x\n2,Bob,b@c.com,2.00,2024-01-02,y,EXTRA,FIELDS\n",
        encoding="utf-8",
    )

    result = run_job(path)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []  # data: no retry
    reason = reason_of(result)
    assert reason.startswith("cannot read the input file: ")
    assert "line: 3" in reason
    assert str(path) in reason
    assert failure_of(result).error.cause is None  # no traceback of the cause below it
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    row = db.audit_row()
    assert row.status == "failed"
    assert row.execution_id.endswith(result.run_id)
    assert row.error_message == f"{STEP}: {reason}"
    assert row.completed_at is not None


def test_missing_file_is_one_line(run_job: Any, db: Any, tmp_path: Path) -> None:
    result = run_job(tmp_path / "nowhere.csv")

    assert not result.success
    reason = reason_of(result)
    assert reason.startswith("cannot read the input file: ")
    assert "nowhere.csv" in reason
    assert db.audit_row().status == "failed"


def test_missing_required_column_fails_validation_and_is_audited(
    run_job: Any, db: Any, tmp_path: Path
) -> None:
    path = tmp_path / "no_amount.csv"
    path.write_text(
        "record_id,customer_name,email,transaction_date,region\n1,张伟,a@b.cn,2024-01-01,x\n",
        encoding="utf-8",
    )

    result = run_job(path)

    assert not result.success
    reason = reason_of(result)
    assert reason.startswith("validation failed:")
    assert "MISSING_COLUMNS" in reason
    assert "amount" in reason
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    assert db.audit_row().status == "failed"


def test_too_many_invalid_rows_fail_the_failure_rate_check(
    run_job: Any, db: Any, tmp_path: Path
) -> None:
    path = tmp_path / "mostly_bad.csv"
    path.write_text(
        HEADER
        + "1,张伟,a@b.cn,1.00,2024-01-01,x\n"
        + "2,Bob,b@c.com,abc,2024-01-02,y\n"
        + "3,Eve,e@c.com,3.00,not-a-date,y\n",
        encoding="utf-8",
    )

    result = run_job(path)

    assert not result.success
    [check] = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    assert (check.check_name, check.passed) == ("failure_rate_within_threshold", False)
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    row = db.audit_row()
    assert row.status == "failed"
    assert "[ERROR_THRESHOLD_EXCEEDED]" in row.error_message
    metrics = db.metrics(row.execution_id)
    assert metrics["check.failure_rate_within_threshold.passed"] == 0
    assert float(metrics["check.failure_rate_within_threshold.value"]) == pytest.approx(2 / 3)


def _no_region_x(conn: Connection, loaded: LoadedFile) -> CheckOutcome:
    # A streamed load keeps no frame of the file: a check reads the table, which holds
    # the load's rows in the check's transaction.
    table = sa.table(loaded.domain.table, sa.column("region"), schema=loaded.domain.schema)
    bad = int(
        conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.region == "x")
        ).scalar_one()
    )
    return CheckOutcome(passed=bad == 0, description=f"{bad} rows in region x", value=bad)


def test_a_failed_blocking_domain_check_rolls_the_load_back(
    run_job: Any, db: Any, tmp_path: Path
) -> None:
    from dataclasses import replace

    check = DomainCheck("no_region_x", "No row is in region x.", _no_region_x, blocking=True)
    strict = replace(SAMPLE, name="strict", table="sample_data", checks=(check,))
    path = tmp_path / "x.csv"
    path.write_text(HEADER + "1,张伟,a@b.cn,1.00,2024-01-01,x\n", encoding="utf-8")

    result = run_job(path, job="strict_pipeline_job", domains=(strict,))

    assert not result.success
    assert "no_region_x: 1 rows in region x" in reason_of(result)
    evaluations = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert evaluations["no_region_x"] is False
    assert evaluations["upsert_keys_unique"] is True
    assert db.scalar("SELECT count(*) FROM sample_data") == 0  # rolled back
    row = db.audit_row()
    assert row.status == "failed"
    assert db.metrics(row.execution_id)["check.no_region_x.passed"] == 0


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
    """The test database, whose loader fails transiently ``transient_failures`` times."""

    transient_failures: int = 1

    _taken: int = PrivateAttr(default=0)

    def take_failure(self) -> bool:
        """Whether the next transaction fails (and one failure fewer is left)."""
        if self._taken >= self.transient_failures:
            return False
        self._taken += 1
        return True

    def loader(self) -> WarehouseLoader:
        flaky: Any = _FlakyLoader(super().loader(), self)
        return flaky  # type: ignore[no-any-return]


def test_transient_load_error_is_retried_and_the_run_succeeds(
    run_job: Any, db: Any, migrated_url: URL
) -> None:
    warehouse = FlakyWarehouse(
        database_url=migrated_url.render_as_string(hide_password=False), transient_failures=2
    )

    result = run_job(sample_csv_path(), resource=warehouse)

    assert result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == [STEP] * 2
    assert db.scalar("SELECT count(*) FROM sample_data") == 17
    assert db.audit_row().status == "success"


def test_non_transient_load_error_is_not_retried(run_job: Any, db: Any, tmp_path: Path) -> None:
    path = tmp_path / "duplicate_keys.csv"  # the upsert refuses the file as a whole
    path.write_text(
        HEADER + "1,张伟,a@b.cn,1.00,2024-01-01,x\n1,Bob,b@c.com,2.00,2024-01-02,y\n",
        encoding="utf-8",
    )

    result = run_job(path)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert reason_of(result).startswith("cannot load the rows:")
    assert "record_id" in reason_of(result)
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    assert db.audit_row().status == "failed"
    assert (
        db.scalar("SELECT count(*) FROM data_quality_metrics WHERE metric_name = 'rows_inserted'")
        == 0
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"database": "wdh_no_such_database"}, 'database "wdh_no_such_database" does not exist'),
        ({"username": "wdh_no_such_role"}, 'role "wdh_no_such_role" does not exist'),
    ],
    ids=["unknown-database", "unknown-role"],
)
def test_permanent_connection_errors_fail_at_once_in_one_line(
    run_job: Any, migrated_url: URL, change: dict[str, str], expected: str
) -> None:
    url = migrated_url.set(password=PLANTED, **change)  # type: ignore[arg-type]
    warehouse = WarehouseResource(database_url=url.render_as_string(hide_password=False))

    result = run_job(sample_csv_path(), resource=warehouse)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []  # never retried
    reason = reason_of(result)
    assert reason.startswith("cannot open the warehouse: ")
    assert expected in reason
    assert PLANTED not in reason


def test_invalid_settings_fail_the_run_in_one_line(
    run_job: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = run_job(sample_csv_path(), resource=WarehouseResource())
    finally:
        get_settings.cache_clear()

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert reason_of(result) == (
        "cannot open the warehouse: invalid settings: DATABASE_URL is required "
        "when ENVIRONMENT=prod (only dev may omit it to use the embedded database)"
    )
    assert db.scalar("SELECT count(*) FROM pipeline_executions") == 0  # nowhere to write


def test_malformed_database_url_is_one_line_without_the_url(run_job: Any) -> None:
    warehouse = WarehouseResource(database_url=f"postgresql://u:{PLANTED}@host:notaport/db")

    result = run_job(sample_csv_path(), resource=warehouse)

    reason = reason_of(result)
    assert reason.startswith("cannot open the warehouse: the database URL is malformed")
    assert PLANTED not in str(failure_of(result))


@op
def _op_that_fails() -> None:
    raise Failure("the op's own error: input.csv line 3 is malformed", allow_retries=False)


@job(executor_def=in_process_executor, hooks={record_failed_run})
def hooked_failure_job() -> None:
    """One failing op that carries the audit failure hook, as every domain job does."""
    _op_that_fails()


@pytest.mark.parametrize(
    ("where", "audit_error"),
    [("unmigrated", "relation "), ("unreachable", "")],
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
    assert "the op's own error: input.csv line 3 is malformed" in str(failure_of(result).error)
    events = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [lost] = [e for e in events if e["event"] == "audit.run.failure_not_recorded"]
    assert lost["op"] == "_op_that_fails"
    assert lost["execution_id"].endswith(result.run_id)
    assert audit_error in lost["error"]
    assert PLANTED not in log_stream.getvalue()


def test_an_unreachable_server_is_retried_then_ends_in_one_line(
    run_job: Any, database_url: URL
) -> None:
    # Port 1 refuses at once; query={} drops an embedded server's socket directory.
    url = database_url.set(host="127.0.0.1", port=1, query={}, password=PLANTED)
    warehouse = WarehouseResource(database_url=url.render_as_string(hide_password=False))

    result = run_job(sample_csv_path(), resource=warehouse)

    assert not result.success
    assert step_events(result, DagsterEventType.STEP_UP_FOR_RETRY) == [STEP] * 2  # transient
    reason = reason_of(result)
    assert reason.startswith("cannot open the warehouse: ")
    assert reason.endswith("(retried, no attempt left)")
    assert PLANTED not in str(failure_of(result))
