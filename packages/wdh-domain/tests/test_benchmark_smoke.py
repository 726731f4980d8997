"""Smoke runs of the benchmarks on small frames (no timing assertions)."""

from __future__ import annotations

import importlib.util
import re
import sys
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


VALIDATION_BENCHMARK = BENCHMARK.parent / "validation_bench.py"


@pytest.mark.slow
def test_validation_benchmark_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("validation_bench", VALIDATION_BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # registered first: pydantic resolves the model's annotations through sys.modules
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    line = module.main(["--rows", "2000"])

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
