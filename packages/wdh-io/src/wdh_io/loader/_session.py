"""The session ``TimeZone`` of a load: zone-less timestamps mean UTC on both paths.

A naive timestamp (a ``datetime64`` column without a zone, a naive ``datetime``, or text
without an offset such as ``'2024-01-01 12:00'``) going into a ``timestamptz`` column is
read as UTC, whatever the session's ``TimeZone``: the frame's values are normalised to
UTC before either path sees them, and text is read by PostgreSQL while the transaction's
``TimeZone`` is UTC (set here around the writes of both paths).

Also here: the transaction's own time, ``now()``, which a load stamps its rows with.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wdh_io._translate import translate
from wdh_io.loader._values import ColumnKind, ColumnSpec

__all__ = ["transaction_now", "utc_session"]


def transaction_now(connection: Connection) -> pd.Timestamp:
    """PostgreSQL's ``now()`` in *connection*'s transaction, in UTC: when it began, the
    same in every statement of it."""
    now = connection.exec_driver_sql("SELECT now()").scalar_one()
    return pd.Timestamp(now).tz_convert("UTC")


@contextmanager
def utc_session(
    connection: Connection, specs: Sequence[ColumnSpec], error_context: dict[str, Any]
) -> Iterator[None]:
    """Read zone-less timestamps as UTC while the rows are written, then restore the
    caller's TimeZone (PostgreSQL only, and only for loads into ``timestamptz`` columns).

    ``set_config(…, true)`` is transaction-local, so even a failed load leaves the
    session's own setting untouched.
    """
    if connection.dialect.name != "postgresql" or not any(
        spec.kind is ColumnKind.TIMESTAMPTZ for spec in specs
    ):
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
