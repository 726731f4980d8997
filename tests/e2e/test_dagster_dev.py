"""The sample job launched from a real ``dagster dev`` over its GraphQL API, as the UI does.

The test starts ``dagster dev`` itself -- in a scratch copy of ``apps/orchestrator``'s
``pyproject.toml`` and ``dagster.yaml``, on a free port, against this test's database --
launches ``sample_pipeline_job`` with the ``launchRun`` mutation the UI's Launchpad sends,
waits (bounded) for the run to finish, reads its event log, and stops the process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

pytestmark = pytest.mark.integration

JOB = "sample_pipeline_job"
PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret (never to be shown)
STARTUP_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.5

LAUNCH_RUN = """
mutation LaunchRun($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""

RUN_STATUS = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}"""

RUN_LOGS = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events { __typename ... on MessageEvent { message level stepKey } }
    }
  }
}"""

LOCATIONS = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
}"""

REPOSITORIES = """
{
  repositoriesOrError {
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
  }
}"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _default_sigint() -> None:
    # A shell that starts pytest in the background ignores SIGINT, and children inherit
    # that; dagster dev needs SIGINT/SIGTERM (mapped to SIGINT) to shut down cleanly.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class DagsterDev:
    """A running ``dagster dev`` and a GraphQL client for it."""

    process: subprocess.Popen[bytes]
    port: int
    output: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            payload: dict[str, Any] = json.loads(response.read())
        assert "errors" not in payload, payload
        data: dict[str, Any] = payload["data"]
        return data

    def log_tail(self, chars: int = 4000) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")[-chars:]

    def wait_until_loaded(self, timeout_s: float) -> None:
        """Wait for the webserver to answer and the code location to finish loading."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"dagster dev exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                errors = [
                    e["locationOrLoadError"]
                    for e in entries
                    if e["locationOrLoadError"]["__typename"] == "PythonError"
                ]
                assert not errors, errors
                return
            time.sleep(POLL_S)
        pytest.fail(f"dagster dev not ready after {timeout_s} s:\n{self.log_tail()}")

    def wait_for_run(self, run_id: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            status = self.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
            if status in {"SUCCESS", "FAILURE", "CANCELED"}:
                return str(status)
            time.sleep(POLL_S)
        pytest.fail(f"run {run_id} still {status} after {timeout_s} s:\n{self.log_tail()}")


@contextmanager
def dagster_dev(cwd: Path, env: dict[str, str], output: Path) -> Iterator[DagsterDev]:
    """Run ``dagster dev`` in *cwd* on a free port; stop its whole process group after."""
    port = free_port()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: webserver, daemon, code server
            preexec_fn=_default_sigint,  # noqa: PLW1509 - no threads are started before
        )
    try:
        yield DagsterDev(process=process, port=port, output=output)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # dagster dev's own clean shutdown
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)
    # Anything of the group still alive (a run worker, a code server) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _url_with_planted_password(url: URL) -> str:
    return url.set(password=PLANTED_PASSWORD).render_as_string(hide_password=False)


@pytest.mark.slow
def test_job_launched_from_dagster_dev_succeeds_with_logs_in_the_event_log(
    migrated_url: URL, orchestrator_cwd: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "DATABASE_URL"}}
    env |= {
        "ENVIRONMENT": "staging",
        "DATABASE_URL": _url_with_planted_password(migrated_url),
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    output = tmp_path / "dagster-dev.log"

    with dagster_dev(orchestrator_cwd, env, output) as dev:
        dev.wait_until_loaded(STARTUP_TIMEOUT_S)
        [repo] = [
            r
            for r in dev.graphql(REPOSITORIES)["repositoriesOrError"]["nodes"]
            if JOB in {job["name"] for job in r["jobs"]}
        ]
        launched = dev.graphql(
            LAUNCH_RUN,
            {
                "params": {
                    "selector": {
                        "repositoryLocationName": repo["location"]["name"],
                        "repositoryName": repo["name"],
                        "jobName": JOB,
                    },
                    "runConfigData": {},
                    "mode": "default",
                }
            },
        )["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        status = dev.wait_for_run(run_id, RUN_TIMEOUT_S)
        events = dev.graphql(RUN_LOGS, {"runId": run_id})["logsForRun"]["events"]

    messages = [e["message"] or "" for e in events if e["__typename"] == "LogMessageEvent"]
    all_text = "\n".join(e.get("message") or "" for e in events)
    assert status == "SUCCESS", all_text[-4000:]
    # structlog events of every layer, captured by the managed python loggers
    for event in ("sample.read.completed", "pipeline.completed", "database.load.completed"):
        assert any(event in m for m in messages), f"{event} missing from the event log"
    console = output.read_text(encoding="utf-8", errors="replace")
    assert PLANTED_PASSWORD not in all_text
    assert PLANTED_PASSWORD not in console
    assert "--- Logging error ---" not in console  # console and capture coexist

    # The run history is in the shipped dagster.yaml's storage, not in a temporary home.
    history = orchestrator_cwd / ".wdh" / "dagster" / "storage" / "history"
    assert (history / "runs.db").exists()
    assert (history / "runs" / f"{run_id}.db").exists()  # the run's event log

    engine = sa.create_engine(migrated_url)
    try:
        with engine.connect() as conn:
            loaded = conn.execute(sa.text("SELECT count(*) FROM sample_data")).scalar_one()
            audit = conn.execute(
                sa.text("SELECT status, execution_id, rows_output FROM pipeline_executions")
            ).one()
    finally:
        engine.dispose()
    assert loaded == 17
    assert audit.status == "success"
    assert audit.execution_id.endswith(run_id)
    assert audit.rows_output == 17
