"""Loader throughput and memory, measured side by side against the same PostgreSQL.

    uv run python benchmarks/load_bench.py [--rows N] [--subset M] [--database-url URL]

Measures, on one frame of ``--rows`` rows and 10 mixed columns (text with Chinese
characters, numeric, integer, date, timestamptz, boolean, nullable integer and text):

* our append (``WarehouseLoader.load_dataframe``) against the append floor — raw
  ``COPY … FROM STDIN`` of a CSV buffer prepared before the clock starts;
* our upsert (half the keys new) against the upsert floor — the same COPY into a
  temporary table plus one hand-written ``INSERT … SELECT … ON CONFLICT DO UPDATE``;
* ``DataFrame.to_sql`` (default, and ``method="multi"`` in chunks of 1,000 rows) and
  SQLAlchemy's batched ``on_conflict_do_update`` — these run on the first ``--subset``
  rows only and are compared by rows/s. Why a subset: at ~12k to 29k rows/s they would
  take minutes at 1,000,000 rows, and their rate does not change with the row count
  (one bound statement per row or per 1,000 rows), so a subset measures it fairly;
* the **validated** scenario: ``--rows`` rows of the ``sample_data`` shape as row-wise
  validation hands them to the loader (object columns of ``Decimal`` and
  ``datetime.date``, text as pandas ``str`` dtype; the schema step's Arrow ``decimal128``
  amounts cost the loader less than these ``Decimal`` objects), appended and upserted
  (half new) into a ``sample_data``-like table, each against the raw-COPY floor of the
  same table in the same run;
* peak memory while our loader runs: resident memory sampled every 2 ms (from
  ``/proc/self/statm``; ``resource.getrusage`` where that is missing), reported as
  (frame + peak growth) / frame. The growth includes fixed overhead that does not scale
  with the frame (the COPY block buffers, Arrow's and the driver's allocations, first
  imports), so ``peak_mem_vs_frame`` is only meaningful at about 1,000,000 rows; on
  small frames it is dominated by that overhead.

Without ``--database-url`` a throwaway database is created on 127.0.0.1:5432 (user
``postgres``) and dropped afterwards. The last line is machine-readable:
``append_vs_floor=… upsert_vs_floor=… append_vs_to_sql=… upsert_vs_generic=… peak_mem_vs_frame=…
validated_append_vs_floor=… validated_upsert_vs_floor=…`` (one line)
(throughput ratios: higher is better; memory ratio: lower is better).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import gc
import io
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from wdh_io.database._engine import create_engine
from wdh_io.loader import WarehouseLoader
from wdh_logging import configure_logging

_COLUMNS_DDL = """
    id bigint {pk},
    name text NOT NULL,
    city varchar(32),
    amount numeric(14, 2),
    qty integer,
    day date,
    created_at timestamptz,
    active boolean,
    score bigint,
    note text
"""
_CITIES = np.array(["上海", "北京", "深圳", "广州", "杭州", "成都", "Zürich", "São Paulo"])


def make_frame(rows: int, *, first_id: int = 0, seed: int = 7) -> pd.DataFrame:
    """``rows`` rows of 10 mixed columns, nullable ones with ~10 % NULLs."""
    rng = np.random.default_rng(seed)
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    names = pd.Series([f"客户{i}号 customer {i}" for i in ids], dtype="str")
    score = pd.array(rng.integers(0, 1000, rows), dtype="Int64")
    score[rng.random(rows) < 0.1] = pd.NA
    note = pd.Series(["备注 ok ✓"] * rows, dtype="str").mask(rng.random(rows) < 0.1)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    return pd.DataFrame(
        {
            "id": ids,
            "name": names,
            "city": pd.Series(_CITIES[rng.integers(0, len(_CITIES), rows)], dtype="str"),
            "amount": np.round(rng.random(rows) * 100_000, 2),
            "qty": rng.integers(-1000, 1000, rows).astype(np.int32),
            "day": (start + rng.integers(0, 3650, rows).astype("timedelta64[D]")).astype(
                "datetime64[s]"
            ),
            "created_at": pd.Series(
                start + rng.integers(0, 10**14, rows).astype("timedelta64[us]")
            ).dt.tz_localize("UTC"),
            "active": rng.random(rows) < 0.5,
            "score": score,
            "note": note,
        }
    )


_VALIDATED_DDL = """
    record_id integer NOT NULL {pk},
    customer_name varchar(100) NOT NULL,
    email varchar(255),
    amount numeric(18, 2) NOT NULL,
    transaction_date date NOT NULL,
    region varchar(50),
    loaded_at timestamptz NOT NULL DEFAULT now()
