"""AuditRecorder on a migrated PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import URL, create_engine, text

from wdh_io.audit import MAX_ERROR_MESSAGE_LENGTH, AuditRecorder, FinalStatus
from wdh_io.errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseAccessError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
    TransientDatabaseError,
)
from wdh_io.schema import EXECUTION_STATUSES

pytestmark = pytest.mark.integration

PLANTED = "s3cr3t-planted"


@pytest.fixture
def engine(migrated_database_url: URL) -> Iterator[sa.Engine]:
    engine = create_engine(migrated_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _rows(engine: sa.Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)).mappings())


def test_a_successful_run_is_recorded(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    audit.start_run(execution_id="exec_1", pipeline_name="sample", input_file_path="in.csv")
    [running] = _rows(engine, "SELECT * FROM pipeline_executions")
    assert running["status"] == "running"
    assert running["completed_at"] is None
    assert running["started_at"].tzinfo is not None
    audit.complete_run(
        execution_id="exec_1", status="success", rows_input=10, rows_output=9, rows_failed=1
    )
    [done] = _rows(engine, "SELECT * FROM pipeline_executions")
    assert done["status"] == "success"
    assert (done["rows_input"], done["rows_output"], done["rows_failed"]) == (10, 9, 1)
    assert done["completed_at"] >= done["started_at"]
    assert done["duration_ms"] >= 0
    assert done["input_file_path"] == "in.csv"
    assert done["error_message"] is None


def _failing_load(engine: sa.Engine) -> None:
    with engine.begin() as conn:  # the load's own transaction, rolled back
        conn.execute(text("INSERT INTO sample_data (record_id) VALUES (1)"))


def test_a_failed_load_still_leaves_a_failed_row(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    audit.start_run(execution_id="exec_f", pipeline_name="sample")
    with pytest.raises(sa.exc.IntegrityError):
        _failing_load(engine)
    audit.complete_run(
        execution_id="exec_f",
        status="failed",
        error_message=f"connect to postgresql://app:{PLANTED}@db/wdh failed\x00 " + "x" * 9000,
    )
    [row] = _rows(engine, "SELECT status, error_message FROM pipeline_executions")
    assert row["status"] == "failed"
    assert PLANTED not in row["error_message"]
    assert "\x00" not in row["error_message"]
    assert len(row["error_message"]) == MAX_ERROR_MESSAGE_LENGTH
    assert row["error_message"].endswith("[truncated]")
    assert _rows(engine, "SELECT count(*) AS n FROM sample_data") == [{"n": 0}]


def test_calls_can_join_the_callers_transaction(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)

    def run_then_fail() -> None:
        with engine.begin() as conn:
            audit.start_run(execution_id="exec_tx", pipeline_name="sample", connection=conn)
            audit.complete_run(execution_id="exec_tx", status="success", connection=conn)
            raise RuntimeError("roll it all back")

    with pytest.raises(RuntimeError):
        run_then_fail()
    assert _rows(engine, "SELECT count(*) AS n FROM pipeline_executions") == [{"n": 0}]
    with engine.begin() as conn:
        audit.start_run(execution_id="exec_tx", pipeline_name="sample", connection=conn)
        audit.complete_run(execution_id="exec_tx", status="success", connection=conn)
    assert _rows(engine, "SELECT status FROM pipeline_executions") == [{"status": "success"}]


def test_metrics_are_recorded_and_replaced(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    audit.start_run(execution_id="exec_m", pipeline_name="sample")
    audit.record_metrics(
        execution_id="exec_m",
        domain="sample",
        metrics={"rows_input": 10, "error_rate": 0.25, "step_ms.clean": 1.5, "nan": float("nan")},
    )
    audit.record_metrics(execution_id="exec_m", domain="sample", metrics={"error_rate": 0.5})
    audit.record_metrics(execution_id="exec_m", domain="sample", metrics={})
    rows = _rows(
        engine,
        "SELECT metric_name, metric_value FROM data_quality_metrics ORDER BY metric_name",
    )
    assert [(r["metric_name"], r["metric_value"]) for r in rows] == [
        ("error_rate", 0.5),
        ("nan", None),
        ("rows_input", 10),
        ("step_ms.clean", 1.5),
    ]


def test_duplicate_start_is_a_constraint_violation(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    audit.start_run(execution_id="exec_d", pipeline_name="sample")
    with pytest.raises(ConstraintViolationError) as caught:
        audit.start_run(execution_id="exec_d", pipeline_name="other")
    message = str(caught.value)
    assert "could not record the start of run 'exec_d'" in message
    assert "table: pipeline_executions" in message
    assert "sqlstate: 23505" in message
    assert "Key (" not in message  # the DETAIL line (row values) is not repeated
    assert _rows(engine, "SELECT pipeline_name FROM pipeline_executions") == [
        {"pipeline_name": "sample"}
    ]


def test_ensure_run_opens_a_row_once_and_never_reopens_a_finished_one(
    engine: sa.Engine,
) -> None:
    audit = AuditRecorder(engine)
    assert audit.ensure_run(execution_id="exec_e", pipeline_name="sample", input_file_path="a")
    assert not audit.ensure_run(execution_id="exec_e", pipeline_name="sample")
    [running] = _rows(engine, "SELECT status, input_file_path FROM pipeline_executions")
    assert (running["status"], running["input_file_path"]) == ("running", "a")

    audit.complete_run(execution_id="exec_e", status="failed", error_message="boom")
    assert not audit.ensure_run(execution_id="exec_e", pipeline_name="sample")
    [failed] = _rows(engine, "SELECT status FROM pipeline_executions")
    assert failed["status"] == "failed"

    with pytest.raises(DataValidationError, match="execution_id must not be empty"):
        audit.ensure_run(execution_id="", pipeline_name="sample")


def test_ensure_run_joins_the_callers_transaction(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    with engine.connect() as conn:
        transaction = conn.begin()
        assert audit.ensure_run(execution_id="exec_t", pipeline_name="p", connection=conn)
        assert _rows(engine, "SELECT * FROM pipeline_executions") == []  # not committed yet
        transaction.rollback()
    assert _rows(engine, "SELECT * FROM pipeline_executions") == []


def test_completing_an_unknown_or_finished_run_fails(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    with pytest.raises(DatabaseError, match="no running execution 'nope'"):
        audit.complete_run(execution_id="nope", status="success")
    audit.start_run(execution_id="exec_2x", pipeline_name="sample")
    audit.complete_run(execution_id="exec_2x", status="failed")
    with pytest.raises(DatabaseError, match="no running execution 'exec_2x'"):
        audit.complete_run(execution_id="exec_2x", status="success")
    assert _rows(engine, "SELECT status FROM pipeline_executions") == [{"status": "failed"}]


def test_metrics_for_an_unknown_run_write_nothing(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    with pytest.raises(ConstraintViolationError, match="foreign key") as caught:
        audit.record_metrics(execution_id="ghost", domain="sample", metrics={"a": 1, "b": 2})
    assert "table: data_quality_metrics" in str(caught.value)
    assert _rows(engine, "SELECT count(*) AS n FROM data_quality_metrics") == [{"n": 0}]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"metrics": {"x" * 101: 1}}, "metric_name is 101 characters long, the limit is 100"),
        ({"metrics": {"inf": float("inf")}}, "metric 'inf' is infinite"),
        ({"metrics": {"s": "1"}}, "metric 's' is not a number: str"),
        ({"metrics": {"b": True}}, "metric 'b' is not a number: bool"),
        ({"domain": ""}, "domain must not be empty"),
    ],
)
def test_bad_metrics_are_refused_before_writing(
    engine: sa.Engine, kwargs: dict[str, Any], expected: str
) -> None:
    audit = AuditRecorder(engine)
    audit.start_run(execution_id="exec_b", pipeline_name="sample")
    arguments: dict[str, Any] = {"execution_id": "exec_b", "domain": "sample", "metrics": {"ok": 1}}
    arguments.update(kwargs)
    with pytest.raises(DataValidationError, match=expected):
        audit.record_metrics(**arguments)
    assert _rows(engine, "SELECT count(*) AS n FROM data_quality_metrics") == [{"n": 0}]


def test_bad_arguments_are_refused(engine: sa.Engine) -> None:
    audit = AuditRecorder(engine)
    with pytest.raises(DataValidationError, match="execution_id is 101 characters long"):
        audit.start_run(execution_id="e" * 101, pipeline_name="sample")
    audit.start_run(execution_id="exec_c", pipeline_name="sample")
    with pytest.raises(DataValidationError, match="rows_failed must be a non-negative integer"):
        audit.complete_run(execution_id="exec_c", status="success", rows_failed=-1)
    with pytest.raises(ValueError, match="status must be 'success' or 'failed'"):
        audit.complete_run(execution_id="exec_c", status="running")  # type: ignore[arg-type]
    assert _rows(engine, "SELECT status FROM pipeline_executions") == [{"status": "running"}]


def test_missing_tables_and_lost_servers_are_database_errors(
    database_url: URL, migrated_database_url: URL
) -> None:
    bare = create_engine(database_url)  # not migrated: no audit tables
    try:
        with pytest.raises(TableNotFoundError) as missing:
            AuditRecorder(bare).start_run(execution_id="e", pipeline_name="p")
        assert 'relation "pipeline_executions" does not exist' in str(missing.value)
        assert "this database has not been migrated" in str(missing.value)
        assert "alembic -c packages/wdh-io/alembic.ini upgrade head" in str(missing.value)
    finally:
        bare.dispose()
    unreachable = create_engine(migrated_database_url.set(username="wdh_nobody", password=PLANTED))
    try:
        with pytest.raises(DatabaseAccessError) as caught:
            AuditRecorder(unreachable).start_run(execution_id="e", pipeline_name="p")
        # an unknown role is permanent: not a (retried) lost connection
        assert not isinstance(caught.value, TransientDatabaseError)
        assert "check the user name in DATABASE_URL" in str(caught.value)
        assert PLANTED not in str(caught.value)
        assert "could not record the start of run 'e'" in str(caught.value)
    finally:
        unreachable.dispose()


def test_a_connection_lost_during_the_audit_commit_is_an_unknown_outcome(
    migrated_database_url: URL, migrated_postgresql: psycopg.Connection[Any]
) -> None:
    engine = create_engine(migrated_database_url.set(password=PLANTED))
    commits: list[int] = []

    @sa.event.listens_for(engine, "commit")
    def kill(conn: Any) -> None:
        pid = conn.connection.driver_connection.get_backend_pid()
        commits.append(pid)
        migrated_postgresql.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        migrated_postgresql.commit()

    try:
        with pytest.raises(CommitOutcomeUnknownError) as caught:
            AuditRecorder(engine).start_run(execution_id="exec_k", pipeline_name="sample")
        message = str(caught.value)
        assert message.startswith("could not record the start of run 'exec_k': connection lost")
        assert "table: pipeline_executions" in message
        assert not isinstance(caught.value, ConnectionLostError)  # never retried blindly
        assert PLANTED not in message
        assert len(commits) == 1
        sa.event.remove(engine, "commit", kill)
        assert _rows(engine, "SELECT count(*) AS n FROM pipeline_executions") == [{"n": 0}]
    finally:
        engine.dispose()


def test_the_final_statuses_are_the_schema_statuses_but_running() -> None:
    assert {*get_args(FinalStatus), "running"} == set(EXECUTION_STATUSES)


def test_the_migrated_check_constraint_allows_exactly_the_schema_statuses(
    engine: sa.Engine,
) -> None:
    """The audit revision spells the list out; this keeps it and the constant in step."""
    insert = text(
        "INSERT INTO pipeline_executions (execution_id, pipeline_name, status) "
        "VALUES (:id, 'p', :status)"
    )
    with engine.begin() as conn:
        for status in EXECUTION_STATUSES:
            conn.execute(insert, {"id": f"exec_{status}", "status": status})
    with (
        pytest.raises(sa.exc.IntegrityError, match="ck_pipeline_executions_status"),
        engine.begin() as conn,
    ):
        conn.execute(insert, {"id": "exec_other", "status": "cancelled"})
    assert _rows(engine, "SELECT count(*) AS n FROM pipeline_executions") == [
        {"n": len(EXECUTION_STATUSES)}
    ]
