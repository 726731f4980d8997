"""``python -m wdh_orchestrator.run``: each event once, one line each, and a last line that
says whether the run succeeded; bad input ends in one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


def run_cli(cwd: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "DATABASE_URL"}}
    env |= {"LOG_FORMAT": "pretty", "PYTHONUNBUFFERED": "1"} | environ
    return subprocess.run(
        [sys.executable, "-m", "wdh_orchestrator.run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows it
        text=True,
        timeout=180,
        check=False,
    )


def staging(url: URL) -> dict[str, str]:
    return {
        "ENVIRONMENT": "staging",
        "DATABASE_URL": url.set(password=PLANTED).render_as_string(hide_password=False),
    }


def test_a_run_prints_each_event_once_and_ends_with_its_outcome(
    migrated_url: URL, orchestrator_cwd: Path
) -> None:
    completed = run_cli(orchestrator_cwd, **staging(migrated_url))

    output = completed.stdout
    assert completed.returncode == 0, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[-1].startswith("run ")
    assert lines[-1].endswith("succeeded: sample_data materialized")
    for event in ("audit.run.started", "pipeline.completed", "database.load.completed"):
        assert sum(event in line for line in lines) == 1, event  # once, not twice
    assert PLANTED not in output
    assert "Traceback" not in output


def test_a_failed_run_ends_with_its_reason_in_one_line(
    migrated_url: URL, orchestrator_cwd: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("record_id,customer_name\n1,a,b,c\n", encoding="utf-8")

    completed = run_cli(orchestrator_cwd, "--file", str(bad), **staging(migrated_url))

    output = completed.stdout
    assert completed.returncode == 1
    last = output.strip().splitlines()[-1]
    assert last.startswith("run ")
    assert " failed: cannot read the input file: " in last
    assert str(bad) in last
    assert "Traceback" not in output
    assert "Stack Trace" not in output


def test_invalid_settings_are_one_line(orchestrator_cwd: Path) -> None:
    completed = run_cli(orchestrator_cwd, ENVIRONMENT="prod")

    assert completed.returncode == 2
    assert (completed.stdout).strip() == (
        "invalid settings: DATABASE_URL is required when ENVIRONMENT=prod "
        "(only dev may omit it to use the embedded database)"
    )