"""
_VALIDATED_COLUMNS = "record_id, customer_name, email, amount, transaction_date, region"
_REGIONS = np.array(["华东", "华北", "华南", "west", "east", "São Paulo"])


def make_validated_frame(rows: int, *, first_id: int = 0, seed: int = 7) -> pd.DataFrame:
    """``rows`` rows of the ``sample_data`` shape as row-wise validation returns them:
    ``Decimal`` and ``date`` objects, ``str`` dtype text, ~10 % NULLs."""
    rng = np.random.default_rng(seed)
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    cents = rng.integers(0, 10_000_000, rows)
    amounts = [decimal.Decimal(int(c)).scaleb(-2) for c in cents]
    first = dt.date(2020, 1, 1).toordinal()
    days = [dt.date.fromordinal(first + int(d)) for d in rng.integers(0, 2000, rows)]
    missing = rng.random(rows) < 0.1
    return pd.DataFrame(
        {
            "record_id": ids,
            "customer_name": pd.Series([f"客户{i}号 customer {i}" for i in ids], dtype="str"),
            "email": pd.Series([f"user{i}@example.com" for i in ids], dtype="str").mask(missing),
            "amount": pd.Series(amounts, dtype=object),
            "transaction_date": pd.Series(days, dtype=object),
            "region": pd.Series(_REGIONS[rng.integers(0, len(_REGIONS), rows)], dtype="str"),
        }
    )


def validated_csv(frame: pd.DataFrame) -> bytes:
    """The validated scenario's floor input: the same rows as COPY-ready CSV."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return bytes(sink.getvalue().to_pybytes())


def prepared_csv(frame: pd.DataFrame) -> bytes:
    """The floor's input: the frame as COPY-ready CSV, built before any clock starts.

    Timestamps are written as UTC wall time without a zone suffix (the floor's session
    reads them in UTC): PostgreSQL parses that faster than ``…Z``, so the floor is the
    fastest plain COPY we know, not a strawman.
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    day = table.column("day").cast(pa.date32())
    table = table.set_column(table.schema.get_field_index("day"), "day", day)
    created = table.column("created_at").cast(pa.timestamp("us"))
    table = table.set_column(table.schema.get_field_index("created_at"), "created_at", created)
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return bytes(sink.getvalue().to_pybytes())


# --------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    try:
        statm = Path("/proc/self/statm").read_bytes()
        return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the high-water mark is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def peak_growth() -> Iterator[list[int]]:
    """Yield a one-element list that holds, afterwards, the peak RSS growth in bytes."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    baseline = _rss_bytes()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    growth = [0]
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], _rss_bytes())
        growth[0] = peak[0] - baseline


# --------------------------------------------------------------------------- database


@dataclass
class Database:
    url: sa.URL
    engine: sa.Engine

    def run(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def reset(self, table: str, *, pk: bool) -> None:
        self.run(
            f"DROP TABLE IF EXISTS {table}",
            f"CREATE TABLE {table} ({_COLUMNS_DDL.format(pk='PRIMARY KEY' if pk else '')})",
        )

    def reset_validated(self, table: str, *, pk: bool) -> None:
        self.run(
            f"DROP TABLE IF EXISTS {table}",
            f"CREATE TABLE {table} ({_VALIDATED_DDL.format(pk='PRIMARY KEY' if pk else '')})",
        )

    def copy(self, table: str, csv: bytes, columns: str | None = None) -> None:
        raw: Any = self.engine.raw_connection()
        target = f"{table} ({columns})" if columns else table
        try:
            with raw.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'UTC'")
                cursor.copy_expert(f"COPY {target} FROM STDIN WITH (FORMAT csv)", io.BytesIO(csv))
            raw.commit()
        finally:
            raw.close()

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


@contextlib.contextmanager
def database(url: str | None) -> Iterator[Database]:
    if url is not None:
        engine = create_engine(url, pool_size=2)
        try:
            yield Database(engine.url, engine)
        finally:
            engine.dispose()
        return
    admin = sa.create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    name = f"wdh_load_bench_{os.getpid()}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(admin.url.set(database=name), pool_size=2)
    try:
        yield Database(engine.url, engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- measurements


def upsert_floor(
    db: Database,
    csv: bytes,
    table: str,
    columns: str = "id, name, city, amount, qty, day, created_at, active, score, note",
) -> None:
    key, *rest = columns.split(", ")
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in rest)
    raw: Any = db.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.execute(
                f"CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT {columns} FROM {table} LIMIT 0"
            )
            cursor.copy_expert("COPY stage FROM STDIN WITH (FORMAT csv)", io.BytesIO(csv))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM stage "
                f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
            )
        raw.commit()
    finally:
        raw.close()


