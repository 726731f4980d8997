"""The PostgreSQL fast path: ``COPY … FROM STDIN`` streamed from Arrow-written CSV.

Appends stream straight into the target table (into a view: through a staging table).
Upserts stream into a temporary staging table (``copy_stage``), which the merge both
paths share (``_staging``) then writes, so the counts are what PostgreSQL counted.

Everything runs on the caller's connection, inside the caller's transaction. The frame
is converted block by block (``_BLOCK_ROWS`` rows of CSV at a time, built by a helper
thread while the previous block is being sent), so memory stays near one block beyond
the frame itself.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy.engine import Connection, Dialect

from wdh_io._translate import is_disconnect, translate
from wdh_io.errors import DataValidationError
from wdh_io.loader._projection import TableInfo
from wdh_io.loader._staging import create_stage, insert_from_stage, qualified, quote
from wdh_io.loader._values import ColumnSpec, to_arrow

__all__ = ["copy_append", "copy_stage", "supports_copy"]

_BLOCK_ROWS = 32_768
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, batch_size=16_384)


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
        #: The exception that stopped the producer (the CSV conversion), if any: psycopg2
        #: reports it to the server as a failed COPY (SQLSTATE 57014), so the loader
        #: raises this one instead.
        self.error: BaseException | None = None
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
            self.error = exc
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
    return _stream(connection, statement, frame, specs, error_context=error_context)


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
        if stream.error is not None:
            raise DataValidationError(
                f"{error_context['action']}: the frame could not be converted for COPY "
                f"({type(stream.error).__name__}: {stream.error})",
                table=error_context["table"],
                schema=error_context["schema"],
            ) from stream.error
        # A backend killed mid-stream surfaces as a bare "invalid socket" with no
        # SQLSTATE; psycopg2 has marked the connection closed by then, which is what
        # makes it a (retryable) lost connection rather than a plain DatabaseError.
        if is_disconnect(exc, dialect, raw):
            connection.invalidate(exc)
        raise translate(exc, dialect=dialect, raw_connection=raw, **error_context) from exc
    finally:
        stream.close()
    return count if count >= 0 else len(frame)


def copy_append(
    connection: Connection,
    info: TableInfo,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    *,
    error_context: dict[str, Any],
) -> int:
    """COPY ``frame`` into the table; return the rows stored (a trigger may skip some).

    A view cannot be the target of COPY: its rows go through a staging table and one
    ``INSERT … SELECT``, as the generic path's ``INSERT`` does.
    """
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    if info.relkind == "v":
        stage = create_stage(connection, info, specs, error_context)
        _copy_in(connection, stage, columns_sql, frame, specs, error_context=error_context)
        return insert_from_stage(connection, info, specs, stage, error_context=error_context)
    return _copy_in(
        connection,
        qualified(info.table),
        columns_sql,
        frame,
        specs,
        error_context=error_context,
    )


def copy_stage(
    connection: Connection,
    stage: str,
    specs: Sequence[ColumnSpec],
    frame: pd.DataFrame,
    *,
    error_context: dict[str, Any],
) -> int:
    """COPY ``frame`` into a staging table (see ``_staging``); return the rows staged."""
    columns_sql = ", ".join(quote(spec.name) for spec in specs)
    return _copy_in(connection, stage, columns_sql, frame, specs, error_context=error_context)
