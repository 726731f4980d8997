"""Show what the sample job left in the warehouse: ``python -m wdh_orchestrator.show``.

Run it from the directory you run ``dagster dev`` in (``apps/orchestrator``): with no
``DATABASE_URL`` it opens the same embedded database (``./.wdh/pgdata``), starting it if
needed. It prints the latest runs of ``pipeline_executions``, the ``data_quality_metrics``
of the latest run and the first rows of ``public.sample_data``; ``--sql`` runs a query of
your own instead. The database is named by host and database only, never by its URL.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TextIO

from wdh_io.database import create_engine, resolve_database_url
from wdh_logging import configure_logging

__all__ = ["describe", "main", "print_table"]

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


class _Url(Protocol):
    """The parts of a SQLAlchemy ``URL`` that :func:`describe` reads."""

    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...
    @property
    def database(self) -> str | None: ...
    @property
    def query(self) -> Mapping[str, Any]: ...


def print_table(rows: Sequence[Sequence[Any]], columns: Sequence[str], out: TextIO) -> None:
    """Print *rows* as an aligned text table (values cut to 60 characters)."""
    cells = [[_text(value) for value in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + "\n")
    if not rows:
        out.write("(no rows)\n")


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def describe(url: _Url) -> str:
    """Where *url* points, without user or password: ``db on host:port`` or the socket."""
    socket_dir = url.query.get("host")
    if url.host is None and socket_dir:
        return f"{url.database} (unix socket in {socket_dir})"
    return f"{url.database} on {url.host}:{url.port or 5432}"


def _section(conn: Any, title: str, sql: str, out: TextIO, **params: Any) -> None:
    # Driver-level SQL (psycopg2 ``%(name)s`` parameters): a query typed with --sql runs
    # exactly as written, and this app needs no SQLAlchemy import of its own.
    out.write(f"\n== {title}\n")
    result = conn.exec_driver_sql(sql, params) if params else conn.exec_driver_sql(sql)
    print_table(result.fetchall(), list(result.keys()), out)


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Print the audit tables and the loaded rows (or the result of ``--sql``)."""
    parser = argparse.ArgumentParser(prog="python -m wdh_orchestrator.show", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="how many recent runs to list")
    parser.add_argument("--rows", type=int, default=10, help="how many sample_data rows to list")
    parser.add_argument("--sql", help="run this query instead and print its rows")
    args = parser.parse_args(argv)
    # An entry point configures logging; only problems are worth a line here.
    configure_logging(level="WARNING", fmt="pretty", stream=sys.stderr)

    url = resolve_database_url()
    out.write(f"database: {describe(url)}\n")
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            if args.sql:
                _section(conn, args.sql.strip(), args.sql, out)
                return 0
            _section(conn, f"pipeline_executions (latest {args.runs})", _RUNS, out, limit=args.runs)
            _section(conn, "data_quality_metrics of the latest run", _METRICS, out)
            total = conn.exec_driver_sql(_COUNT).scalar_one()
            _section(conn, f"public.sample_data ({total} rows)", _ROWS, out, limit=args.rows)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
