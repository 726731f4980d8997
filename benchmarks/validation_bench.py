"""Validation speed: column-wise schema step vs row-wise step vs two anchors, one run.

Run: ``uv run python benchmarks/validation_bench.py [--rows N] [--repeat R]``

On N rows of the sample shape (record_id, customer_name, email, amount,
transaction_date, region) read from CSV text with ``dtype=str``, 1 % of them invalid:

1. ``ValidateSchemaStep`` (column-wise) through ``Pipeline.run``;
2. ``ValidateDataTypesStep`` (row-wise) through ``Pipeline.run``;
3. anchor: a bare loop of ``model_validate`` over prepared row dicts (blank cells
   already ``None``; no per-cell work around the call);
4. anchor: the same rules hand-written as pandas column operations (a valid-row mask).

Then collect mode (no threshold) on N rows that all fail (each row fails one field, with
its own value), timed against the N mostly-valid rows of 1., and its peak memory against
the frame's own size (``memory_usage(deep=True)``), measured in a fresh subprocess as
the peak of what is allocated during the run: the Python heap (tracemalloc) plus Arrow's
memory pool (pandas text columns). The peak RSS growth is printed too; it also counts
memory the allocators keep after it was freed. The last line's ``all_fail_mem_vs_frame``
is the peak allocated over the frame; the line before it gives the RSS ratio as well.

Goals: schema >= 0.4 of the hand-written checks and >= 300k rows/s; row-wise >= 0.75 of
the bare pydantic loop; all-fail time and memory <= 3. The last line is
``schema_rows_per_s=… rowwise_rows_per_s=… schema_vs_handwritten=…
rowwise_vs_bare_pydantic=… all_fail_time_ratio=… all_fail_mem_vs_frame=…``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import structlog
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from wdh_domain.pipelines import (
    Pipeline,
    PipelineConfig,
    ValidateDataTypesStep,
    ValidateSchemaStep,
    model_input_rows,
)
from wdh_logging import configure_logging, reset_logging

# The sample domain's row model (wdh_orchestration's SampleRecord), copied so that the
# benchmark needs wdh_domain only.
_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=255, pattern=_EMAIL_PATTERN)
]
_Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class SampleRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    record_id: int = Field(gt=0)
    customer_name: _Name
    email: _Email | None = None
    amount: Decimal = Field(max_digits=18, decimal_places=2)
    transaction_date: date
    region: _Region | None = None


HEADER = "record_id,customer_name,email,amount,transaction_date,region"
BAD_CELLS = [  # (column index, value): one invalid field per bad row
    (0, "-{i}"),
    (1, "   "),
    (2, "user{i}-at-example.org"),
    (3, "{i}.123"),
    (4, "2024-02-{d}"),
    (3, "x{i}"),
]


def make_csv(rows: int, bad_every: int | None) -> str:
    """CSV text of ``rows`` records; every ``bad_every``-th one (or all, when 1) invalid."""
    lines = [HEADER]
    for i in range(rows):
        cells = [
            str(i + 1),
            f"Customer {i % 5000}",
            f"user{i}@example.org" if i % 7 else "",
            f"{(i * 37) % 1_000_000}.{i % 100:02d}",
            f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            ["north", "south", "east", "west", ""][i % 5],
        ]
        if bad_every is not None and i % bad_every == 0:
            column, template = BAD_CELLS[(i // bad_every) % len(BAD_CELLS)]
            cells[column] = template.format(i=i, d=30 + i % 2)
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def read_text(csv: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False)


def handwritten(df: pd.DataFrame) -> np.ndarray:
    """The model's rules as plain pandas column operations: the valid-row mask."""
    ids = pd.to_numeric(df["record_id"].str.strip(), errors="coerce")
    ok = (ids > 0) & (ids == ids.round())
    name = df["customer_name"].str.strip()
    ok &= name.str.len().between(1, 100)
    email = df["email"].str.strip()
    blank = email == ""
    ok &= blank | (email.str.len().le(255) & email.str.contains(_EMAIL_PATTERN, regex=True))
    amount = df["amount"].str.strip()
    parts = amount.str.extract(r"^[+-]?(\d+)(?:\.(\d+))?$")
    whole = parts[0].str.lstrip("0").str.len()
    places = parts[1].fillna("").str.rstrip("0").str.len()
    ok &= parts[0].notna() & (places <= 2) & (whole <= 16)
    days = pd.to_datetime(df["transaction_date"], format="%Y-%m-%d", errors="coerce")
    ok &= days.notna()
    region = df["region"].str.strip()
    ok &= region.str.len().le(50)
    return ok.to_numpy(dtype=bool)


def bare_pydantic(rows: list[dict[str, Any]]) -> int:
    valid = 0
    validate = SampleRecord.model_validate
    for row in rows:
        try:
            validate(row)
        except ValidationError:
            continue
        valid += 1
    return valid


