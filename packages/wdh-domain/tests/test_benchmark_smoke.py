"""Smoke runs of the benchmarks on small frames (no timing assertions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

import pytest

pytestmark = pytest.mark.performance


def test_pipeline_overhead_benchmark_runs(
    capsys: pytest.CaptureFixture[str], load_benchmark: Callable[[str], ModuleType]
) -> None:
    line = load_benchmark("pipeline_overhead").main(["--rows", "2000", "--repeat", "1"])

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == line
    assert re.fullmatch(r"row_us=[\d.]+ row_vs_floor=[\d.]+ df_step_ms=[\d.]+", line)


@pytest.mark.slow
def test_validation_benchmark_runs(
    capsys: pytest.CaptureFixture[str], load_benchmark: Callable[[str], ModuleType]
) -> None:
    line = load_benchmark("validation_bench").main(["--rows", "2000"])

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == line
    names = [
        "schema_rows_per_s",
        "rowwise_rows_per_s",
        "schema_vs_handwritten",
        "rowwise_vs_bare_pydantic",
        "all_fail_time_ratio",
        "all_fail_mem_vs_frame",
    ]
    assert re.fullmatch(" ".join(rf"{name}=[\d.]+" for name in names), line)
