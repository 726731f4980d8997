"""``python -m wdh_orchestrator.run --dry-run``: the plan printed, nothing written."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from wdh_logging import reset_logging
from wdh_orchestrator.run import main

pytestmark = pytest.mark.integration

TABLES = ("sample_data", "rejected_rows", "pipeline_executions", "data_quality_metrics")


def counts(url: URL) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in TABLES
            }
    finally:
        engine.dispose()


def test_dry_run_prints_the_plan_and_writes_nothing(
    staging_env: URL, migrated_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no dagster.yaml here: an ephemeral Dagster instance
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    out = StringIO()
    try:
        status = main(["--dry-run"], out=out)
    finally:
        reset_logging()

    printed = out.getvalue()
    assert status == 0, printed
    last = printed.strip().splitlines()[-1]
    assert last.startswith("run ")
    assert last.endswith(
        "succeeded: dry run of sample_data: would insert 17, update 0, leave 0 unchanged, "
        "reject 3 rows; nothing was written"
    )
    assert "sample_data: rows that would be rejected" in printed
    assert "| 6 | 8 | amount: " in printed  # the preview of the rejected rows
    assert counts(migrated_url) == dict.fromkeys(TABLES, 0)
