"""Smoke-run of benchmarks/e2e_bench.py on a few thousand rows (no timing assertions)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import sqlalchemy as sa


@pytest.mark.performance
@pytest.mark.integration
def test_e2e_bench_runs(
    database_url: sa.URL,
    capsys: pytest.CaptureFixture[str],
    load_benchmark: Callable[[str], ModuleType],
) -> None:
    url = database_url.render_as_string(hide_password=False)
    arguments = ["--rows", "3000", "--repeat", "1", "--skip-memory", "--database-url", url]
    assert load_benchmark("e2e_bench").main(arguments) == 0
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
