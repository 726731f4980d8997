"""Smoke-run of benchmarks/load_bench.py on a few thousand rows (no timing assertions)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import sqlalchemy as sa


@pytest.mark.performance
@pytest.mark.integration
def test_load_bench_runs(
    database_url: sa.URL,
    capsys: pytest.CaptureFixture[str],
    load_benchmark: Callable[[str], ModuleType],
) -> None:
    url = database_url.render_as_string(hide_password=False)
    arguments = ["--rows", "3000", "--subset", "400", "--repeat", "1", "--database-url", url]
    assert load_benchmark("load_bench").main(arguments) == 0
    output = capsys.readouterr().out
    assert "ran on 400 rows and are compared by rows/s: at their speed 1M rows" in output
    assert "peak_mem_vs_frame includes fixed overhead" in output
    assert "this run has 3,000 rows, read it with care" in output
    last = output.strip().splitlines()[-1]
    keys = [pair.split("=")[0] for pair in last.split()]
    assert keys == [
        "append_vs_floor",
        "upsert_vs_floor",
        "append_vs_to_sql",
        "upsert_vs_generic",
        "peak_mem_vs_frame",
        "validated_append_vs_floor",
        "validated_upsert_vs_floor",
    ]
    assert all(float(pair.split("=")[1]) > 0 for pair in last.split())
