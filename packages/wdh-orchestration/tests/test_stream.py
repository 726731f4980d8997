"""A domain's file streamed into its table on a real PostgreSQL: valid and rejected rows
committed together, the budget judged on the whole file, failed runs keeping their
rejected rows, dry runs writing nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, ExecuteInProcessResult
from sqlalchemy.engine import URL

from wdh_orchestration import (
    Domain,
    StreamedRunError,
    WarehouseResource,
    load_file,
    plan_file,
)
from wdh_orchestration.domains.sample import SAMPLE, sample_csv_path

HEADER = "record_id,customer_name,email,amount,transaction_date,region\n"
Db = Any  # the conftest's read-only database helpers

pytestmark = pytest.mark.integration


def good(i: int, name: str = "Name") -> str:
    return f"{i},{name} {i},u{i}@example.cn,{i}.50,2024-01-{i % 28 + 1:02d},华东\n"


def bad(i: int) -> str:
    return f"{i},Name {i},u{i}@example.cn,not-a-number,2024-01-01,华东\n"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


class Runs:
    """Streamed loads of the test's warehouse, each with its own audit row."""

    def __init__(self, warehouse: WarehouseResource) -> None:
        self.warehouse = warehouse
        self.count = 0

    def start(self) -> str:
        self.count += 1
        execution_id = f"exec_20260101_000000_stream{self.count}"
        self.warehouse.audit().ensure_run(execution_id=execution_id, pipeline_name="test_stream")
        return execution_id

    def load(self, path: Path, domain: Domain = SAMPLE, **options: Any) -> Any:
        execution_id = self.start()
        return execution_id, load_file(
            self.warehouse.loader(),
            self.warehouse.audit(),
            domain,
            str(path),
            execution_id=execution_id,
            **options,
        )


@pytest.fixture
def runs(warehouse: WarehouseResource) -> Runs:
    return Runs(warehouse)


def rejected(db: Db, execution_id: str) -> list[Any]:
    rows: list[Any] = db.query(
        "SELECT input_row, file_line, field, error_code, raw_values FROM rejected_rows "
        "WHERE execution_id = :e ORDER BY input_row",
        e=execution_id,
    )
    return rows


def test_valid_and_rejected_rows_commit_together(run_job: Any, db: Db) -> None:
    result = run_job()

    assert result.success
    execution = db.audit_row()
    assert db.scalar("SELECT count(*) FROM sample_data") == 17
    stored = rejected(db, execution.execution_id)
    # records 7, 10 and 14: input rows 6, 9, 13, file lines 8, 11, 15
    assert [(r.input_row, r.file_line, r.field) for r in stored] == [
        (6, 8, "amount"),
        (9, 11, "transaction_date"),
        (13, 15, "customer_name"),
    ]
    assert stored[0].raw_values["record_id"] == "7"  # the file's text, as read
    assert db.metrics(execution.execution_id)["rejected_rows"] == 3


def test_chunks_overlapped_or_not_load_the_same_rows(runs: Runs, db: Db, tmp_path: Path) -> None:
    lines = [bad(i) if i % 17 == 0 else good(i) for i in range(1, 400)]
    path = write(tmp_path / "many.csv", lines)

    first_id, first = runs.load(path, block_size=1024, overlap=False)
    table = db.query("SELECT * FROM sample_data ORDER BY record_id")
    db_rejected = rejected(db, first_id)
    with sa_engine(db) as conn:
        conn.exec_driver_sql("TRUNCATE sample_data")
    second_id, second = runs.load(path, block_size=1024, overlap=True)

    assert first.chunks > 5
    assert (first.rows_read, first.rows_failed) == (399, 23)
    assert (second.rows_read, second.rows_failed, second.chunks) == (399, 23, first.chunks)
    strip = ("loaded_at",)
    assert [_without(r, strip) for r in db.query("SELECT * FROM sample_data ORDER BY 1")] == [
        _without(r, strip) for r in table
    ]
    assert [tuple(r) for r in rejected(db, second_id)] == [tuple(r) for r in db_rejected]