def generic_upsert(db: Database, frame: pd.DataFrame, table: str, batch: int = 1000) -> None:
    target = sa.Table(table, sa.MetaData(), autoload_with=db.engine)
    statement = postgresql.insert(target)
    statement = statement.on_conflict_do_update(
        index_elements=["id"],
        set_={c.name: statement.excluded[c.name] for c in target.columns if c.name != "id"},
    )
    records = frame.astype(object).where(frame.notna(), None)
    records["day"] = [None if v is None else v.date() for v in records["day"]]
    rows = [{str(k): v for k, v in row.items()} for row in records.to_dict("records")]
    with db.engine.begin() as conn:
        for start in range(0, len(rows), batch):
            conn.execute(statement, rows[start : start + batch])


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one linear script)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=50_000, help="rows for the slow baselines")
    parser.add_argument("--repeat", type=int, default=2, help="best of N for COPY-speed runs")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    rows, subset = args.rows, min(args.subset, args.rows)

    frame = make_frame(rows)
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    half = rows // 2
    upsert_frame = make_frame(rows, first_id=half, seed=11)  # ids half..half+rows: half new
    csv = prepared_csv(frame)
    upsert_csv = prepared_csv(upsert_frame)
    print(
        f"rows={rows:,} columns=10 frame={frame_bytes / 2**20:.1f} MiB "
        f"csv={len(csv) / 2**20:.1f} MiB"
    )

    with database(args.database_url) as db:
        loader = WarehouseLoader(db.engine)
        results: dict[str, float] = {}
        memory: dict[str, int] = {}

        def best(name: str, prepare: Callable[[], None], run: Callable[[], object]) -> None:
            times = []
            for _ in range(args.repeat):
                prepare()
                times.append(timed(run))
            results[name] = min(times)

        # ---- appends ------------------------------------------------------------------
        db.reset("bench_append", pk=False)
        loader.load_dataframe(frame.iloc[:0], "bench_append")  # reflect once, untimed

        def reset_append() -> None:
            db.run("TRUNCATE bench_append")

        best("append_floor", reset_append, lambda: db.copy("bench_append", csv))
        reset_append()
        with peak_growth() as growth:
            results["append"] = timed(lambda: loader.load_dataframe(frame, "bench_append"))
        memory["append"] = growth[0]
        assert db.count("bench_append") == rows
        best("append", reset_append, lambda: loader.load_dataframe(frame, "bench_append"))
        assert db.count("bench_append") == rows

        small = frame.iloc[:subset]
        best(
            "to_sql",
            reset_append,
            lambda: small.to_sql("bench_append", db.engine, if_exists="append", index=False),
        )
        best(
            "to_sql_multi",
            reset_append,
            lambda: small.to_sql(
                "bench_append",
                db.engine,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=1000,
            ),
        )
        assert db.count("bench_append") == subset

        # ---- upserts ------------------------------------------------------------------
        db.reset("bench_upsert", pk=True)
        loader.clear_cache()

        def reset_upsert() -> None:
            db.run("TRUNCATE bench_upsert")
            db.copy("bench_upsert", csv)
            with db.engine.connect() as conn:
                conn.exec_driver_sql("CHECKPOINT")

        best("upsert_floor", reset_upsert, lambda: upsert_floor(db, upsert_csv, "bench_upsert"))
        assert db.count("bench_upsert") == rows + half
        reset_upsert()
        with peak_growth() as growth:
            result = loader.load_dataframe(upsert_frame, "bench_upsert", upsert_keys=["id"])
        memory["upsert"] = growth[0]
        assert (result.rows_inserted, result.rows_updated) == (rows - half, half), result
        best(
            "upsert",
            reset_upsert,
            lambda: loader.load_dataframe(upsert_frame, "bench_upsert", upsert_keys=["id"]),
        )

        # the generic baseline on a subset: same half-new mix as the full upsert
        small_upsert = make_frame(subset, first_id=rows - subset // 2, seed=13)
        best(
            "upsert_generic", reset_upsert, lambda: generic_upsert(db, small_upsert, "bench_upsert")
        )

        # ---- the validated scenario: the frames validation produces --------------------
        gc.collect()
        validated = make_validated_frame(rows)
        validated_upsert = make_validated_frame(rows, first_id=half, seed=11)
        v_csv, v_upsert_csv = validated_csv(validated), validated_csv(validated_upsert)
        db.reset_validated("bench_validated", pk=True)
        loader.clear_cache()

        def reset_validated() -> None:
            db.run("TRUNCATE bench_validated")

        def reset_validated_upsert() -> None:
            reset_validated()
            db.copy("bench_validated", v_csv, _VALIDATED_COLUMNS)
            with db.engine.connect() as conn:
                conn.exec_driver_sql("CHECKPOINT")

        best(
            "validated_append_floor",
            reset_validated,
            lambda: db.copy("bench_validated", v_csv, _VALIDATED_COLUMNS),
        )
        best(
            "validated_append",
            reset_validated,
            lambda: loader.load_dataframe(validated, "bench_validated"),
        )
        assert db.count("bench_validated") == rows
        best(
            "validated_upsert_floor",
            reset_validated_upsert,
            lambda: upsert_floor(db, v_upsert_csv, "bench_validated", _VALIDATED_COLUMNS),
        )
        assert db.count("bench_validated") == rows + half
        best(
            "validated_upsert",
            reset_validated_upsert,
            lambda: loader.load_dataframe(
                validated_upsert, "bench_validated", upsert_keys=["record_id"]
            ),
        )
        assert db.count("bench_validated") == rows + half
        loader.dispose()

    def rate(name: str, n: int) -> float:
        return n / results[name]

    append_rate, upsert_rate = rate("append", rows), rate("upsert", rows)
    print(f"{'measurement':<44}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    for name, n, label in [
        ("append_floor", rows, "append floor: raw COPY of prepared CSV"),
        ("append", rows, "our append (WarehouseLoader, COPY path)"),
        ("to_sql", subset, "DataFrame.to_sql (default), subset"),
        ("to_sql_multi", subset, "DataFrame.to_sql(method='multi'), subset"),
        ("upsert_floor", rows, "upsert floor: COPY→temp→INSERT ON CONFLICT"),
        ("upsert", rows, "our upsert (half the keys new)"),
        ("upsert_generic", subset, "SQLAlchemy on_conflict_do_update, subset"),
        ("validated_append_floor", rows, "validated: raw COPY floor"),
        ("validated_append", rows, "validated: our append"),
        ("validated_upsert_floor", rows, "validated: upsert floor"),
        ("validated_upsert", rows, "validated: our upsert (half the keys new)"),
    ]:
        print(f"{label:<44}{n:>10,}{results[name]:>10.2f}{rate(name, n):>12,.0f}")
    to_sql_best = max(rate("to_sql", subset), rate("to_sql_multi", subset))
    peak = max(memory.values())
    print(
        f"peak RSS growth: append {memory['append'] / 2**20:.1f} MiB, "
        f"upsert {memory['upsert'] / 2**20:.1f} MiB; frame {frame_bytes / 2**20:.1f} MiB"
    )
    print(
        f"slow baselines (to_sql, generic upsert) ran on {subset:,} rows and are compared "
        "by rows/s: at their speed 1M rows would take minutes, and their rate does not "
        f"depend on the row count; COPY-speed runs are the best of {args.repeat}"
    )
    print(
        "peak_mem_vs_frame includes fixed overhead (block buffers, imports): meaningful "
        "only at ~1M rows"
        + ("" if rows >= 1_000_000 else f"; this run has {rows:,} rows, read it with care")
    )
    print(
        f"append_vs_floor={append_rate / rate('append_floor', rows):.2f} "
        f"upsert_vs_floor={upsert_rate / rate('upsert_floor', rows):.2f} "
        f"append_vs_to_sql={append_rate / to_sql_best:.1f} "
        f"upsert_vs_generic={upsert_rate / rate('upsert_generic', subset):.1f} "
        f"peak_mem_vs_frame={(frame_bytes + peak) / frame_bytes:.2f} "
        f"validated_append_vs_floor="
        f"{rate('validated_append', rows) / rate('validated_append_floor', rows):.2f} "
        f"validated_upsert_vs_floor="
        f"{rate('validated_upsert', rows) / rate('validated_upsert_floor', rows):.2f}"
    )
    return 0


if __name__ == "__main__":
    # The script is an entry point, so it configures logging (once): warnings only, so
    # the loader's per-load INFO lines do not interleave with the table.
    configure_logging(level="WARNING")
    sys.exit(main())
