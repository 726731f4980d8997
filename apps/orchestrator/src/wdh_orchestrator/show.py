"""Show what the jobs left in the warehouse: ``python -m wdh_orchestrator.show [RUN]``.

Run it from the directory you run ``dagster dev`` in (``apps/orchestrator``): with no
``DATABASE_URL`` it opens the same embedded database (``./.wdh/pgdata``), starting it if
needed. It prints the latest runs of ``pipeline_executions``, the ``data_quality_metrics``
of the latest run and the first rows of ``public.sample_data``. Given a run's execution
id, it prints that run's audit row, its metrics and its rejected rows instead (input
row, file line, field, code, message, raw values -- those under secret-like column
names masked -- and the replay that resolved each); ``--rejected N`` lists at most N
(default 20). ``--sql`` runs a SELECT query of your own instead. Everything runs in a
READ ONLY transaction: a query that would write fails with one line, ``query failed:
<the server's message>``. (A guard against accidents, not a security boundary: whoever
runs this holds the credentials.)
The database is named by host and database only, never by its URL.

A problem reaching the database -- invalid settings, a malformed ``DATABASE_URL``, an
unknown database, a failed authentication, an unreachable server -- ends in one line on
stderr, ``show: <what to fix>``, and exit status 2; ``LOG_LEVEL=DEBUG`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from wdh_io.database import create_engine, describe_url_text, resolve_database_url
from wdh_io.quarantine import StoredRejectedRow, count_rejected_rows, list_rejected_rows
from wdh_logging import configure_logging, redact_text, sanitize_for_logging
from wdh_orchestration import describe_failure, resolve_execution_id

__all__ = ["connection_error", "main", "print_table", "query_error", "rejected_row_cells"]

_RUNS = """
SELECT execution_id, pipeline_name, status, started_at, duration_ms,
       rows_input, rows_output, rows_failed, error_message
FROM pipeline_executions ORDER BY started_at DESC LIMIT %(limit)s
"""
_METRICS = """
SELECT domain, metric_name, metric_value FROM data_quality_metrics
WHERE execution_id = (SELECT execution_id FROM pipeline_executions
                      ORDER BY started_at DESC LIMIT 1)
ORDER BY domain, metric_name
"""
_ROWS = "SELECT * FROM public.sample_data ORDER BY record_id LIMIT %(limit)s"
_COUNT = "SELECT count(*) FROM public.sample_data"
_RUN = """
SELECT execution_id, pipeline_name, status, started_at, duration_ms,
       rows_input, rows_output, rows_failed, error_message, input_file_path
