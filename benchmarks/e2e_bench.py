"""File → validated → table, end to end, against ``psql \\copy`` of the same rows.

    uv run python benchmarks/e2e_bench.py [--rows N] [--block-size BYTES] [--repeat R]
                                          [--database-url URL] [--skip-memory]

Measured in one run, on the same file:

* the floor: ``psql \\copy`` of the file's valid rows (a CSV of exactly those rows,
  written before the clock starts) into ``sample_data``;
* the platform's streamed load, the one the sample domain's asset runs
  (``wdh_orchestration.load_file``): ``stream_csv`` chunk by chunk, the domain's
  column-wise validation (``CheckRequiredColumnsStep`` + ``ValidateSchemaStep`` of
  ``SampleRecord``), the valid rows upserted on ``record_id`` (into the emptied table,
  as the floor: copied straight in), the rejected rows written to ``rejected_rows``,
  the budget judged on the whole file, the checks, metrics and audit row -- one
  transaction; with the database work overlapped with validation (the default) and
  without (``overlap=False``), to show what overlap buys;
* the same file loaded again into the table it was just loaded into: staged and
  merged, every row unchanged (what an upsert into a table with rows costs; not in the
  ratio);
* a dry run of the same file (``wdh_orchestration.plan_file``) against the same (empty)
  table the load is timed on;
* the split: stream only, stream + validation (no database);
* the peak resident memory (``ru_maxrss``) of a fresh interpreter running the streamed
  load of the file at 1x and at 4x the rows.

The input is sample-shaped (``record_id, customer_name, email, amount,
transaction_date, region``), Chinese and Latin names (some quoted, holding a comma),
1 % invalid rows (a non-numeric amount, a bad date or an empty name). Without
``--database-url`` a throwaway database is created on 127.0.0.1:5432 (user
``postgres``) and dropped afterwards; a ``--database-url`` database is migrated to
head and its ``sample_data`` is TRUNCATED (give it one you can throw away). The last
line is machine-readable: ``e2e_vs_floor=… mem_4x_vs_1x=… dry_run_vs_load=…``
(goals: ≥ 0.5, ≤ 1.2, ≤ 1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

from wdh_io.audit import AuditRecorder
from wdh_io.database import upgrade_database
from wdh_io.database._engine import create_engine
from wdh_io.loader import WarehouseLoader
from wdh_io.readers import DEFAULT_BLOCK_SIZE, stream_csv
from wdh_logging import configure_logging
from wdh_orchestration import StreamedLoad, load_file, plan_file
from wdh_orchestration._validation import build_chunk_pipeline
from wdh_orchestration.domains.sample import SAMPLE

COLUMNS = ["record_id", "customer_name", "email", "amount", "transaction_date", "region"]
_NAMES = ["张伟", "Alice Johnson", "李娜", "Bob Smith", "王芳", "O'Brien, Pat", "陈静, 上海"]
_REGIONS = ["华东", "North", "华北", "South", ""]


def write_sample(path: Path, rows: int, *, seed: int = 11) -> tuple[Path, int]:
    """A sample-shaped CSV with 1 % invalid rows, and a CSV of its valid rows only.

    Returns (the valid-rows file, the number of valid rows).
    """
    rnd = random.Random(seed)
    valid_path = path.with_name(path.stem + "_valid.csv")
    header = ",".join(COLUMNS) + "\n"
    valid = 0
    with path.open("w", encoding="utf-8") as out, valid_path.open("w", encoding="utf-8") as ok:
        out.write(header)
        ok.write(header)
        for i in range(rows):
            name = rnd.choice(_NAMES)
            amount = f"{rnd.randint(0, 99_999)}.{rnd.randint(0, 99):02d}"
            date = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            bad = rnd.random() < 0.01
            if bad:
                kind = rnd.randrange(3)
                amount = "not-a-number" if kind == 0 else amount
                date = "2024-13-45" if kind == 1 else date
                name = "" if kind == 2 else name
            quoted = f'"{name}"' if "," in name else name
            line = f"{i + 1},{quoted},user{i}@example.com,{amount},{date},{rnd.choice(_REGIONS)}\n"
            out.write(line)
            if not bad:
                ok.write(line)
                valid += 1
    return valid_path, valid


# --------------------------------------------------------------------------- runs


@contextlib.contextmanager
def database(url: str | None) -> Iterator[sa.Engine]:
    """The given database, or a throwaway one; migrated to head."""
    if url is not None:
        engine = create_engine(url, pool_size=2)
        upgrade_database(engine.url)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"wdh_e2e_bench_{os.getpid()}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(admin.url.set(database=name), pool_size=2)
    try:
        upgrade_database(engine.url)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def reset(engine: sa.Engine) -> None:
    """Empty sample_data and remove this benchmark's runs (other runs are left alone)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE sample_data")
        conn.exec_driver_sql(
            "DELETE FROM rejected_rows WHERE execution_id IN "
            "(SELECT execution_id FROM pipeline_executions WHERE pipeline_name = 'e2e_bench')"
        )
        conn.exec_driver_sql(
            "DELETE FROM data_quality_metrics WHERE execution_id IN "
            "(SELECT execution_id FROM pipeline_executions WHERE pipeline_name = 'e2e_bench')"
        )
        conn.exec_driver_sql("DELETE FROM pipeline_executions WHERE pipeline_name = 'e2e_bench'")


