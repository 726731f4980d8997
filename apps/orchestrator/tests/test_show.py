"""``python -m wdh_orchestrator.show`` prints the audit tables and the loaded rows."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.engine import URL

from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine
from wdh_orchestrator.show import describe, main

pytestmark = pytest.mark.integration

PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret


def test_show_on_an_empty_warehouse(staging_env: URL) -> None:
    out = io.StringIO()
    assert main([], out=out) == 0
    text = out.getvalue()
    assert f"database: {staging_env.database}" in text
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


def test_describe_names_host_or_socket_but_never_credentials() -> None:
    tcp = URL.create("postgresql+psycopg2", "wdh", PLANTED_PASSWORD, "db.local", 6543, "wdh")
    assert describe(tcp) == "wdh on db.local:6543"
    socket = URL.create(
        "postgresql+psycopg2", "postgres", database="postgres", query={"host": "/x/.wdh/pgdata"}
    )
    assert describe(socket) == "postgres (unix socket in /x/.wdh/pgdata)"
