"""Smoke-run of benchmarks/load_bench.py on a few thousand rows (no timing assertions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "load_bench.py"


@pytest.mark.performance
@pytest.mark.integration
def test_load_bench_runs(database_url: sa.URL, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("load_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_bench"] = module
    try:
        spec.loader.exec_module(module)
        url = database_url.render_as_string(hide_password=False)
        assert (
            module.main(
                ["--rows", "3000", "--subset", "400", "--repeat", "1", "--database-url", url]
            )
            == 0
        )
    finally:
        sys.modules.pop("load_bench", None)
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