def psql_copy(engine: sa.Engine, valid_file: Path) -> None:
    """The floor: ``psql \\copy`` of the valid rows (the password travels in PGPASSWORD)."""
    url = engine.url
    env = {**os.environ, "PGPASSWORD": url.password or ""} if url.password else dict(os.environ)
    command = (
        f"\\copy sample_data ({', '.join(COLUMNS)}) FROM '{valid_file}' "
        "WITH (FORMAT csv, HEADER true)"
    )
    # psql from PATH: the floor is the client a user would run.
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [  # noqa: S607
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "-d",
            url.database or "postgres",
            "-c",
            command,
        ],
        check=True,
        env=env,
        capture_output=True,
    )


def _run_id() -> str:
    return f"exec_bench_{uuid.uuid4().hex[:12]}"


def streamed_load(
    engine: sa.Engine, path: Path, block_size: int, *, overlap: bool = True
) -> StreamedLoad:
    """The sample domain's streamed load of *path*, with its own audit row."""
    run_id = _run_id()
    audit = AuditRecorder(engine)
    audit.ensure_run(execution_id=run_id, pipeline_name="e2e_bench", input_file_path=str(path))
    with WarehouseLoader(engine) as loader:
        return load_file(
            loader,
            audit,
            SAMPLE,
            str(path),
            execution_id=run_id,
            block_size=block_size,
            overlap=overlap,
        )


def dry_run(engine: sa.Engine, path: Path, block_size: int) -> object:
    """The sample domain's dry run of *path* (nothing is written)."""
    with WarehouseLoader(engine) as loader:
        return plan_file(loader, SAMPLE, str(path), execution_id=_run_id(), block_size=block_size)


def stream_only(path: Path, block_size: int) -> int:
    return sum(len(chunk) for chunk in stream_csv(path, block_size=block_size))


def stream_and_validate(path: Path, block_size: int) -> int:
    pipeline = build_chunk_pipeline(SAMPLE)
    return sum(
        len(pipeline.run(chunk.frame).output_data)
        for chunk in stream_csv(path, block_size=block_size)
    )


