"""Pipeline framework overhead, measured side by side in one run.

Run: ``uv run python benchmarks/pipeline_overhead.py [--rows N] [--repeat R]``

1. Row steps: an identity ``RowTransformStep`` run through ``Pipeline.run`` over an
   N-row frame (int, float, text columns), against the floor a hand-written loop needs
   for the same work: ``[f(r) for r in df.to_dict("records")]`` rebuilt into a frame.
2. DataFrame steps: a pipeline with one no-op ``DataFrameStep`` on the same frame,
   against calling the step directly; the difference is the framework's cost per step
   (it includes the shallow ``df.copy(deep=False)`` every DataFrame-step call gets,
   which is also shown on its own).

Logging stays on (info level, rendered, written to os.devnull) so that its cost is
counted. Each figure is the best of ``--repeat`` runs. Goals (DESIGN.md): row overhead
within 1.5x of the floor and under 2 us per row; DataFrame-step overhead under 1 ms.
The last line is machine-readable: ``row_us=<float> row_vs_floor=<float> df_step_ms=<float>``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import structlog

from wdh_domain.pipelines import Pipeline, PipelineContext, StepResult


class IdentityRowStep:
    """Returns every row unchanged."""

    def apply(self, row: dict[str, Any], context: PipelineContext) -> StepResult:  # noqa: ARG002
        return StepResult(row=row)


class NoOpDataFrameStep:
    """Returns the frame unchanged."""

    def execute(self, df: pd.DataFrame, context: PipelineContext) -> pd.DataFrame:  # noqa: ARG002
        return df


def make_frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "amount": [i * 0.25 for i in range(rows)],
            "name": [f"name-{i % 1000}" for i in range(rows)],
        }
    )


def best_of(repeat: int, func: Callable[[], object]) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


def identity(row: dict[Any, Any]) -> dict[Any, Any]:
    return row


def floor_loop(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([identity(r) for r in df.to_dict("records")], index=df.index)


def configure_logging(sink: Any) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sink),
        cache_logger_on_first_use=False,
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the frame")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args(argv)
    rows, repeat = args.rows, args.repeat

    previous = structlog.get_config()
    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: PTH123 - a text sink
        configure_logging(sink)
        try:
            df = make_frame(rows)

            row_pipeline = Pipeline("bench_rows").add_step(IdentityRowStep())
            check = row_pipeline.run(df)
            assert check.success, check.errors
            assert check.output_data.equals(df), "identity step changed data"
            assert (check.output_data.dtypes == df.dtypes).all(), "identity changed dtypes"
            pipeline_s = best_of(repeat, lambda: row_pipeline.run(df))
            floor_s = best_of(repeat, lambda: floor_loop(df))

            step = NoOpDataFrameStep()
            df_pipeline = Pipeline("bench_df").add_step(step)
            context = PipelineContext("bench", "exec_bench", pd.Timestamp.now("UTC"))
            direct_s = best_of(repeat * 10, lambda: step.execute(df, context))
            framework_s = best_of(repeat * 10, lambda: df_pipeline.run(df))
            empty_s = best_of(repeat * 10, lambda: Pipeline("bench_empty").run(df))
            copy_s = best_of(repeat * 10, lambda: df.copy(deep=False))
        finally:
            structlog.configure(**previous)

    per_row = max(rows, 1)
    row_us = pipeline_s / per_row * 1e6
    floor_us = floor_s / per_row * 1e6
    row_vs_floor = pipeline_s / floor_s
    df_step_ms = max(framework_s - direct_s, 0.0) * 1e3
    print(f"rows={rows} columns={len(df.columns)} repeat={repeat} (best of)")
    print(f"row step  pipeline: {pipeline_s * 1e3:10.1f} ms  {row_us:6.3f} us/row")
    print(f"row step  floor:    {floor_s * 1e3:10.1f} ms  {floor_us:6.3f} us/row")
    print(f"row step  pipeline / floor = {row_vs_floor:.3f} (goal <= 1.5; < 2 us/row)")
    print(
        f"df step   pipeline run {framework_s * 1e3:.3f} ms, direct call "
        f"{direct_s * 1e3:.3f} ms, run with no steps {empty_s * 1e3:.3f} ms"
    )
    print(f"df step   shallow copy per step call: {copy_s * 1e3:.4f} ms")
    print(f"df step   overhead = {df_step_ms:.3f} ms per run (goal < 1 ms)")
    line = f"row_us={row_us:.3f} row_vs_floor={row_vs_floor:.3f} df_step_ms={df_step_ms:.3f}"
    print(line)
    return line


if __name__ == "__main__":
    main()
