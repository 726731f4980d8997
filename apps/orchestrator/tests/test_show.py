"""``python -m wdh_orchestrator.show`` prints the audit tables and the loaded rows."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.engine import URL

from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine, describe_url_text
from wdh_orchestrator.show import main

pytestmark = pytest.mark.integration

PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret


def test_show_on_an_empty_warehouse(staging_env: URL) -> None:
    out = io.StringIO()
    assert main([], out=out) == 0
    text = out.getvalue()
    assert text.startswith(describe_url_text(staging_env))  # TCP or the embedded socket
    assert "== pipeline_executions (latest 5)" in text
    assert "== public.sample_data (0 rows)" in text
    assert text.count("(no rows)") == 3
    assert PLANTED_PASSWORD not in text


def test_show_lists_runs_metrics_and_custom_queries(staging_env: URL) -> None:
    engine = create_engine(staging_env, pool_size=1)
    try:
        audit = AuditRecorder(engine)
        audit.start_run(
            execution_id="exec_20260101_000000_abc", pipeline_name="sample_pipeline_job"
        )
        audit.record_metrics(
            execution_id="exec_20260101_000000_abc", domain="sample", metrics={"rows_read": 20}
        )
        audit.complete_run(
            execution_id="exec_20260101_000000_abc", status="failed", error_message="x" * 100
        )
    finally:
        engine.dispose()

    out = io.StringIO()
    main(["--runs", "1"], out=out)
    text = out.getvalue()
    assert "exec_20260101_000000_abc" in text
    assert "failed" in text
    assert "x" * 59 + "…" in text  # long values are cut
    assert "rows_read" in text

    out = io.StringIO()
    main(
        ["--sql", "SELECT status, count(*) AS n FROM pipeline_executions GROUP BY status"], out=out
    )
    assert "status  n" in out.getvalue()
    assert "failed  1" in out.getvalue()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM pipeline_executions", "cannot execute DELETE in a read-only transaction"),
        (
            "SET TRANSACTION READ WRITE; DELETE FROM pipeline_executions",
            "transaction read-write mode must be set before any query",
        ),
        (
            "COMMIT; DELETE FROM pipeline_executions",
            "cannot execute DELETE in a read-only transaction",
        ),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
        ("SELECT * FROM no_such_table", 'relation "no_such_table" does not exist'),
    ],
    ids=["delete", "read-write", "commit", "syntax", "unknown-table"],
)
def test_sql_is_read_only_and_a_failing_query_is_one_line(
    staging_env: URL, sql: str, message: str
) -> None:
    _start_run(staging_env)
    out, err = io.StringIO(), io.StringIO()

    assert main(["--sql", sql], out=out, err=err) == 1

    assert err.getvalue() == f"query failed: {message}\n"  # one line, no traceback
    assert PLANTED_PASSWORD not in out.getvalue() + err.getvalue()
    check = io.StringIO()
    assert main(["--sql", "SELECT count(*) AS n FROM pipeline_executions"], out=check) == 0
    assert check.getvalue().splitlines()[-1].strip() == "1"  # nothing was deleted


def test_help_says_sql_is_for_select_queries(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--sql SELECT run this SELECT query instead" in help_text
    assert "READ ONLY transaction" in help_text


def _start_run(url: URL) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        AuditRecorder(engine).start_run(
            execution_id="exec_20260101_000000_abc", pipeline_name="sample_pipeline_job"
        )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"ENVIRONMENT": "prod"},
            "show: invalid settings: DATABASE_URL is required when ENVIRONMENT=prod",
        ),
        (
            {"ENVIRONMENT": "staging", "DATABASE_URL": "postgresql://u:{pw}@h:port/db"},
            "show: the database URL is malformed",
        ),
        (
            {"ENVIRONMENT": "staging", "DATABASE_URL": "{unknown_db}"},
            'database "wdh_no_such_db" does not exist',
        ),
        (
            {"ENVIRONMENT": "staging", "DATABASE_URL": "{unreachable}"},
            "show: cannot connect to the database 'wdh' on 127.0.0.1:1: connection to server",
        ),
    ],
    ids=["missing-url", "malformed-url", "unknown-database", "unreachable"],
)
def test_a_database_that_cannot_be_reached_is_one_line(
    migrated_url: URL,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environ: dict[str, str],
    expected: str,
) -> None:
    from wdh_config import get_settings

    unknown = migrated_url.set(database="wdh_no_such_db", password=PLANTED_PASSWORD)
    unreachable = migrated_url.set(
        host="127.0.0.1", port=1, database="wdh", query={}, password=PLANTED_PASSWORD
    )
    values = {
        "pw": PLANTED_PASSWORD,
        "unknown_db": unknown.render_as_string(hide_password=False),
        "unreachable": unreachable.render_as_string(hide_password=False),
    }
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value.format(**values))
    get_settings.cache_clear()
    out, err = io.StringIO(), io.StringIO()
    try:
        status = main([], out=out, err=err)
    finally:
        get_settings.cache_clear()

    assert status == 2
    assert out.getvalue() == ""
    [line] = err.getvalue().splitlines()  # one line, no traceback
    assert line.startswith("show: ")
    assert expected in line
    assert PLANTED_PASSWORD not in line
    assert capsys.readouterr().err == ""  # no log line (a refused connection) before it