def best(repeat: int, prepare: Callable[[], None], run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        prepare()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


# --------------------------------------------------------------------------- memory

_MEMORY_CHILD = "--memory-child"
_URL_VARIABLE = "WDH_E2E_BENCH_DATABASE_URL"


def memory_child(path: Path, url: str, block_size: int) -> None:
    """Run the streamed load once; print this process's peak resident set in bytes."""
    import resource

    engine = create_engine(url, pool_size=2)
    try:
        reset(engine)
        streamed_load(engine, path, block_size)
        reset(engine)
    finally:
        engine.dispose()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # Linux: KiB


def peak_memory(path: Path, engine: sa.Engine, block_size: int) -> int:
    # The URL (it may hold a password) goes through the environment, not argv (ps).
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run(  # noqa: S603 - this script, fixed arguments, no shell
        [sys.executable, __file__, _MEMORY_CHILD, str(path), str(block_size)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "LOG_LEVEL": "WARNING", _URL_VARIABLE: url},
    )
    return int(done.stdout.split()[-1])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    configure_logging(level="WARNING")

    with tempfile.TemporaryDirectory(prefix="wdh-e2e-") as tmp, database(args.database_url) as db:
        path = Path(tmp) / "sample.csv"
        valid_file, valid_rows = write_sample(path, args.rows)
        size_mib = path.stat().st_size / (1 << 20)
        print(f"file: {args.rows:,} rows ({size_mib:.1f} MiB), {args.rows - valid_rows:,} invalid")

        def clean() -> None:
            reset(db)

        floor = best(args.repeat, clean, lambda: psql_copy(db, valid_file))
        read = best(args.repeat, lambda: None, lambda: stream_only(path, args.block_size))
        validated = best(
            args.repeat, lambda: None, lambda: stream_and_validate(path, args.block_size)
        )
        outcome: list[StreamedLoad] = []
        sequential = best(
            args.repeat,
            clean,
            lambda: outcome.append(streamed_load(db, path, args.block_size, overlap=False)),
        )
        e2e = best(
            args.repeat, clean, lambda: outcome.append(streamed_load(db, path, args.block_size))
        )
        loaded = outcome[-1]
        written = loaded.result.rows_inserted + loaded.result.rows_updated
        if written != valid_rows:
            print(f"ERROR: loaded {written:,} rows, the file has {valid_rows:,} valid ones")
            return 1
        # The same file again, into the table it was just loaded into: staged and merged,
        # every row unchanged (not part of the ratio: shown for what an upsert costs).
        reloads: list[StreamedLoad] = []
        reload = best(
            args.repeat,
            lambda: None,
            lambda: reloads.append(streamed_load(db, path, args.block_size)),
        )
        if reloads[-1].rows_unchanged != valid_rows:
            print(f"ERROR: reload left {reloads[-1].rows_unchanged:,} rows unchanged")
            return 1
        # Against the table the load was timed on (empty): the same rows to plan.
        planned = best(args.repeat, clean, lambda: dry_run(db, path, args.block_size))

        def rate(rows: int, seconds: float) -> str:
            return f"{rows / seconds:>12,.0f} rows/s  ({seconds:6.3f} s)"

        print(f"psql \\copy of the valid rows (floor)  {rate(valid_rows, floor)}")
        print(f"stream_csv only                       {rate(args.rows, read)}")
        print(f"stream + domain validation            {rate(args.rows, validated)}")
        print(f"streamed load, no overlap             {rate(args.rows, sequential)}")
        print(f"streamed load (platform default)      {rate(args.rows, e2e)}")
        print(f"  the same file again (all unchanged) {rate(args.rows, reload)}")
        print(f"dry run                               {rate(args.rows, planned)}")
        print(
            f"  rows written {written:,}, rejected {loaded.rows_failed:,} "
            f"({loaded.rejected_records:,} rejected_rows records), chunks {loaded.chunks}"
        )
        e2e_vs_floor = floor / e2e

        mem_ratio = "n/a"
        if not args.skip_memory:
            big = Path(tmp) / "sample_4x.csv"
            write_sample(big, 4 * args.rows, seed=12)
            one = peak_memory(path, db, args.block_size)
            four = peak_memory(big, db, args.block_size)
            print(
                f"peak resident memory (ru_maxrss): 1x {one / (1 << 20):.1f} MiB, "
                f"4x {four / (1 << 20):.1f} MiB"
            )
            mem_ratio = f"{four / one:.2f}"
        print(
            f"e2e_vs_floor={e2e_vs_floor:.3f} mem_4x_vs_1x={mem_ratio} "
            f"dry_run_vs_load={planned / e2e:.3f}"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _MEMORY_CHILD:
        configure_logging(level="WARNING")
        memory_child(Path(sys.argv[2]), os.environ[_URL_VARIABLE], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
