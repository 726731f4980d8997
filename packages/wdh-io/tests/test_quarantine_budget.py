"""RejectionBudget, alone and judging a streamed load before COMMIT on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import URL, create_engine, text

from wdh_io.errors import DataValidationError
from wdh_io.loader import WarehouseLoader
from wdh_io.quarantine import (
    ErrorBudgetExceededError,
    RejectedRow,
    RejectionBudget,
    RejectionReason,
    count_rejected_rows,
    write_rejected_rows,
)
from wdh_io.readers import CsvChunk, stream_csv

RUN = "exec_20261202_budget_0001"


def test_the_budget_is_judged_on_all_rows_recorded() -> None:
    budget = RejectionBudget(threshold=0.10, table="sample_data")
    assert (budget.rate, budget.exceeded) == (0.0, False)
    budget.record(rows=100, rejected=0)
    budget.record(rows=10, rejected=10)
    assert budget.rate == pytest.approx(10 / 110)
    budget.check()  # 9.09 %: within 10 %
    budget.record(rows=2, rejected=2)
    assert budget.exceeded
    with pytest.raises(ErrorBudgetExceededError) as caught:
        budget.check()
    assert isinstance(caught.value, DataValidationError)
    assert (caught.value.rows, caught.value.rejected, caught.value.threshold) == (112, 12, 0.10)
    assert str(caught.value) == (
        "[ERROR_THRESHOLD_EXCEEDED] rejected row rate 10.71% (12 of 112 input rows) exceeds "
        "error_threshold 10.00%; nothing was committed | table: sample_data"
    )


def test_exactly_at_the_threshold_is_within_it() -> None:
    budget = RejectionBudget(threshold=0.5)
    budget.record(rows=2, rejected=1)
    budget.check()
    zero = RejectionBudget(threshold=0.0)
    zero.record(rows=5, rejected=0)
    zero.check()
    zero.record(rows=1, rejected=1)
    assert zero.exceeded


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_thresholds_are_fractions(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold must be a fraction between 0 and 1"):
        RejectionBudget(threshold=threshold)


@pytest.mark.parametrize(("rows", "rejected"), [(-1, 0), (3, 4), (3, -1)])
def test_chunks_are_checked(rows: int, rejected: int) -> None:
    with pytest.raises(ValueError, match="0 <= rejected <= rows"):
        RejectionBudget(threshold=0.1).record(rows=rows, rejected=rejected)


@pytest.fixture
def engine(migrated_database_url: URL) -> Iterator[sa.Engine]:
    engine = create_engine(migrated_database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pipeline_executions (execution_id, pipeline_name, status) "
                "VALUES (:run, 'sample', 'running')"
            ),
            {"run": RUN},
        )
    try:
        yield engine
    finally:
        engine.dispose()


def _file(tmp_path: Path, rows: int, bad_from: int) -> Path:
    """A sample file whose rows from *bad_from* on have a non-numeric amount."""
    lines = [
        f"{i},name {i},{'x' if i >= bad_from else f'{i}.50'},2026-01-01\n" for i in range(rows)
    ]
    path = tmp_path / "in.csv"
    path.write_text("record_id,customer_name,amount,transaction_date\n" + "".join(lines))
    return path


def _validate(chunk: CsvChunk) -> tuple[pd.DataFrame, list[RejectedRow]]:
    ok = pd.to_numeric(chunk.frame["amount"], errors="coerce").notna()
    bad = chunk.frame[~ok]
    rejected = [
        RejectedRow(
            input_row=position,
            file_line=chunk.line_of(position),
            reason=RejectionReason(field="amount", error_code="NUMBER", message="not a number"),
            raw_values={str(k): v for k, v in values.items()},
        )
        for position, values in zip(
            bad.index.tolist(), bad.astype(object).to_dict("records"), strict=True
        )
    ]
    return chunk.frame[ok], rejected


def _streamed_load(engine: sa.Engine, path: Path, threshold: float) -> RejectionBudget:
    budget = RejectionBudget(threshold=threshold, table="sample_data")
    with WarehouseLoader(engine) as loader, loader.transaction() as tx:
        for chunk in stream_csv(path, block_size=4096):
            valid, rejected = _validate(chunk)
            tx.load_dataframe(valid, "sample_data")
            write_rejected_rows(tx.connection, rejected, execution_id=RUN, domain="sample")
            budget.record(rows=len(chunk), rejected=len(chunk) - len(valid))
        budget.check()
    return budget


def _stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        loaded = conn.execute(text("SELECT count(*) FROM sample_data")).scalar_one()
        return int(loaded), count_rejected_rows(conn, RUN)


@pytest.mark.integration
def test_a_budget_exceeded_in_the_last_chunk_rolls_back_every_chunk(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = _file(tmp_path, rows=2000, bad_from=1950)  # 2.5 %, all in the last chunk
    chunks = list(stream_csv(path, block_size=4096))
    assert len(chunks) > 10
    assert chunks[-1].start <= 1950 < chunks[-1].start + len(chunks[-1])
    with pytest.raises(ErrorBudgetExceededError, match=r"rate 2\.50% \(50 of 2,000 input rows\)"):
        _streamed_load(engine, path, threshold=0.02)
    assert _stored(engine) == (0, 0)
    budget = _streamed_load(engine, path, threshold=0.03)  # within budget: both commit
    assert (budget.rows, budget.rejected) == (2000, 50)
    assert _stored(engine) == (1950, 50)


_KILLED_LOAD = """
import os, sys, time
from pathlib import Path
import sqlalchemy as sa
from test_quarantine_budget import RUN, _validate
from wdh_io.loader import WarehouseLoader
from wdh_io.quarantine import write_rejected_rows
from wdh_io.readers import stream_csv

engine = sa.create_engine(os.environ["WDH_TEST_URL"])
with WarehouseLoader(engine) as loader, loader.transaction() as tx:
    for number, chunk in enumerate(stream_csv(Path(sys.argv[1]), block_size=4096)):
        valid, rejected = _validate(chunk)
        tx.load_dataframe(valid, "sample_data")
        write_rejected_rows(tx.connection, rejected, execution_id=RUN, domain="sample")
        if number == 3:
            print("loaded", flush=True)
            time.sleep(600)  # killed here, in the middle of the stream
"""


@pytest.mark.slow
@pytest.mark.integration
def test_a_kill_in_the_middle_of_a_streamed_load_leaves_nothing(
    engine: sa.Engine, migrated_database_url: URL, tmp_path: Path
) -> None:
    path = _file(tmp_path, rows=2000, bad_from=2000)
    lines = path.read_text().splitlines(keepends=True)
    lines[1::10] = [line.replace(".50,", "x,") for line in lines[1::10]]  # every 10th rejected
    path.write_text("".join(lines))
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_LOAD, str(path)],
        cwd=Path(__file__).parent,
        stdout=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "LOG_LEVEL": "WARNING",
            "WDH_TEST_URL": migrated_database_url.render_as_string(hide_password=False),
        },
    )
    try:
        assert child.stdout is not None
        assert "loaded" in (line.strip() for line in child.stdout)  # skips the log lines
        with engine.connect() as conn:  # four chunks are in, uncommitted
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert waiting == 1
    finally:
        child.kill()  # SIGKILL: no rollback, no clean-up in the child
        child.wait()
    assert _stored(engine) == (0, 0)
