"""Smoke run of benchmarks/pipeline_overhead.py on a small frame (no timing assertions)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.performance

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "pipeline_overhead.py"


def test_pipeline_overhead_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("pipeline_overhead", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    line = module.main(["--rows", "2000", "--repeat", "1"])

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == line
    assert re.fullmatch(r"row_us=[\d.]+ row_vs_floor=[\d.]+ df_step_ms=[\d.]+", line)