def sa_engine(db: Db) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(db.url).begin()


def _without(row: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in row._mapping.items() if k not in columns}


def test_budget_exceeded_in_the_last_chunk_rolls_back_and_names_rate_and_threshold(
    runs: Runs, db: Db, tmp_path: Path
) -> None:
    strict = dataclasses.replace(SAMPLE, max_failure_rate=0.05)
    before_id, _ = runs.load(write(tmp_path / "before.csv", [good(i) for i in range(1, 201)]))
    before = db.query("SELECT record_id, customer_name, loaded_at FROM sample_data ORDER BY 1")
    # 200 changed rows, then 12 bad ones at the very end: 12 of 212 = 5.66 % > 5 %
    lines = [good(i, "Changed") for i in range(1, 201)] + [bad(i) for i in range(201, 213)]
    read_so_far: list[int] = []

    with pytest.raises(StreamedRunError) as caught:
        runs.load(
            write(tmp_path / "late.csv", lines),
            strict,
            block_size=1024,
            on_chunk=read_so_far.append,
        )

    assert len(read_so_far) > 5  # many chunks, the bad rows in the last one(s)
    assert read_so_far[-2] >= 200  # every chunk before the last was clean...
    message = str(caught.value)
    assert message.startswith("validation failed: [ERROR_THRESHOLD_EXCEEDED]")
    assert "5.66%" in message  # the rate
    assert "5.00%" in message  # the threshold
    assert "12 of 212" in message.replace(",", "")
    # the table as it was: nothing of the failed run was committed
    after = db.query("SELECT record_id, customer_name, loaded_at FROM sample_data ORDER BY 1")
    assert after == before
    # the failed run keeps its rejected rows and says why it failed
    failed_id = f"exec_20260101_000000_stream{runs.count}"
    assert [r.input_row for r in rejected(db, failed_id)] == list(range(200, 212))
    assert rejected(db, before_id) == []
    [row] = db.query("SELECT * FROM pipeline_executions WHERE execution_id = :e", e=failed_id)
    assert row.status == "failed"
    assert "[ERROR_THRESHOLD_EXCEEDED]" in row.error_message
    assert (row.rows_input, row.rows_output, row.rows_failed) == (212, 0, 12)
    metrics = db.metrics(failed_id)
    assert metrics["check.failure_rate_within_threshold.passed"] == 0
    assert "rows_inserted" not in metrics
    assert caught.value.rejected_kept == 12


def test_a_load_error_keeps_the_rejected_rows_and_fails_the_run(
    run_job: Any, db: Db, tmp_path: Path
) -> None:
    # a bad row, then a key twice: the upsert refuses the file as a whole
    path = write(tmp_path / "dup.csv", [bad(1), good(2), good(2)])

    result = run_job(path)

    assert not result.success
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    row = db.audit_row()
    assert row.status == "failed"
    assert "cannot load the rows:" in row.error_message
    assert [(r.input_row, r.field) for r in rejected(db, row.execution_id)] == [(0, "amount")]


def observation(result: ExecuteInProcessResult) -> dict[str, Any]:
    [event] = [e for e in result.all_events if e.event_type == DagsterEventType.ASSET_OBSERVATION]
    metadata = event.asset_observation_data.asset_observation.metadata
    return {k: v.value for k, v in metadata.items()}


def test_dry_run_reports_counts_and_previews_and_writes_nothing(run_job: Any, db: Db) -> None:
    result = run_job(sample_csv_path(), config={"dry_run": True})

    assert result.success
    assert result.get_asset_materialization_events() == []  # the table was not materialized
    plan = observation(result)
    assert plan["dry_run"] is True
    assert (plan["rows_read"], plan["rows_insert"], plan["rows_rejected"]) == (20, 17, 3)
    assert (plan["rows_update"], plan["rows_unchanged"]) == (0, 0)
    assert "| 6 | 8 | amount: " in plan["rejected_preview"]
    for table in ("sample_data", "rejected_rows", "pipeline_executions", "data_quality_metrics"):
        assert db.scalar(f"SELECT count(*) FROM {table}") == 0, table


