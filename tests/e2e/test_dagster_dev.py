"""The sample domain driven through a real ``dagster dev`` over its GraphQL API, as the UI does.

The module starts ``dagster dev`` once -- in a scratch copy of ``apps/orchestrator``'s
``pyproject.toml`` and ``dagster.yaml``, on a free port, against the module's own migrated
database and landing directory -- and stops its process group after the last test (a
start costs tens of seconds of CPU). ``dagster dev`` runs the daemon too, so the sensors
(on by default) and backfills run as they would for a user -- only sooner: every sensor
evaluates on each pass of the daemon (``WDH_SENSOR_INTERVAL_S=1``) and the run queue is
polled every second, so the tests wait on the daemon's own loops (5 s for sensors, 30 s
for backfills), not on the app's intervals.

The tests share that server, its run history and its database, so each one starts from
an empty warehouse (every table but ``alembic_version`` truncated) and an empty landing
directory, and waits for its own runs to end; they look runs up by their own run ids,
tags or backfill ids. They are slow all the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from pytest_postgresql.executors import NoopExecutor
from sqlalchemy.engine import URL

pytestmark = pytest.mark.integration

ORCHESTRATOR_APP = Path(__file__).resolve().parents[2] / "apps" / "orchestrator"

#: the root conftest's ``clone_database`` fixture
CloneDatabase = Callable[[NoopExecutor, str], AbstractContextManager[URL]]

JOB = "sample_pipeline_job"
LANDING_SENSOR = "sample_landing_sensor"
PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret (never to be shown)
STARTUP_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 300.0  # generous: a machine under load launches runs slowly
STOP_TIMEOUT_S = 30.0
POLL_S = 0.5
#: every sensor's minimum interval here (WDH_SENSOR_INTERVAL_S): the daemon then
#: evaluates each sensor on every pass of its loop (every 5 s) instead of every 15 s
SENSOR_INTERVAL_S = 1
#: added to the scratch copy of dagster.yaml: the run queue (dagster dev's default
#: coordinator, as shipped) is polled every second instead of every 5 s
DEQUEUE_EVERY_SECOND = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""

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

TERMINATE = """
mutation Terminate($runId: String!, $policy: TerminateRunPolicy) {
  terminateRun(runId: $runId, terminatePolicy: $policy) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""

RUNS = """
{
  runsOrError {
    ... on Runs { results { runId status tags { key value } } }
  }
}"""

CHECKS = """
query Checks($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on AssetCheckEvaluationEvent { evaluation { checkName success } }
        ... on MaterializationEvent { metadataEntries { label } }
        ... on ExecutionStepFailureEvent { error { message } }
      }
    }
  }
}"""

SENSOR = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      minIntervalSeconds
      sensorState { ticks(limit: 20) { status cursor runIds } }
    }
  }
}"""

REPOSITORIES = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name location { name } jobs { name } sensors { name } }
    }
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


def _environment(url: URL, landing: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "DATABASE_URL"}}
    return env | {
        "ENVIRONMENT": "staging",
        "DATABASE_URL": _url_with_planted_password(url),
        "WDH_LANDING_DIR": str(landing),
        "LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
        "WDH_SENSOR_INTERVAL_S": str(SENSOR_INTERVAL_S),
    }


def _repository(dev: DagsterDev) -> dict[str, Any]:
    [repo] = [
        r
        for r in dev.graphql(REPOSITORIES)["repositoriesOrError"]["nodes"]
        if JOB in {job["name"] for job in r["jobs"]}
    ]
    found: dict[str, Any] = repo
    return found


def _launch(dev: DagsterDev, run_config: dict[str, Any]) -> str:
    repo = _repository(dev)
    launched = dev.graphql(
        LAUNCH_RUN,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": repo["location"]["name"],
                    "repositoryName": repo["name"],
                    "jobName": JOB,
                },
                "runConfigData": run_config,
                "mode": "default",
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def _sensor(dev: DagsterDev, name: str) -> dict[str, Any]:
    """The sensor *name* of the job's repository: its interval and its latest ticks."""
    repo = _repository(dev)
    assert name in {sensor["name"] for sensor in repo["sensors"]}, repo["sensors"]
    selector = {
        "repositoryLocationName": repo["location"]["name"],
        "repositoryName": repo["name"],
        "sensorName": name,
    }
    found = dev.graphql(SENSOR, {"selector": selector})["sensorOrError"]
    assert found["__typename"] == "Sensor", found
    sensor: dict[str, Any] = found
    return sensor