def best_of(repeat: int, func: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def collect_pipeline(step: Any) -> Pipeline:
    return Pipeline("bench", PipelineConfig(stop_on_error=False, error_threshold=1.0)).add_step(
        step
    )


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:  # noqa: PTH123 - Linux only
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_all_fail_memory(rows: int) -> dict[str, float]:
    """In this (fresh) process, during an all-fail collect run: the peak of the memory
    allocated (Python heap by tracemalloc + Arrow's pool, polled every 2 ms) above what
    was allocated before, and the peak RSS growth (which also counts memory the
    allocators keep after it was freed)."""
    df = read_text(make_csv(rows, bad_every=1))
    pipeline = collect_pipeline(ValidateSchemaStep(SampleRecord))
    pipeline.run(df.head(100))  # imports and first-call costs out of the way
    gc.collect()
    frame_bytes = int(df.memory_usage(deep=True).sum())
    before = _rss()
    peak = before
    arrow_before = pa.total_allocated_bytes()
    heap_peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak, heap_peak
        while not done.is_set():
            peak = max(peak, _rss())
            python_now = tracemalloc.get_traced_memory()[0]
            heap_peak = max(heap_peak, python_now + pa.total_allocated_bytes() - arrow_before)
            time.sleep(0.002)

    tracemalloc.start()
    watcher = threading.Thread(target=poll)
    watcher.start()
    result = pipeline.run(df)
    done.set()
    watcher.join()
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = max(peak, _rss())
    assert result.rows_failed == rows, result
    # Python's own peak is exact; Arrow's is polled (its pool has no resettable peak).
    heap_peak = max(heap_peak, python_peak)
    return {"frame_bytes": frame_bytes, "heap_peak": heap_peak, "rss_growth": peak - before}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the frame")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (best kept)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rows, repeat = args.rows, args.repeat

    previous = structlog.get_config()
    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: PTH123 - a text sink
        configure_logging(level="INFO", fmt="json", stream=sink)
        try:
            if args.memory_child:
                print(json.dumps(measure_all_fail_memory(rows)))
                return ""
            df = read_text(make_csv(rows, bad_every=100))
            failing = read_text(make_csv(rows, bad_every=1))
            schema = collect_pipeline(ValidateSchemaStep(SampleRecord))
            rowwise = collect_pipeline(ValidateDataTypesStep(SampleRecord))

            checks = schema.run(df)
            expected_valid = int(handwritten(df).sum())
            assert len(checks.output_data) == expected_valid, (checks, expected_valid)
            assert rowwise.run(df).rows_failed == checks.rows_failed

            schema_s = best_of(repeat, lambda: schema.run(df))
            rowwise_s = best_of(repeat, lambda: rowwise.run(df))
            prepared = model_input_rows(df)  # the very rows the row-wise step validates
            bare_s = best_of(repeat, lambda: bare_pydantic(prepared))
            prepared.clear()
            hand_s = best_of(repeat, lambda: handwritten(df))
            fail_s = best_of(repeat, lambda: schema.run(failing))
        finally:
            reset_logging()
            structlog.configure(**previous)

    child = subprocess.run(  # noqa: S603 - this very script, in a fresh process
        [sys.executable, __file__, "--rows", str(rows), "--memory-child"],
        check=True,
        capture_output=True,
        text=True,
    )
    memory = json.loads(child.stdout.strip().splitlines()[-1])
    mem_ratio = memory["heap_peak"] / memory["frame_bytes"]

    per_s = max(rows, 1)
    schema_rate, rowwise_rate = per_s / schema_s, per_s / rowwise_s
    bare_rate, hand_rate = per_s / bare_s, per_s / hand_s
    print(f"rows={rows} invalid=1% repeat={repeat} (best of)")
    print(f"schema step (column-wise)  {schema_s:8.3f} s  {schema_rate:12,.0f} rows/s")
    print(f"hand-written pandas checks {hand_s:8.3f} s  {hand_rate:12,.0f} rows/s")
    print(f"row-wise step              {rowwise_s:8.3f} s  {rowwise_rate:12,.0f} rows/s")
    print(f"bare model_validate loop   {bare_s:8.3f} s  {bare_rate:12,.0f} rows/s")
    print(
        f"all-fail (collect) schema  {fail_s:8.3f} s  vs {schema_s:.3f} s for the 1%-invalid rows"
    )
    print(
        f"all-fail peak allocated {memory['heap_peak'] / 2**20:,.0f} MiB (RSS growth "
        f"{memory['rss_growth'] / 2**20:,.0f} MiB), frame {memory['frame_bytes'] / 2**20:,.0f} MiB"
    )
    rss_ratio = memory["rss_growth"] / memory["frame_bytes"]
    print(
        f"all_fail_mem_vs_frame below is the peak allocated / frame = {mem_ratio:.3f}; "
        f"by peak RSS growth it is {rss_ratio:.3f} (RSS also counts freed memory the "
        "allocators keep)"
    )
    print("goals: schema >= 0.4 x hand-written and >= 300k rows/s; row-wise >= 0.75 x bare;")
    print("       all-fail time and memory ratios <= 3")
    line = (
        f"schema_rows_per_s={schema_rate:.0f} rowwise_rows_per_s={rowwise_rate:.0f} "
        f"schema_vs_handwritten={schema_s and hand_s / schema_s:.3f} "
        f"rowwise_vs_bare_pydantic={bare_s / rowwise_s:.3f} "
        f"all_fail_time_ratio={fail_s / schema_s:.3f} all_fail_mem_vs_frame={mem_ratio:.3f}"
    )
    print(line)
    return line


if __name__ == "__main__":
    main()
