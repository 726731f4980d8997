"""``python -m wdh_orchestrator.replay`` and ``python -m wdh_orchestrator.show <run>``: a
run's rejected rows listed, replayed with the current sample model, listed again."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import Definitions
from sqlalchemy.engine import URL

from wdh_config import Settings
from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine
from wdh_io.quarantine import RejectedRow, RejectionReason, write_rejected_rows
from wdh_logging import reset_logging
from wdh_orchestration import REPLAY_JOB_NAME
from wdh_orchestrator.definitions import build_definitions
from wdh_orchestrator.replay import main as replay_main
from wdh_orchestrator.show import main as show_main

PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret
RUN = "exec_20260101_000000_run"
TOKEN = "tok-planted-value"  # a raw value under a secret-like column name


def raw(record_id: str, amount: str) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "customer_name": "Ann",
        "email": None,
        "amount": amount,
        "transaction_date": "2024-01-01",
        "region": "North",
        "api_token": TOKEN,
    }


def record_run(url: URL, *, rejected: bool = True) -> None:
    """Run *RUN*, which rejected two rows: record 7 (valid under the sample's model, so
    a replay resolves it) and record 8 (amount not a number: still rejected)."""
    engine = create_engine(url, pool_size=1)
    try:
        audit = AuditRecorder(engine)
        audit.start_run(execution_id=RUN, pipeline_name="sample_pipeline_job")
        rows = [
            RejectedRow(
                input_row=6,
                file_line=8,
                reason=RejectionReason(
                    field="amount", error_code="less_than_equal", message="at most 1000"
                ),
                raw_values=raw("7", "5000.00"),
            ),
            RejectedRow(
                input_row=7,
                file_line=9,
                reason=RejectionReason(
                    field="amount", error_code="bad_amount", message="an old reason"
                ),
                raw_values=raw("8", "not-a-number"),
            ),
        ]
        with engine.begin() as conn:
            if rejected:
                write_rejected_rows(
                    conn, rows, execution_id=RUN, domain="sample", source_file="s.csv"
                )
        audit.complete_run(execution_id=RUN, status="success", rows_input=20, rows_failed=2)
    finally:
        engine.dispose()


def query(url: URL, sql: str) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


def run(main: Any, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.integration
def test_show_lists_a_runs_rejected_rows_and_replay_resolves_them(staging_env: URL) -> None:
    record_run(staging_env)

    status, out, err = run(show_main, RUN)

    assert (status, err) == (0, "")
    assert f"== pipeline_executions {RUN}" in out
    assert "== rejected_rows (2 errors, 2 unresolved)" in out
    lines = out.splitlines()
    header = lines[lines.index("== rejected_rows (2 errors, 2 unresolved)") + 1]
    assert header.split() == [
        "input_row",
        "file_line",
        "field",
        "code",
        "message",
        "raw_values",
        "resolved_by",
    ]
    [row_6] = [ln for ln in lines if ln.startswith("6 ")]
    assert row_6.split()[:5] == ["6", "8", "amount", "less_than_equal", "at"]
    assert '"amount": "5000.00"' in row_6
    assert '"api_token": "***REDACTED***"' in row_6
    assert TOKEN not in out
    assert PLANTED_PASSWORD not in out

    status, out, err = run(replay_main, RUN)

    assert (status, err) == (0, "")
    [line] = out.splitlines()
    assert line.startswith(f"replayed 2 rejected rows of run {RUN} (sample) as exec_")
    assert line.endswith(
        ": 1 resolved (1 inserted, 0 updated), 1 still rejected (2 reasons changed)"
    )
    [record] = query(staging_env, "SELECT record_id, amount FROM sample_data")
    assert (record.record_id, str(record.amount)) == (7, "5000.00")
    [replay_run] = query(
        staging_env, "SELECT * FROM pipeline_executions WHERE pipeline_name = 'sample_replay'"
    )
    assert replay_run.status == "success"

    status, out, err = run(show_main, RUN, "--rejected", "1")

    assert "== rejected_rows (2 errors, 1 unresolved, the first 1)" in out
    [row_6] = [ln for ln in out.splitlines() if ln.startswith("6 ")]
    assert row_6.rstrip().endswith(replay_run.execution_id)  # resolved by the replay

    status, out, err = run(replay_main, RUN)

    assert (status, err) == (0, "")
    assert out.rstrip().endswith(
        ": 0 resolved (0 inserted, 0 updated), 1 still rejected (0 reasons changed)"
    )


@pytest.mark.integration
def test_a_run_without_rejected_rows_has_nothing_to_replay(staging_env: URL) -> None:
    record_run(staging_env, rejected=False)

    assert run(replay_main, RUN) == (
        0,
        f"nothing to replay: run {RUN} has no unresolved rejected rows\n",
        "",
    )
    _status, out, _ = run(show_main, RUN)
    assert "== rejected_rows (0 errors, 0 unresolved)" in out
    assert out.rstrip().endswith("(no rows)")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["exec_nope"],
            (
                "replay: no run 'exec_nope' in pipeline_executions: check the execution id "
                "(python -m wdh_orchestrator.show lists the latest runs)\n"
            ),
        ),
        (
            [RUN, "--domain", "orders"],
            "replay: unknown domain 'orders'; the declared domains are: sample\n",
        ),
    ],
    ids=["unknown-run", "unknown-domain"],
)
def test_a_replay_that_cannot_be_done_is_one_line(
    staging_env: URL, argv: list[str], message: str
) -> None:
    record_run(staging_env)

    assert run(replay_main, *argv) == (1, "", message)
    assert query(staging_env, "SELECT count(*) FROM pipeline_executions")[0][0] == 1


@pytest.mark.integration
def test_a_replay_that_fails_is_one_line_and_changes_nothing(staging_env: URL) -> None:
    record_run(staging_env)
    engine = sa.create_engine(staging_env)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("ALTER TABLE sample_data ADD CONSTRAINT small CHECK (amount < 1000)")
            )
    finally:
        engine.dispose()

    status, out, err = run(replay_main, RUN)

    assert (status, out) == (1, "")
    [line] = err.splitlines()
    assert line.startswith("replay: ")
    assert "small" in line
    assert PLANTED_PASSWORD not in err
    assert query(staging_env, "SELECT count(*) FROM sample_data")[0][0] == 0
    assert query(
        staging_env, "SELECT count(*) FROM rejected_rows WHERE resolved_at IS NOT NULL"
    ) == [(0,)]
    [failed] = query(
        staging_env, "SELECT * FROM pipeline_executions WHERE pipeline_name = 'sample_replay'"
    )
    assert failed.status == "failed"


@pytest.mark.integration
def test_show_of_an_unknown_run_is_one_line(staging_env: URL) -> None:
    status, _, err = run(show_main, "exec_nope")
    assert status == 1
    assert err == (
        "show: no run 'exec_nope' in pipeline_executions (the latest runs: "
        "python -m wdh_orchestrator.show)\n"
    )


def test_a_database_that_cannot_be_reached_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wdh_config import get_settings

    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    get_settings.cache_clear()
    try:
        status, out, err = run(replay_main, RUN)
    finally:
        get_settings.cache_clear()
    assert (status, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith(
        "replay: invalid settings: DATABASE_URL is required when ENVIRONMENT=prod"
    )


def test_the_code_location_serves_the_replay_job(tmp_path: Path) -> None:
    try:
        defs = build_definitions(
            Settings(environment="dev", log_format="pretty", landing_dir=tmp_path)
        )
    finally:
        reset_logging()
    Definitions.validate_loadable(defs)  # what the UI's code server does on load
    assert defs.get_repository_def().has_job(REPLAY_JOB_NAME)
    job = defs.resolve_job_def(REPLAY_JOB_NAME)
    config = job.run_config_schema.config_type.fields["ops"]  # type: ignore[attr-defined]
    replay_op = config.config_type.fields["replay"].config_type.fields["config"]
    assert {"execution_id", "domain"} <= set(replay_op.config_type.fields)
    assert replay_op.config_type.fields["execution_id"].is_required


@pytest.mark.slow
@pytest.mark.integration
def test_the_module_prints_one_line_and_no_traceback(staging_env: URL) -> None:
    env = {**os.environ, "LOG_LEVEL": "INFO"}
    done = subprocess.run(
        [sys.executable, "-m", "wdh_orchestrator.replay", "exec_nope"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        (
            "replay: no run 'exec_nope' in pipeline_executions: check the execution id "
            "(python -m wdh_orchestrator.show lists the latest runs)"
        )
    ]