FROM pipeline_executions WHERE execution_id = %(execution_id)s
"""
_RUN_METRICS = """
SELECT domain, metric_name, metric_value FROM data_quality_metrics
WHERE execution_id = %(execution_id)s ORDER BY domain, metric_name
"""
_REJECTED_COLUMNS = (
    "input_row",
    "file_line",
    "field",
    "code",
    "message",
    "raw_values",
    "resolved_by",
)
_RAW_WIDTH = 160  # raw values are the point of the listing: cut later than other cells


def print_table(
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    out: TextIO,
    max_widths: dict[str, int] | None = None,
) -> None:
    """Print *rows* as an aligned text table (values cut to 60 characters, or to
    ``max_widths[column]``)."""
    limits = [(max_widths or {}).get(c, 60) for c in columns]
    cells = [
        [_text(value, limit) for value, limit in zip(row, limits, strict=True)] for row in rows
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + "\n")
    if not rows:
        out.write("(no rows)\n")


def _text(value: Any, limit: int = 60) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def rejected_row_cells(row: StoredRejectedRow) -> list[Any]:
    """One rejected row as the cells of ``show``'s listing (``_REJECTED_COLUMNS``).

    Raw values are JSON, with the values of secret-like columns (``password``,
    ``api_token``...) and secrets inside values masked by ``wdh_logging``'s sanitizer.
    """
    raw = json.dumps(sanitize_for_logging(row.raw_values), ensure_ascii=False, default=str)
    return [
        row.input_row,
        row.file_line,
        row.reason.field,
        row.reason.error_code,
        " ".join(row.reason.message.split()),
        raw,
        row.resolved_by_execution_id,
    ]


def query_error(exc: BaseException) -> str | None:
    """``query failed: <primary message>`` for a database error raised by a query, else None.

    The primary message is the server's first line (``cannot execute DELETE in a
    read-only transaction``, ``syntax error at or near "SELEC"``), without its DETAIL,
    the statement or a traceback; secrets are redacted. *exc* is SQLAlchemy's wrapper,
    whose ``orig`` is the driver's error (this app declares no SQLAlchemy dependency of
    its own, hence the duck typing).
    """
    orig = getattr(exc, "orig", None)
    if not isinstance(orig, Exception):
        return None
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig).strip().split("\n")[0]
    return redact_text(f"query failed: {primary}")


def connection_error(exc: BaseException, where: str | None = None, *, prog: str = "show") -> str:
    """``<prog>: <reason>`` for a failure to reach the database, in one line.

    A driver error raised while connecting is named by the server's first line
    (``connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused``,
    ``FATAL:  database "wdh" does not exist``) and *where* (host and database); invalid
    settings and wdh errors by :func:`wdh_orchestration.describe_failure`.
    """
    orig = getattr(exc, "orig", None)
    if isinstance(orig, Exception):
        first = next(
            (ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__
        )
        prefix = f"cannot connect to the {where}: " if where else "cannot connect: "
        return redact_text(f"{prog}: {prefix}{first}")
    return f"{prog}: {describe_failure(exc)}"


def _debugging() -> bool:
    return os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def _read_only(conn: Any) -> None:
    # READ ONLY for this transaction and (should a COMMIT inside --sql end it) the
    # session's next ones; SELECT 1 takes the first snapshot, after which PostgreSQL
    # refuses SET TRANSACTION READ WRITE.
    conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.exec_driver_sql("SELECT 1")


def _section(conn: Any, title: str, sql: str, out: TextIO, **params: Any) -> None:
    # Driver-level SQL (psycopg2 ``%(name)s`` parameters): a query typed with --sql runs
    # exactly as written, and this app needs no SQLAlchemy import of its own.
    out.write(f"\n== {title}\n")
    result = conn.exec_driver_sql(sql, params) if params else conn.exec_driver_sql(sql)
    print_table(result.fetchall(), list(result.keys()), out)


def _show_run(conn: Any, execution_id: str, limit: int, out: TextIO, err: TextIO) -> int:
    """Print run *execution_id*: its audit row, its metrics and its rejected rows."""
    run = conn.exec_driver_sql(_RUN, {"execution_id": execution_id})
    columns, rows = list(run.keys()), run.fetchall()
    if not rows:
        err.write(
            f"show: no run {execution_id!r} in pipeline_executions (the latest runs: "
            "python -m wdh_orchestrator.show)\n"
        )
        return 1
    out.write(f"\n== pipeline_executions {execution_id}\n")
    print_table(rows, columns, out)
    _section(conn, "data_quality_metrics", _RUN_METRICS, out, execution_id=execution_id)
    total = count_rejected_rows(conn, execution_id)
    unresolved = count_rejected_rows(conn, execution_id, unresolved_only=True)
    listed = list_rejected_rows(conn, execution_id, limit=limit)
    shown = f", the first {len(listed)}" if len(listed) < total else ""
    out.write(f"\n== rejected_rows ({total} errors, {unresolved} unresolved{shown})\n")
    print_table(
        [rejected_row_cells(r) for r in listed],
        _REJECTED_COLUMNS,
        out,
        max_widths={"raw_values": _RAW_WIDTH, "message": 100},
    )
    return 0


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Print the audit tables and the loaded rows, one run and its rejected rows, or the
    result of ``--sql``.

    Returns 0, 1 when the ``--sql`` query failed or the run is unknown, or 2 when the
    database cannot be reached (one line on *err*).
    """
    parser = argparse.ArgumentParser(prog="python -m wdh_orchestrator.show", description=__doc__)
    parser.add_argument(
        "execution_id",
        nargs="?",
        help="a run's execution id: show its audit row, metrics and rejected rows",
    )
    parser.add_argument(
        "--rejected", type=int, default=20, help="how many rejected rows of the run to list"
    )
    parser.add_argument("--runs", type=int, default=5, help="how many recent runs to list")
    parser.add_argument("--rows", type=int, default=10, help="how many sample_data rows to list")
    parser.add_argument(
        "--sql",
        metavar="SELECT",
        help="run this SELECT query instead and print its rows (read-only: writes fail)",
    )
    args = parser.parse_args(argv)
    # An entry point configures logging; only errors are worth a line here: the one-line
    # message says what failed (a warning such as a refused connection would repeat it).
    configure_logging(level="ERROR", fmt="pretty", stream=sys.stderr)

    where: str | None = None
    try:
        url = resolve_database_url()
        where = describe_url_text(url)
        engine = create_engine(url, pool_size=1)
        conn = engine.connect()
    except Exception as exc:
        if _debugging():
            raise
        err.write(connection_error(exc, where) + "\n")
        return 2
    out.write(f"{where}\n")
    try:
        with conn:
            _read_only(conn)
            if args.sql:
                try:
                    _section(conn, args.sql.strip(), args.sql, out)
                except Exception as exc:
                    message = query_error(exc)
                    if message is None:
                        raise
                    err.write(message + "\n")
                    return 1
                return 0
            if args.execution_id:
                run = resolve_execution_id(conn, args.execution_id)
                return _show_run(conn, run, max(args.rejected, 0), out, err)
            _section(conn, f"pipeline_executions (latest {args.runs})", _RUNS, out, limit=args.runs)
            _section(conn, "data_quality_metrics of the latest run", _METRICS, out)
            total = conn.exec_driver_sql(_COUNT).scalar_one()
            _section(conn, f"public.sample_data ({total} rows)", _ROWS, out, limit=args.rows)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