def test_dry_run_of_a_broken_file_fails_in_one_line(run_job: Any, tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(HEADER + "1,a,b,c,d,e,f,g\n", encoding="utf-8")

    result = run_job(path, config={"dry_run": True})

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("dry run: cannot read the input file: ")
    assert str(path) in description


def test_plan_file_names_rows_to_insert_and_update(
    runs: Runs, warehouse: WarehouseResource, db: Db, tmp_path: Path
) -> None:
    runs.load(write(tmp_path / "first.csv", [good(i) for i in range(1, 4)]))
    path = write(tmp_path / "next.csv", [good(1), good(2, "Changed"), good(9), bad(10)])

    dry = plan_file(warehouse.loader(), SAMPLE, str(path), execution_id="exec_plan")

    plan = dry.plan
    assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (1, 1, 1)
    assert (dry.rows_read, dry.rows_failed) == (4, 1)
    assert db.scalar("SELECT count(*) FROM sample_data") == 3
    assert db.scalar("SELECT count(*) FROM rejected_rows") == 0


def test_plan_file_tells_updated_from_unchanged_rows(
    runs: Runs, warehouse: WarehouseResource, tmp_path: Path
) -> None:
    runs.load(write(tmp_path / "first.csv", [good(i) for i in range(1, 4)]))
    path = write(tmp_path / "next.csv", [good(1), good(2, "Changed"), good(9)])

    plan = plan_file(warehouse.loader(), SAMPLE, str(path), execution_id="exec_plan").plan

    assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (1, 1, 1)
    assert list(plan.updates["record_id"]) == [2]
    assert list(plan.unchanged["record_id"]) == [1]


def test_reloading_an_identical_file_writes_no_row(runs: Runs, db: Db, tmp_path: Path) -> None:
    path = write(tmp_path / "same.csv", [good(i) for i in range(1, 50)])
    runs.load(path)
    before = db.query("SELECT record_id, loaded_at, xmin::text AS version FROM sample_data")

    _, again = runs.load(path)

    assert (again.result.rows_inserted, again.result.rows_updated) == (0, 0)
    assert again.rows_unchanged == 49
    after = db.query("SELECT record_id, loaded_at, xmin::text AS version FROM sample_data")
    assert after == before  # not rewritten: same loaded_at, same row versions


# --- in a process of its own: killed, or with less memory than the file --------------

CHILD = Path(__file__).with_name("stream_child.py")


def child_env(url: URL) -> dict[str, str]:
    return {**os.environ, "WDH_TEST_DATABASE_URL": url.render_as_string(hide_password=False)}


def sample_file(path: Path, rows: int, *, bad_every: int = 50) -> Path:
    """*rows* sample-shaped rows, one in *bad_every* invalid, written in blocks."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        block: list[str] = []
        for i in range(1, rows + 1):
            block.append(bad(i) if i % bad_every == 0 else good(i))
            if len(block) == 10_000:
                out.write("".join(block))
                block.clear()
        out.write("".join(block))
    return path


@pytest.mark.slow
def test_a_killed_streamed_load_leaves_neither_data_nor_rejected_rows(
    migrated_url: URL, db: Db, tmp_path: Path
) -> None:
    path = sample_file(tmp_path / "big.csv", 3_000, bad_every=10)
    child = subprocess.Popen(
        [sys.executable, str(CHILD), "exec_killed", str(path), "1024", "--pause-after", "4"],
        env=child_env(migrated_url),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        seen = [child.stdout.readline() for _ in range(4)]
        assert all(line.startswith("chunk ") for line in seen), seen
        # The child sits in its open load transaction, holding chunks of rows and
        # rejected rows that nobody else can see yet.
        assert (
            db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'idle in transaction'"
            )
            == 1
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)

    assert child.returncode == -signal.SIGKILL
    assert db.scalar("SELECT count(*) FROM sample_data") == 0
    assert db.scalar("SELECT count(*) FROM rejected_rows") == 0
    # the audit row, committed before the load began, still says the run never ended
    assert db.scalar("SELECT status FROM pipeline_executions") == "running"


@pytest.mark.slow
def test_a_file_larger_than_the_memory_left_to_the_load_loads(
    migrated_url: URL, db: Db, tmp_path: Path
) -> None:
    headroom = 16 << 20

    def run(path: Path, execution_id: str, limit: int = 0) -> list[str]:
        done = subprocess.run(
            [sys.executable, str(CHILD), execution_id, str(path), str(1 << 20)]
            + (["--address-space", str(limit)] if limit else []),
            env=child_env(migrated_url),
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.splitlines()

    # What the load needs of address space on a file of a few chunks...
    small = sample_file(tmp_path / "small.csv", 40_000)
    calibrated = int(run(small, "exec_small")[-1].split()[1])
    # ...and a file twice the headroom left above that, loaded under the cap.
    big = sample_file(tmp_path / "big.csv", 600_000)
    assert big.stat().st_size > 2 * headroom

    lines = run(big, "exec_big", calibrated + headroom)

    # the first 40,000 rows are those of the small file: loaded already, unchanged
    assert lines[-2] == "loaded 548800 0 39200 12000"
    assert db.scalar("SELECT count(*) FROM sample_data") == 600_000 - 12_000
    assert db.scalar("SELECT count(*) FROM rejected_rows WHERE execution_id = 'exec_big'") == 12_000


def test_a_file_with_only_its_header_loads_nothing_and_succeeds(
    runs: Runs, db: Db, tmp_path: Path
) -> None:
    _, loaded = runs.load(write(tmp_path / "empty.csv", []))

    assert (loaded.rows_read, loaded.rows_failed, loaded.chunks) == (0, 0, 1)
    assert loaded.result.rows_written == 0
    assert {c.name: o.passed for c, o in loaded.outcomes}["non_empty_load"] is False
    assert db.scalar("SELECT count(*) FROM sample_data") == 0


def test_a_file_without_a_required_column_fails_validation_and_keeps_nothing(
    runs: Runs, db: Db, tmp_path: Path
) -> None:
    path = tmp_path / "no_amount.csv"
    path.write_text(
        "record_id,customer_name,email,transaction_date,region\n1,A,a@b.cn,2024-01-01,x\n",
        encoding="utf-8",
    )

    with pytest.raises(StreamedRunError) as caught:
        runs.load(path)

    message = str(caught.value)
    assert message.startswith("validation failed: [PIPELINE_FAILED] ")  # no class name
    assert (
        "Missing required column(s): amount; columns present: record_id, customer_name, "
        "email, transaction_date, region |"  # the pipeline's own row column is not listed
    ) in message
    assert db.scalar("SELECT status FROM pipeline_executions") == "failed"
    assert db.scalar("SELECT count(*) FROM rejected_rows") == 0


def test_a_dry_run_against_an_unknown_database_says_it_cannot_connect(
    migrated_url: URL, tmp_path: Path
) -> None:
    unknown = migrated_url.set(database="wdh_no_such_db")
    warehouse = WarehouseResource(database_url=unknown.render_as_string(hide_password=False))
    path = write(tmp_path / "file.csv", [good(1)])

    with pytest.raises(StreamedRunError) as caught:
        plan_file(warehouse.loader(), SAMPLE, str(path), execution_id="exec_plan")

    assert str(caught.value).startswith("cannot connect to the database: ")
    assert 'database "wdh_no_such_db" does not exist' in str(caught.value)
