"""Run a domain's job from the command line: ``python -m wdh_orchestrator.run [JOB]``.

``--dry-run`` plans the load instead: it prints how many rows would be inserted, updated,
left unchanged and rejected, with a preview of each, and writes nothing.

Each Dagster event is printed once, on one line (the platform's own events are printed
by the logging configuration, Dagster's by the one-line ``console`` logger); a failure
is printed as its one-line reason, with the traceback only at ``LOG_LEVEL=DEBUG``. The
last line says whether the run succeeded: ``run <id> succeeded: ...`` or ``run <id>
failed: <reason>`` (exit status 0 or 1). Invalid settings end in one line and exit
status 2 before anything runs.

The run uses the Dagster instance of the working directory's ``dagster.yaml`` (the one
``dagster dev`` uses when started there), or ``$DAGSTER_HOME``'s when that is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult
from pydantic import ValidationError

from wdh_config import get_settings
from wdh_orchestration import describe_failure

__all__ = ["dry_run_report", "main", "outcome_line"]

_PREVIEWS = (
    ("insert_preview", "would be inserted"),
    ("update_preview", "would be updated"),
    ("unchanged_preview", "would be left unchanged"),
    ("rejected_preview", "would be rejected"),
)


def _instance() -> DagsterInstance:
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    if Path("dagster.yaml").is_file():
        return DagsterInstance.from_config(str(Path.cwd()))
    return DagsterInstance.ephemeral()


def _dry_runs(result: ExecuteInProcessResult) -> list[tuple[str, dict[str, Any]]]:
    """The dry-run plans of *result*: (asset, metadata values) per planned asset."""
    plans = []
    for event in result.all_events:
        if event.event_type != DagsterEventType.ASSET_OBSERVATION:
            continue
        observation = event.asset_observation_data.asset_observation
        values = {k: v.value for k, v in observation.metadata.items()}
        if values.get("dry_run"):
            plans.append((observation.asset_key.to_user_string(), values))
    return plans


def dry_run_report(result: ExecuteInProcessResult) -> str:
    """The previews of each dry-run plan of *result* (Markdown tables), or ``""``."""
    parts = []
    for asset, values in _dry_runs(result):
        for key, title in _PREVIEWS:
            parts.append(f"{asset}: rows that {title}\n{values[key]}\n")
    return "\n".join(parts)


def outcome_line(result: ExecuteInProcessResult) -> str:
    """``run <id> succeeded: ...`` or ``run <id> failed: <reason>`` for *result*.

    A dry run succeeds with ``dry run of <asset>: would insert I, update U, leave N
    unchanged, reject R rows; nothing was written``.
    """
    if result.success:
        plans = [
            f"dry run of {asset}: would insert {v['rows_insert']}, update {v['rows_update']}, "
            f"leave {v['rows_unchanged']} unchanged, reject {v['rows_rejected']} rows; "
            "nothing was written"
            for asset, v in _dry_runs(result)
        ]
        if plans:
            return f"run {result.run_id} succeeded: {'; '.join(plans)}"
        done = [
            f"{e.asset_key.to_user_string()} materialized"
            for e in result.get_asset_materialization_events()
            if e.asset_key is not None
        ]
        return f"run {result.run_id} succeeded: {', '.join(done) or 'nothing to do'}"
    reasons = []
    for event in result.all_events:
        if event.event_type == DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            user = data.user_failure_data
            if user is not None and user.description:
                reasons.append(" ".join(user.description.split()))
            elif data.error is not None:
                reasons.append(data.error.message.strip().splitlines()[0])
    return f"run {result.run_id} failed: {'; '.join(reasons) or 'see the events above'}"


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Run the job; return 0 (succeeded), 1 (failed) or 2 (invalid settings)."""
    parser = argparse.ArgumentParser(prog="python -m wdh_orchestrator.run", description=__doc__)
    parser.add_argument("job", nargs="?", default="sample_pipeline_job", help="job to run")
    parser.add_argument("--file", help="file to read (default: the domain's default file)")
    parser.add_argument("--partition", help="partition (file name in the landing directory)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="report what the load would insert, update, leave unchanged and reject; write nothing",
    )
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        out.write(f"{describe_failure(exc)}\n")
        return 2
    from wdh_orchestrator.definitions import defs  # noqa: PLC0415  (configures logging)

    # Dagster migrates its own SQLite storage on first use; that is not this run's news.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    job = defs.resolve_job_def(args.job)
    run_config: dict[str, Any] = {
        "loggers": {"console": {"config": {"log_level": settings.log_level}}}
    }
    op_config: dict[str, Any] = {}
    if args.file:
        op_config["path"] = args.file
    if args.dry_run:
        op_config["dry_run"] = True
    if op_config:
        [node] = list(job.nodes_in_topological_order)
        run_config["ops"] = {node.name: {"config": op_config}}
    with _instance() as instance:
        if args.partition and job.partitions_def is not None:
            instance.add_dynamic_partitions(job.partitions_def.name, [args.partition])  # type: ignore[attr-defined]
        result = job.execute_in_process(
            run_config=run_config,
            instance=instance,
            partition_key=args.partition,
            raise_on_error=False,
        )
    # The embedded server logs its shutdown at exit; that must not follow the verdict.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    report = dry_run_report(result)
    if report:
        out.write(report + "\n")
    out.write(outcome_line(result) + "\n")
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
