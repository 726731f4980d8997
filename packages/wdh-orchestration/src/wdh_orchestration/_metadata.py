"""Dagster metadata of a domain's materialization: the figures the asset and run pages show."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pandas as pd
from dagster import MetadataValue

from wdh_domain.pipelines import FAILED_ROW_COLUMNS, PipelineResult, format_issues
from wdh_io.loader import LoadResult
from wdh_io.quarantine import RejectedRow
from wdh_logging import redact_text, sanitize_for_logging
from wdh_orchestration._stream import DryRun, StreamedLoad

__all__ = [
    "dry_run_metadata",
    "failures_preview",
    "frame_preview",
    "load_metadata",
    "materialization_metadata",
    "read_metadata",
    "rejected_preview",
    "streamed_metadata",
    "validation_metadata",
]

_PREVIEW_ROWS: Final = 10
"""How many failed rows the preview shows (the audit metrics count all of them)."""

_MAX_ERRORS_CHARS: Final = 400
_MAX_VALUES_CHARS: Final = 160


def read_metadata(df: pd.DataFrame, path: str) -> dict[str, Any]:
    """Rows and columns read from *path*."""
    return {
        "path": MetadataValue.path(path),
        "rows_read": len(df),
        "columns": MetadataValue.text(", ".join(map(str, df.columns))),
    }


def validation_metadata(result: PipelineResult) -> dict[str, Any]:
    """Rows read, valid and failed, the validation time and a preview of the failures."""
    metrics = result.metrics
    return {
        "rows_read": metrics.rows_in,
        "rows_valid": metrics.rows_out,
        "rows_failed": result.rows_failed,
        "duration_ms": MetadataValue.float(float(metrics.duration_ms)),
        "failed_rows_preview": MetadataValue.md(failures_preview(result)),
        "execution_id": MetadataValue.text(result.execution_id),
    }


def load_metadata(result: LoadResult) -> dict[str, Any]:
    """Rows inserted and updated, the load time and how the loader wrote them."""
    return {
        "table": MetadataValue.text(f"{result.schema}.{result.table}"),
        "rows_inserted": result.rows_inserted,
        "rows_updated": result.rows_updated,
        "duration_ms": MetadataValue.float(float(result.duration_ms)),
        "method": MetadataValue.text(str(result.method)),
        "batches": result.batches,
        "columns_dropped": MetadataValue.text(", ".join(result.columns_dropped) or "none"),
    }


def materialization_metadata(
    validation: PipelineResult,
    load: LoadResult,
    *,
    path: str,
    execution_id: str,
    duration_s: float,
) -> dict[str, Any]:
    """Rows read, valid, failed, inserted and updated; a preview of the failures; the
    load method and durations; the file read and the run's audit execution id."""
    metrics = validation.metrics
    return {
        "path": MetadataValue.path(path),
        "rows_read": metrics.rows_in,
        "rows_valid": metrics.rows_out,
        "rows_failed": validation.rows_failed,
        "rows_inserted": load.rows_inserted,
        "rows_updated": load.rows_updated,
        "failed_rows_preview": MetadataValue.md(failures_preview(validation)),
        "load_method": MetadataValue.text(str(load.method)),
        "load_duration_ms": MetadataValue.float(float(load.duration_ms)),
        "validation_duration_ms": MetadataValue.float(float(metrics.duration_ms)),
        "duration_s": MetadataValue.float(round(duration_s, 3)),
        "table": MetadataValue.text(f"{load.schema}.{load.table}"),
        "execution_id": MetadataValue.text(execution_id),
    }


def failures_preview(result: PipelineResult, limit: int = _PREVIEW_ROWS) -> str:
    """A Markdown table of the first *limit* failed rows of *result*.

    ``row`` is the row's 0-based position in the input, as in the errors' ``Row: N``;
    ``csv line`` is the line of the file it was read from (the header is line 1), assuming
    one line per record.
    """
    failed = result.failed_rows
    if failed.empty:
        return "No failed rows."
    shown = failed.head(limit)
    errors = result.errors
    lines = [
        "| row | csv line | step | errors | values |",
        "| --: | --: | --- | --- | --- |",
    ]
    data_columns = [c for c in failed.columns if c not in FAILED_ROW_COLUMNS]
    for record in shown.to_dict("records"):
        number = record["_row"]
        known = number is not pd.NA and number is not None
        position = str(int(number)) if known else "?"
        line = str(int(number) + 2) if known else "?"
        mine = errors[(errors["row"] == number).fillna(value=False)] if known else errors.iloc[:0]
        messages = "; ".join(format_issues(mine, result.domain))
        values = {column: record[column] for column in data_columns}
        lines.append(
            f"| {position} | {line} | {_cell(str(record['_step']), 60)} "
            f"| {_cell(messages, _MAX_ERRORS_CHARS)} "
            f"| {_cell(_values(values), _MAX_VALUES_CHARS)} |"
        )
    if len(failed) > limit:
        lines.append(f"\n… and {len(failed) - limit} more failed rows.")
    return "\n".join(lines)


