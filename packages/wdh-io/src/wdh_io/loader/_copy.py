"""The PostgreSQL fast path: ``COPY … FROM STDIN`` streamed from Arrow-written CSV.

Appends stream straight into the target table. Upserts stream into a temporary staging
table (same column types, same NOT NULL columns, dropped at commit) and then run one
``INSERT … SELECT … ON CONFLICT (keys) DO UPDATE`` whose ``RETURNING (xmax = 0)`` is
counted on the server, so inserted and updated rows are exact.

Everything runs on the caller's connection, inside the caller's transaction. The frame
is converted block by block (``_BLOCK_ROWS`` rows of CSV at a time, built by a helper
thread while the previous block is being sent), so memory stays near one block beyond
the frame itself.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from wdh_io._translate import is_disconnect, translate
from wdh_io.errors import DatabaseError
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._values import ColumnKind, ColumnSpec, to_arrow

__all__ = ["copy_append", "copy_upsert", "supports_copy"]

_BLOCK_ROWS = 32_768
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, batch_size=16_384)
_NO_PARAMETERS = {"no_parameters": True}  # identifiers may hold '%': no driver formatting


def quote(name: str) -> str:
    """A PostgreSQL identifier, always quoted: ``"`` doubled, nothing else touched.

    (SQLAlchemy's preparer also doubles ``%`` for the driver's parameter formatting;
    these statements are never formatted, so that would change the name.)
    """
    return '"' + name.replace('"', '""') + '"'


def _qualified(table: sa.Table) -> str:
    return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)


def supports_copy(dialect: Dialect) -> bool:
    """The COPY path needs PostgreSQL through psycopg2 (``cursor.copy_expert``)."""
    return dialect.name == "postgresql" and dialect.driver == "psycopg2"


def _csv_blocks(frame: pd.DataFrame, specs: Sequence[ColumnSpec]) -> Iterator[bytes]:
    for start in range(0, len(frame), _BLOCK_ROWS):
        table = to_arrow(frame.iloc[start : start + _BLOCK_ROWS], specs)
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(table, sink, _WRITE_OPTIONS)
        yield sink.getvalue().to_pybytes()


class _Prefetch:
    """Yields blocks built one ahead by a daemon thread (Arrow releases the GIL)."""

    _DONE = object()

    def __init__(self, blocks: Iterator[bytes]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(blocks,), daemon=True)
        self._thread.start()

    def _run(self, blocks: Iterator[bytes]) -> None:
        try:
            for block in blocks:
                if self._stop.is_set():
                    return
                self._queue.put(block)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, raised there
            self._queue.put(exc)
            return
        self._queue.put(self._DONE)

    def read(self, _size: int = -1) -> bytes:
        """The next block (psycopg2 sends whatever it gets); ``b""`` at the end."""
        item = self._queue.get()
        if item is self._DONE:
            self._queue.put(item)  # stay at the end for repeated reads
            return b""
        if isinstance(item, BaseException):
            raise item
        if not isinstance(item, bytes):
            raise TypeError(f"unexpected block {type(item).__name__}")
        return item

    def close(self) -> None:
        """Stop the producer and wait for it, whether or not every block was read.

        Draining once is not enough: a producer blocked on the full queue puts its block
        as soon as the drain makes room, and if that was the last block it then blocks
        on putting the end marker. So drain until the thread has ended.
        """
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:  # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
            self._thread.join(timeout=0.01)


def _copy_in(
    connection: Connection,
    target_sql: str,
    columns_sql: str,
    frame: pd.DataFrame,
    specs: Sequence[ColumnSpec],
    *,
    error_context: dict[str, Any],
) -> int:
    statement = f"COPY {target_sql} ({columns_sql}) FROM STDIN WITH (FORMAT csv)"
    with _utc_session(connection, specs, error_context):
        return _stream(connection, statement, frame, specs, error_context=error_context)


@contextlib.contextmanager
def _utc_session(
    connection: Connection, specs: Sequence[ColumnSpec], error_context: dict[str, Any]
) -> Iterator[None]:
    """Read zone-less timestamps as UTC during COPY, then restore the caller's TimeZone.

    ``set_config(…, true)`` is transaction-local, so even a failed load leaves the
    session's own setting untouched.
    """
    if not any(spec.kind is ColumnKind.TIMESTAMPTZ for spec in specs):
        yield
        return
    try:
        previous = connection.execute(sa.text("SELECT current_setting('TimeZone')")).scalar_one()
        connection.execute(sa.text("SELECT set_config('TimeZone', 'UTC', true)"))
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc
    yield  # an error while streaming aborts the transaction, which reverts the setting
    try:
        connection.execute(
            sa.text("SELECT set_config('TimeZone', :zone, true)"), {"zone": previous}
        )
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def _stream(
    connection: Connection,
    statement: str,
    frame: pd.DataFrame,
    specs: Sequence[ColumnSpec],
    *,
    error_context: dict[str, Any],
) -> int:
    dialect = connection.dialect
    raw: Any = connection.connection.driver_connection
    stream = _Prefetch(_csv_blocks(frame, specs))
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(statement, stream, size=1 << 20)
            count = int(cursor.rowcount)
    except dialect.loaded_dbapi.Error as exc:
        # A backend killed mid-stream surfaces as a bare "invalid socket" with no
        # SQLSTATE; psycopg2 has marked the connection closed by then, which is what
        # makes it a (retryable) lost connection rather than a plain DatabaseError.
        if is_disconnect(exc, dialect, raw):
            connection.invalidate(exc)
        raise translate(exc, dialect=dialect, raw_connection=raw, **error_context) from exc
    finally:
        stream.close()
    return count if count >= 0 else len(frame)


def _execute(connection: Connection, statement: str, error_context: dict[str, Any]) -> Any:
    try:
        return connection.exec_driver_sql(statement, execution_options=_NO_PARAMETERS)
    except sa.exc.DBAPIError as exc:
        raise translate(exc, dialect=connection.dialect, **error_context) from exc


def copy_append(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    *,
    error_context: dict[str, Any],
) -> int:
    """COPY ``frame`` into the table; return the number of rows written."""
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    count = _copy_in(
        connection,
        _qualified(info.table),
        columns_sql,
        frame,
        specs,
        error_context=error_context,
    )
    if count != len(frame):
        raise DatabaseError(
            f"COPY wrote {count} rows, expected {len(frame)}",
            table=error_context["table"],
            schema=error_context["schema"],
        )
    return count


def copy_upsert(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    upsert_keys: Sequence[str],
    *,
    error_context: dict[str, Any],
) -> tuple[int, int]:
    """COPY into a staging table, then one INSERT … ON CONFLICT DO UPDATE.

    Returns ``(rows_inserted, rows_updated)``, counted from ``RETURNING (xmax = 0)``.
    """
    target = _qualified(info.table)
    stage = quote(f"wdh_stage_{uuid.uuid4().hex[:16]}")
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    _execute(
        connection,
        # Identifiers only, each quoted by quote(); no data enters the SQL text.
        f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS "  # noqa: S608
        f"SELECT {columns_sql} FROM {target} WITH NO DATA",
        error_context,
    )
    required = [spec.name for spec in specs if not spec.nullable]
    if required:
        # NOT NULL on the staging table makes COPY report the offending line and column.
        clauses = ", ".join(f"ALTER COLUMN {quote(name)} SET NOT NULL" for name in required)
        _execute(connection, f"ALTER TABLE {stage} {clauses}", error_context)
    _copy_in(connection, stage, columns_sql, frame, specs, error_context=error_context)
    keys = set(upsert_keys)
    updated_columns = [spec.name for spec in specs if spec.name not in keys] or [upsert_keys[0]]
    assignments = ", ".join(f"{quote(name)} = EXCLUDED.{quote(name)}" for name in updated_columns)
    conflict = ", ".join(quote(key) for key in upsert_keys)
    counts = _execute(
        connection,
        f"WITH written AS (INSERT INTO {target} ({columns_sql}) "  # noqa: S608
        f"SELECT {columns_sql} FROM {stage} "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments} "
        "RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) "
        "FROM written",
        error_context,
    ).one()
    _execute(connection, f"DROP TABLE {stage}", error_context)
    return int(counts[0]), int(counts[1])