def _libpq(url: URL) -> dict[str, Any]:
    query = dict(url.query)
    return {
        "host": query.get("host", url.host),
        "port": int(query.get("port", url.port or 5432)),  # type: ignore[arg-type]
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }


def _sql(url: URL, statement: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(statement), params))
    finally:
        engine.dispose()


def _wait(what: str, probe: Any, dev: DagsterDev, timeout_s: float = RUN_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    pytest.fail(f"{what} not seen after {timeout_s} s:\n{dev.log_tail()}")


@dataclass
class Shared:
    """The module's ``dagster dev``, and what it was started on."""

    dev: DagsterDev
    url: URL  # its database (migrated)
    landing: Path  # its WDH_LANDING_DIR
    cwd: Path  # its working directory (the scratch copy of apps/orchestrator)
    output: Path  # its console output
    earlier_runs: frozenset[str] = frozenset()  # run ids launched before this test

    def audit_rows(self, columns: str) -> list[Any]:
        """*columns* of every ``pipeline_executions`` row except those of earlier tests'
        runs: a run-status sensor may still close one of those (and so write its row)
        after the warehouse was emptied for this test."""
        rows = _sql(self.url, f"SELECT execution_id AS of_run, {columns} FROM pipeline_executions")
        return [
            row for row in rows if not any(row.of_run.endswith(run) for run in self.earlier_runs)
        ]


@pytest.fixture(scope="module")
def shared(
    wdh_migrated_proc: NoopExecutor,
    clone_database: CloneDatabase,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    """One ``dagster dev`` for the module, on a migrated database of its own."""
    root = tmp_path_factory.mktemp("dagster-dev")
    cwd = root / "orchestrator"
    cwd.mkdir()
    for name in ("pyproject.toml", "dagster.yaml"):
        shutil.copy2(ORCHESTRATOR_APP / name, cwd / name)
    with (cwd / "dagster.yaml").open("a", encoding="utf-8") as instance:
        instance.write(DEQUEUE_EVERY_SECOND)
    landing = root / "landing"
    landing.mkdir()
    output = root / "dagster-dev.log"
    with (
        clone_database(wdh_migrated_proc, "dagster_dev") as url,
        dagster_dev(cwd, _environment(url, landing), output) as dev,
    ):
        dev.wait_until_loaded(STARTUP_TIMEOUT_S)
        yield Shared(dev=dev, url=url, landing=landing, cwd=cwd, output=output)


_landing_dirs = itertools.count()


@pytest.fixture
def dagster(shared: Shared) -> Shared:
    """The module's ``dagster dev``, with an empty warehouse and an empty landing directory:
    what the tests before left (their runs have ended) is gone. The landing directory's
    old files move out of it (a move is no new file for the sensor)."""
    assert shared.dev.process.poll() is None, shared.dev.log_tail()
    moved = shared.landing.parent / f"landed-before-{next(_landing_dirs)}"
    moved.mkdir()
    for path in shared.landing.iterdir():
        path.rename(moved / path.name)
    tables = [
        row.tablename
        for row in _sql(
            shared.url,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'",
        )
    ]
    engine = sa.create_engine(shared.url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        engine.dispose()
    earlier = {run["runId"] for run in shared.dev.graphql(RUNS)["runsOrError"]["results"]}
    return dataclasses.replace(shared, earlier_runs=frozenset(earlier))


@pytest.mark.slow(weight=4)  # the module's dagster dev: see conftest.py
def test_job_launched_from_dagster_dev_succeeds_with_logs_in_the_event_log(
    dagster: Shared,
) -> None:
    dev, migrated_url, output = dagster.dev, dagster.url, dagster.output
    run_id = _launch(dev, {})  # the Launchpad's empty config: the shipped sample file
    status = dev.wait_for_run(run_id, RUN_TIMEOUT_S)
    events = dev.graphql(RUN_LOGS, {"runId": run_id})["logsForRun"]["events"]
    checks = dev.graphql(CHECKS, {"runId": run_id})["logsForRun"]["events"]

    messages = [e["message"] or "" for e in events if e["__typename"] == "LogMessageEvent"]
    all_text = "\n".join(e.get("message") or "" for e in events)
    assert status == "SUCCESS", all_text[-4000:]
    # structlog events of every layer, captured by the managed python loggers
    for event in ("domain.materialized", "pipeline.completed", "database.load.completed"):
        assert any(event in m for m in messages), f"{event} missing from the event log"
    evaluations = {
        e["evaluation"]["checkName"]: e["evaluation"]["success"]
        for e in checks
        if e["__typename"] == "AssetCheckEvaluationEvent"
    }
    assert evaluations == {
        "failure_rate_within_threshold": True,
        "upsert_keys_unique": True,
        "non_empty_load": True,
    }
    [materialized] = [e for e in checks if e["__typename"] == "MaterializationEvent"]
    labels = {entry["label"] for entry in materialized["metadataEntries"]}
    assert {"rows_read", "rows_valid", "rows_failed", "rows_inserted", "rows_updated"} <= labels
    assert {"failed_rows_preview", "load_method", "load_duration_ms"} <= labels
    console = output.read_text(encoding="utf-8", errors="replace")
    assert PLANTED_PASSWORD not in all_text
    assert PLANTED_PASSWORD not in console
    assert "--- Logging error ---" not in console  # console and capture coexist

    # The run history is in the shipped dagster.yaml's storage, not in a temporary home.
    history = dagster.cwd / ".wdh" / "dagster" / "storage" / "history"
    assert (history / "runs.db").exists()
    assert (history / "runs" / f"{run_id}.db").exists()  # the run's event log

    [loaded] = _sql(migrated_url, "SELECT count(*) FROM sample_data")
    [audit] = dagster.audit_rows("status, execution_id, rows_output")
    assert loaded[0] == 17
    assert audit.status == "success"
    assert audit.execution_id.endswith(run_id)
    assert audit.rows_output == 17


@pytest.mark.slow(weight=4)  # the module's dagster dev: see conftest.py
def test_a_failed_run_shows_one_line_in_the_ui(dagster: Shared, tmp_path: Path) -> None:
    dev = dagster.dev
    missing = tmp_path / "missing.csv"

    run_id = _launch(dev, {"ops": {"sample_data": {"config": {"path": str(missing)}}}})
    status = dev.wait_for_run(run_id, RUN_TIMEOUT_S)
    events = dev.graphql(CHECKS, {"runId": run_id})["logsForRun"]["events"]

    assert status == "FAILURE"
    [failure] = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    message = failure["error"]["message"].strip()
    assert message.endswith(f"cannot read the input file: file not found | file: {missing}")
    assert "\n" not in message  # one line; no cause chain under it
    [audit] = dagster.audit_rows("status, error_message")
    assert audit.status == "failed"


@pytest.mark.slow(weight=4)  # the module's dagster dev: see conftest.py
def test_cancelled_runs_landed_files_and_backfills(dagster: Shared) -> None:
    dev, migrated_url, landing = dagster.dev, dagster.url, dagster.landing

    # 1. A cancelled run: its audit row is closed by the run-status sensor. The test
    # holds a lock on the table, so the run waits in its load while it is cancelled
    # (Terminate, then the UI's "Force termination": a step blocked in the database
    # does not see the interrupt). The cancelled run, once it gets the lock, finds its
    # audit row closed and rolls its load back: nothing of it is committed.
    locker = psycopg.connect(**_libpq(migrated_url))
    locker.execute("LOCK TABLE sample_data IN ACCESS EXCLUSIVE MODE")
    try:
        run_id = _launch(dev, {})
        _wait(
            "the run waiting for the table lock",
            lambda: _sql(
                migrated_url,
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()",
            ),
            dev,
        )
        force = {"runId": run_id, "policy": "MARK_AS_CANCELED_IMMEDIATELY"}
        terminated = dev.graphql(TERMINATE, force)["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated
        assert dev.wait_for_run(run_id, RUN_TIMEOUT_S) == "CANCELED"
        [closed] = _wait(
            "the closed audit row",
            lambda: _sql(
                migrated_url,
                "SELECT status, error_message FROM pipeline_executions "
                "WHERE execution_id LIKE :id AND status <> 'running'",
                id=f"%{run_id}",
            ),
            dev,
        )
    finally:
        locker.rollback()
        locker.close()
    assert (closed.status, closed.error_message) == (
        "failed",
        "run cancelled in Dagster before it finished",
    )

    def step_failed() -> list[str]:
        events = dev.graphql(CHECKS, {"runId": run_id})["logsForRun"]["events"]
        return [
            e["error"]["message"] for e in events if e["__typename"] == "ExecutionStepFailureEvent"
        ]

    [late] = _wait("the cancelled run's own end", step_failed, dev)
    assert "no running execution" in late
    assert _sql(migrated_url, "SELECT count(*) FROM sample_data")[0][0] == 0

    # 2. Files landing: one run per file, the same content twice is one run.
    # (Every sensor evaluates at WDH_SENSOR_INTERVAL_S here, not at its default.)
    for name in (LANDING_SENSOR, "audit_failed_runs", "audit_cancelled_runs"):
        assert _sensor(dev, name)["minIntervalSeconds"] == SENSOR_INTERVAL_S, name
    header = "record_id,customer_name,email,amount,transaction_date,region\n"
    (landing / "sample_2024-01.csv").write_text(header + "101,A,,1.00,2024-01-01,\n")
    (landing / "sample_2024-02.csv").write_text(header + "201,B,,2.00,2024-02-01,\n")
    shutil.copy(landing / "sample_2024-01.csv", landing / "sample_2024-01-copy.csv")

    def saw_the_copy() -> list[dict[str, Any]]:
        # A finished tick of the landing sensor whose cursor (the files it has seen) names
        # the copy, written last: that evaluation saw all three files, and a tick ends
        # after the runs it requested were created (queued at least).
        ticks = _sensor(dev, LANDING_SENSOR)["sensorState"]["ticks"]
        return [
            tick
            for tick in ticks
            if tick["status"] in {"SUCCESS", "SKIPPED"}
            and "sample_2024-01-copy.csv" in json.loads(tick["cursor"] or "{}")
        ]

    _wait("a landing sensor tick that saw the copy", saw_the_copy, dev)

    def file_runs() -> list[dict[str, Any]]:
        runs = dev.graphql(RUNS)["runsOrError"]["results"]
        return [r for r in runs if any(t["key"] == "wdh/file_sha256" for t in r["tags"])]

    # 3. A backfill of both partitions (the tick above added them), run by the daemon.
    # Launched now, it overlaps the landed files' runs (the backfill daemon picks it up
    # on its next pass, up to 30 s away); both upsert the same rows, so the outcome is
    # the same in any order.
    backfill = dev.graphql(
        BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": ["sample_data"]}],
                "partitionNames": ["sample_2024-01.csv", "sample_2024-02.csv"],
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill

    def sensor_runs() -> list[dict[str, Any]]:
        found = file_runs()
        done = all(r["status"] in {"SUCCESS", "FAILURE"} for r in found)
        return found if len(found) >= 2 and done else []

    landed = _wait("two sensor runs", sensor_runs, dev)
    assert sorted(r["status"] for r in landed) == ["SUCCESS", "SUCCESS"]
    # the copy started no run: the tick that saw it is over, later ones skip it
    assert len(file_runs()) == 2, file_runs()

    def backfill_runs() -> list[dict[str, Any]]:
        runs = dev.graphql(RUNS)["runsOrError"]["results"]
        mine = [
            r
            for r in runs
            if {"key": "dagster/backfill", "value": backfill["backfillId"]} in r["tags"]
        ]
        done = all(r["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for r in mine)
        return mine if len(mine) == 2 and done else []

    backfilled = _wait("the backfill's two runs", backfill_runs, dev)
    assert [r["status"] for r in backfilled] == ["SUCCESS", "SUCCESS"]

    rows = _sql(migrated_url, "SELECT record_id FROM sample_data ORDER BY 1")
    assert [r.record_id for r in rows] == [101, 201]
    statuses = sorted(row.status for row in dagster.audit_rows("status"))
    assert statuses == ["failed"] + ["success"] * 4