def _values(data: Mapping[str, Any]) -> str:
    clean = sanitize_for_logging({k: None if _missing(v) else v for k, v in data.items()})
    return ", ".join(f"{key}={value!r}" for key, value in clean.items())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _cell(text: str, limit: int) -> str:
    # A pipe or a newline would break the Markdown table.
    flat = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def rejected_preview(records: Sequence[RejectedRow], rows_failed: int) -> str:
    """A Markdown table of the rejected rows in *records* (one line per input row, its
    reasons joined), of *rows_failed* in all.

    ``row`` is the row's 0-based input position, ``csv line`` the file line its record
    starts on. Values under sensitive column names are masked, and so are secrets in
    messages.
    """
    if not records:
        return "No rejected rows."
    by_row: dict[int, list[RejectedRow]] = {}
    for record in records:
        by_row.setdefault(record.input_row, []).append(record)
    lines = ["| row | csv line | errors | values |", "| --: | --: | --- | --- |"]
    for position, group in by_row.items():
        first = group[0]
        line = "?" if first.file_line is None else str(first.file_line)
        reasons = "; ".join(
            redact_text(
                f"{r.reason.field}: {r.reason.message}" if r.reason.field else r.reason.message
            )
            for r in group
        )
        lines.append(
            f"| {position} | {line} | {_cell(reasons, _MAX_ERRORS_CHARS)} "
            f"| {_cell(_values(first.raw_values), _MAX_VALUES_CHARS)} |"
        )
    if rows_failed > len(by_row):
        lines.append(f"\n… and {rows_failed - len(by_row)} more rejected rows.")
    return "\n".join(lines)


def frame_preview(frame: pd.DataFrame, total: int) -> str:
    """A Markdown table of *frame*'s rows (a preview of *total*), values masked."""
    if frame.empty:
        return "None." if total == 0 else f"{total} rows (no preview)."
    columns = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for record in frame.to_dict("records"):
        clean = sanitize_for_logging(
            {str(k): None if _missing(v) else v for k, v in record.items()}
        )
        lines.append("| " + " | ".join(_cell(str(clean[c]), 60) for c in columns) + " |")
    if total > len(frame):
        lines.append(f"\n… and {total - len(frame)} more.")
    return "\n".join(lines)


def streamed_metadata(
    loaded: StreamedLoad, *, path: str, execution_id: str, duration_s: float
) -> dict[str, Any]:
    """A streamed load's metadata: rows read, valid, rejected, inserted, updated and
    unchanged; the rejected rows stored and a preview of them; durations; the file, the
    table and the run's audit execution id."""
    load = loaded.result
    return {
        "path": MetadataValue.path(path),
        "rows_read": loaded.rows_read,
        "rows_valid": loaded.rows_valid,
        "rows_failed": loaded.rows_failed,
        "rows_inserted": load.rows_inserted,
        "rows_updated": load.rows_updated,
        "rows_unchanged": load.rows_unchanged,
        "rejected_rows": loaded.rejected_records,
        "failed_rows_preview": MetadataValue.md(
            rejected_preview(loaded.rejected_preview, loaded.rows_failed)
        ),
        "chunks": loaded.chunks,
        "load_method": MetadataValue.text(str(load.method)),
        "load_duration_ms": MetadataValue.float(float(load.duration_ms)),
        "validation_duration_ms": MetadataValue.float(round(loaded.validation_duration_ms, 3)),
        "duration_s": MetadataValue.float(round(duration_s, 3)),
        "table": MetadataValue.text(f"{load.schema}.{load.table}"),
        "execution_id": MetadataValue.text(execution_id),
    }


def dry_run_metadata(dry: DryRun, *, path: str, table: str) -> dict[str, Any]:
    """What a load of *path* would do: counts and previews of the rows that would be
    inserted, updated, left unchanged and rejected."""
    plan = dry.plan
    return {
        "dry_run": MetadataValue.bool(True),
        "path": MetadataValue.path(path),
        "table": MetadataValue.text(table),
        "rows_read": dry.rows_read,
        "rows_insert": plan.rows_insert,
        "rows_update": plan.rows_update,
        "rows_unchanged": plan.rows_unchanged,
        "rows_rejected": dry.rows_failed,
        "insert_preview": MetadataValue.md(frame_preview(plan.inserts, plan.rows_insert)),
        "update_preview": MetadataValue.md(frame_preview(plan.updates, plan.rows_update)),
        "unchanged_preview": MetadataValue.md(frame_preview(plan.unchanged, plan.rows_unchanged)),
        "rejected_preview": MetadataValue.md(
            rejected_preview(dry.rejected_preview, dry.rows_failed)
        ),
    }
