"""Smoke-run of benchmarks/e2e_bench.py on a few thousand rows (no timing assertions)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "e2e_bench.py"


@pytest.mark.performance
@pytest.mark.integration
def test_e2e_bench_runs(database_url: sa.URL, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("e2e_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["e2e_bench"] = module
    try:
        spec.loader.exec_module(module)
        url = database_url.render_as_string(hide_password=False)
        arguments = ["--rows", "3000", "--repeat", "1", "--skip-memory", "--database-url", url]
        assert module.main(arguments) == 0
    finally:
        sys.modules.pop("e2e_bench", None)
    output = capsys.readouterr().out
    assert "file: 3,000 rows" in output
    invalid = int(output.split(" invalid")[0].rsplit(", ", 1)[-1])
    assert 0 < invalid < 100
    assert f"rows written {3000 - invalid:,}, rejected {invalid:,} " in output
    last = output.strip().splitlines()[-1]
    pairs = dict(pair.split("=") for pair in last.split())
    assert list(pairs) == ["e2e_vs_floor", "mem_4x_vs_1x", "dry_run_vs_load"]
    assert float(pairs["e2e_vs_floor"]) > 0
    assert pairs["mem_4x_vs_1x"] == "n/a"  # --skip-memory
    assert float(pairs["dry_run_vs_load"]) > 0
