"""WarehouseLoader on a real PostgreSQL: both load paths, every bad input, retries, logging.

Each test gets its own fresh database (root conftest) and creates its own tables. The
URL carries a planted password (the test server trusts local connections, so it is
ignored for authentication) to prove it never reaches an error or a log line.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from structlog.testing import capture_logs

from wdh_domain.pipelines import RetryConfig
from wdh_io.database._engine import create_engine
from wdh_io.errors import (
    CommitOutcomeUnknownError,
    ConnectionLostError,
    ConstraintViolationError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
)
from wdh_io.loader import LoadResult, WarehouseLoader

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-planted"  # pragma: allowlist secret
OTHER_ROW = "other-row-value-7731"
METHODS = ["copy", "generic"]
NO_RETRY = RetryConfig(max_attempts=1)


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    engine = create_engine(database_url.set(password=SECRET), pool_size=2)
    yield engine
    engine.dispose()


def run(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement, execution_options={"no_parameters": True})


def rows(engine: sa.Engine, table: str, order: str = "id") -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}")]


def times(values: list[str | None], *, utc: bool = False) -> pd.Series:
    """Timestamps from ISO strings (None = NaT); tz-aware when ``utc``."""
    return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), utc=utc, format="ISO8601"))


def objects(*values: object) -> pd.Series:
    """A column of arbitrary Python values."""
    return pd.Series(list(values), dtype=object)


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())


def loader_for(engine: sa.Engine, method: str, **kwargs: Any) -> WarehouseLoader:
    kwargs.setdefault("retry", NO_RETRY)
    return WarehouseLoader(engine, method=method, **kwargs)  # type: ignore[arg-type]


def assert_clean(error: BaseException, *, chain_has_no_other_rows: bool = False) -> None:
    """No secret anywhere in the exception chain; no row value in the message.

    The driver's error (kept as ``__cause__`` for debugging) may quote the failing row
    itself; with ``chain_has_no_other_rows`` the test checks it quotes no *other* row.
    """
    assert OTHER_ROW not in str(error)
    seen: BaseException | None = error
    while seen is not None:
        assert SECRET not in str(seen)
        if chain_has_no_other_rows:
            assert OTHER_ROW not in str(seen)
        seen = seen.__cause__


PEOPLE = (
    "CREATE TABLE people (id integer PRIMARY KEY, name varchar(10) NOT NULL, "
    "amount numeric(6, 2), qty integer CHECK (qty >= 0), note text)"
)


def people(n: int = 5, first: int = 1) -> pd.DataFrame:
    ids = list(range(first, first + n))
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"p{i}" for i in ids],
            "amount": [decimal.Decimal(i) / 4 for i in ids],
            "qty": ids,
            "note": [OTHER_ROW] * n,
        }
    )


# ---------------------------------------------------------------------------- happy paths


@pytest.mark.parametrize("method", METHODS)
def test_append_then_upsert_counts_exactly(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    loader = loader_for(engine, method, batch_size=2)
    first = loader.load_dataframe(people(5), "people")
    assert (first.rows_inserted, first.rows_updated, first.batches) == (5, 0, 3)
    assert first.method == method
    assert first.table == "people"
    assert first.schema == "public"
    second = loader.load_dataframe(
        people(4, first=4).assign(name="new"), "people", upsert_keys=["id"]
    )
    assert (second.rows_inserted, second.rows_updated, second.batches) == (2, 2, 2)
    assert [r[1] for r in rows(engine, "people")] == ["p1", "p2", "p3", "new", "new", "new", "new"]


def test_parity_both_paths_same_rows_and_results(
    engine: sa.Engine, postgresql: psycopg.Connection[Any]
) -> None:
    # A session time zone far from UTC: a path reading zone-less values in it would differ.
    run(engine, f"ALTER DATABASE {postgresql.info.dbname} SET TimeZone TO 'Asia/Shanghai'")
    engine.dispose()
    ddl = (
        "CREATE TABLE {t} (id bigint, k text, name text, amount numeric(12, 3), "
        "f double precision, ok boolean, d date, ts timestamp, tz timestamptz, n integer, "
        "ots timestamp, otz timestamptz, od date, PRIMARY KEY (id, k))"
    )
    run(engine, ddl.format(t="via_copy"), ddl.format(t="via_generic"))
    shanghai = dt.timezone(dt.timedelta(hours=8))
    naive = dt.datetime(2024, 1, 1, 12, 0, 0, 250_000)  # noqa: DTZ001 - naive means UTC
    aware = dt.datetime(2024, 1, 1, 20, 0, tzinfo=shanghai)
    base = pd.DataFrame(
        {
            "id": np.arange(7, dtype=np.int64),
            "k": ["a", "b", "中", "😀", "", "x,y", 'q"q'],
            "name": ["n0", None, "n2", "línea\nnueva", "tab\there", "\\back", "ok"],
            "amount": [decimal.Decimal("1.5"), None, decimal.Decimal("-2.125"), 3, 4, 5, 6],
            "f": [0.1, np.nan, 1e300, -0.0, 2.5, 3.25, None],
            "ok": pd.array([True, None, False, True, False, True, None], dtype="boolean"),
            "d": [dt.date(2024, 2, 29), None, dt.date(1999, 12, 31)] + [dt.date(2000, 1, 1)] * 4,
            "ts": times(["2024-01-01 00:00:01.5", None] + ["2020-06-30 23:59:59"] * 5),
            "tz": times(
                ["2024-01-01T08:00:00+08:00", None] + ["2020-06-30T00:00:00Z"] * 5,
                utc=True,
            ),
            "n": pd.array([1, None, 3, 4, 5, 6, None], dtype="Int64"),
            # Python objects (rows from pydantic models): naive and aware, and dates.
            "ots": objects(naive, aware, None, naive, aware, naive, aware),
            "otz": objects(aware, naive, None, aware, naive, aware, naive),
            "od": objects(dt.date(2024, 2, 29), None, naive, *[dt.date(1999, 1, 1)] * 4),
            "ignored": range(7),
        }
    )
    upsert = base.iloc[3:].assign(name="upd", f=9.5)
    upsert = pd.concat([upsert, base.iloc[:2].assign(id=[100, 101])], ignore_index=True)
    results: dict[str, list[LoadResult]] = {}
    for method in METHODS:
        loader = loader_for(engine, method, batch_size=3)
        table = f"via_{method}"
        results[method] = [
            loader.load_dataframe(base, table),
            loader.load_dataframe(upsert, table, upsert_keys=["id", "k"]),
        ]

    def comparable(result: LoadResult) -> tuple[Any, ...]:
        return (
            result.rows_inserted,
            result.rows_updated,
            result.columns_dropped,
            result.batches,
            result.schema,
        )

    assert [comparable(r) for r in results["copy"]] == [comparable(r) for r in results["generic"]]
    assert [comparable(r) for r in results["copy"]] == [
        (7, 0, ("ignored",), 3, "public"),
        (2, 4, ("ignored",), 2, "public"),
    ]
    assert rows(engine, "via_copy", "id, k") == rows(engine, "via_generic", "id, k")
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TimeZone TO 'UTC'")
        stored = conn.exec_driver_sql(
            "SELECT ots::text, otz::text, od::text FROM via_generic WHERE id = 0"
        ).one()
    assert tuple(stored) == ("2024-01-01 12:00:00.25", "2024-01-01 12:00:00+00", "2024-02-29")


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Shanghai"])
@pytest.mark.parametrize("method", METHODS)
def test_types_round_trip_whatever_the_session_time_zone(
    engine: sa.Engine, postgresql: psycopg.Connection[Any], method: str, zone: str
) -> None:
    dbname = postgresql.info.dbname
    run(engine, f"ALTER DATABASE {dbname} SET TimeZone TO '{zone}'")
    engine.dispose()  # new connections pick up the database's time zone
    run(
        engine,
        "CREATE TABLE typed (id integer PRIMARY KEY, txt text, num numeric, f real, "
        "big bigint, ok boolean, d date, naive timestamp, aware timestamptz, "
        "naive_into_tz timestamptz, aware_into_naive timestamp, "
        "obj_naive timestamp, obj_aware timestamptz, obj_naive_into_tz timestamptz, "
        "obj_aware_into_naive timestamp, obj_date date)",
    )
    plus8 = dt.timezone(dt.timedelta(hours=8))
    obj_naive = dt.datetime(2024, 3, 10, 2, 30)  # noqa: DTZ001 - naive means UTC
    obj_aware = dt.datetime(2024, 3, 10, 10, 30, tzinfo=plus8)
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "txt": ["中文字符", "emoji 😀🎉", None, pd.NA],
            "num": [decimal.Decimal("12345678901234567890.123456789"), np.nan, None, 1],
            "f": [np.float32(1.5), np.nan, None, 2.0],
            "big": pd.Series([np.int64(2**62), None, 3, np.int64(-5)], dtype=object),
            "ok": [np.bool_(True), False, None, pd.NA],
            "d": [dt.date(2024, 2, 29), pd.NaT, None, dt.date(1970, 1, 1)],
            "naive": times(["2024-03-10 02:30:00", None, "2024-01-01 00:00:00", None]),
            "aware": times(["2024-03-10T10:30:00+08:00", None, None, None], utc=True),
            "naive_into_tz": times(["2024-03-10 02:30:00", None, None, None]),
            "aware_into_naive": pd.Series(times(["2024-03-10T10:30:00+08:00", None, None, None])),
            "obj_naive": objects(obj_naive, None, None, None),
            "obj_aware": objects(obj_aware, None, None, None),
            "obj_naive_into_tz": objects(obj_naive, None, None, None),
            "obj_aware_into_naive": objects(obj_aware, None, None, None),
            "obj_date": objects(dt.date(2024, 2, 29), None, None, None),
        }
    )
    loader_for(engine, method).load_dataframe(frame, "typed")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW TimeZone").scalar_one() == zone
        conn.exec_driver_sql("SET TimeZone TO 'UTC'")
        got = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM typed ORDER BY id")]
    utc = dt.UTC
    assert got[0] == (
        1,
        "中文字符",
        decimal.Decimal("12345678901234567890.123456789"),
        1.5,
        2**62,
        True,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 3, 10, 2, 30),  # noqa: DTZ001 - a naive column, UTC wall time
        dt.datetime(2024, 3, 10, 2, 30, tzinfo=utc),
        dt.datetime(2024, 3, 10, 2, 30, tzinfo=utc),
        dt.datetime(2024, 3, 10, 2, 30),  # noqa: DTZ001 - a naive column, UTC wall time
        dt.datetime(2024, 3, 10, 2, 30),  # noqa: DTZ001 - a naive column, UTC wall time
        dt.datetime(2024, 3, 10, 2, 30, tzinfo=utc),
        dt.datetime(2024, 3, 10, 2, 30, tzinfo=utc),
        dt.datetime(2024, 3, 10, 2, 30),  # noqa: DTZ001 - a naive column, UTC wall time
        dt.date(2024, 2, 29),
    )
    assert got[1] == (2, "emoji 😀🎉", None, None, None, False, *[None] * 10)
    assert got[2][:4] == (3, None, None, None)
    assert got[3][:6] == (4, None, decimal.Decimal(1), 2.0, -5, None)


def test_empty_frame_writes_nothing(engine: sa.Engine) -> None:
    run(engine, PEOPLE)
    for method in METHODS:
        result = loader_for(engine, method).load_dataframe(people(0), "people", upsert_keys=["id"])
        assert (result.rows_inserted, result.rows_updated, result.batches) == (0, 0, 0)
        assert result.columns_dropped == ()
    assert count(engine, "people") == 0


@pytest.mark.parametrize("method", METHODS)
def test_a_frame_without_rows_or_columns_is_a_zero_load(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    loader = loader_for(engine, method)
    for keys in (None, ["id"]):
        result = loader.load_dataframe(pd.DataFrame(), "people", upsert_keys=keys)
        assert (result.rows_inserted, result.rows_updated, result.batches) == (0, 0, 0)
        assert (result.columns_dropped, result.method) == ((), method)
    with pytest.raises(TableNotFoundError, match="table 'nowhere' does not exist"):
        loader.load_dataframe(pd.DataFrame(), "nowhere")  # the table is still checked
    rows_no_columns = pd.DataFrame(index=range(3))
    with pytest.raises(DataValidationError, match="no column of the DataFrame matches"):
        loader.load_dataframe(rows_no_columns, "people")
    with pytest.raises(DataValidationError, match="no column of the DataFrame matches"):
        loader.load_dataframe(pd.DataFrame({"other": [1]}), "people")
    assert count(engine, "people") == 0


@pytest.mark.parametrize("method", METHODS)
def test_sql_looking_identifiers_are_plain_names(engine: sa.Engine, method: str) -> None:
    table = 'x"; drop table t; --'
    run(
        engine,
        "CREATE TABLE t (id integer)",
        'CREATE SCHEMA "we""ird; --"',
        'CREATE TABLE "we""ird; --"."x""; drop table t; --" '
        '("id; --" integer PRIMARY KEY, "a""b" text, "100%" integer, "Select" timestamptz)',
    )
    frame = pd.DataFrame(
        {
            "id; --": [1, 2],
            'a"b': ["'; delete from t; --", "%s %(x)s"],
            "100%": [1, 2],
            "Select": times(["2024-01-01T00:00:00Z", None]),
        }
    )
    loader = loader_for(engine, method)
    assert loader.load_dataframe(frame, table, schema='we"ird; --').rows_inserted == 2
    again = loader.load_dataframe(frame, table, schema='we"ird; --', upsert_keys=["id; --"])
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 2)
    assert count(engine, "t") == 0  # still there, untouched
    with engine.connect() as conn:
        got = conn.exec_driver_sql(
            'SELECT "a""b" FROM "we""ird; --"."x""; drop table t; --" ORDER BY 1'
        ).scalars()
        assert list(got) == ["%s %(x)s", "'; delete from t; --"]


# ---------------------------------------------------------------------------- projection


def test_projection_by_reflection(engine: sa.Engine) -> None:
    run(engine, PEOPLE)
    loader = loader_for(engine, "copy")
    assert loader.get_allowed_columns("people") == ["id", "name", "amount", "qty", "note"]
    extra = people(2).assign(**{f"x{i}": i for i in range(6)})
    with capture_logs() as logs:
        projected = loader.project_columns(extra, "people")
        result = loader.load_dataframe(extra, "people")
    assert list(projected.columns) == ["id", "name", "amount", "qty", "note"]
    assert result.columns_dropped == ("x0", "x1", "x2", "x3", "x4", "x5")
    warnings = [e for e in logs if e["event"] == "column_projection.many_removed"]
    assert warnings[0]["removed_count"] == 6
    assert warnings[0]["log_level"] == "warning"
    with pytest.raises(TableNotFoundError, match="table 'nope' does not exist"):
        loader.get_allowed_columns("nope")


# ---------------------------------------------------------------------------- bad input


def _fails(
    engine: sa.Engine,
    method: str,
    frame: pd.DataFrame,
    error: type[DatabaseError],
    *,
    table: str = "people",
    batch_size: int = 2,
    bad_row: int | None = None,
    **kwargs: Any,
) -> DatabaseError:
    """Load ``frame``, expect ``error``; with ``bad_row``, that row alone lacks OTHER_ROW."""
    if bad_row is not None and "note" in frame.columns:
        frame = frame.copy()
        frame.loc[bad_row, "note"] = "the-failing-row"
    loader = loader_for(engine, method, batch_size=batch_size)
    with pytest.raises(error) as caught:
        loader.load_dataframe(frame, table, **kwargs)
    assert_clean(caught.value, chain_has_no_other_rows=bad_row is not None)
    assert count(engine, "people") == 0
    return caught.value


@pytest.mark.parametrize("method", METHODS)
def test_unknown_table_and_schema(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    err = _fails(engine, method, people(), TableNotFoundError, table="peeple")
    assert str(err) == "table 'peeple' does not exist | table: public.peeple"
    err = _fails(engine, method, people(), TableNotFoundError, schema="nosuch")
    assert str(err) == "schema 'nosuch' does not exist | table: nosuch.people"


@pytest.mark.parametrize("method", METHODS)
def test_no_matching_columns(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    err = _fails(engine, method, pd.DataFrame({"ID": [1], "Name": ["x"]}), DataValidationError)
    assert "no column of the DataFrame matches the table (DataFrame: ID, Name; table: id" in str(
        err
    )


@pytest.mark.parametrize("method", METHODS)
def test_missing_or_unknown_upsert_key(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    err = _fails(
        engine, method, people().drop(columns="id"), DataValidationError, upsert_keys=["id"]
    )
    assert str(err) == (
        "upsert key column is missing from the DataFrame | table: public.people | column: id"
    )
    err = _fails(engine, method, people(), DataValidationError, upsert_keys=["idd"])
    assert err.column == "idd"
    err = _fails(
        engine,
        method,
        people().assign(id=objects(1, None, 3, 4, 5)),
        DataValidationError,
        upsert_keys=["id"],
    )
    assert (err.column, err.row) == ("id", 1)
    assert "upsert key is empty (NULL)" in str(err)


@pytest.mark.parametrize("method", METHODS)
def test_duplicate_upsert_keys_rejected_whatever_the_batches(
    engine: sa.Engine, method: str
) -> None:
    run(engine, PEOPLE)
    frame = people().assign(id=[1, 2, 3, 1, 5])
    for batch_size in (1, 2, 1000):
        err = _fails(
            engine, method, frame, DataValidationError, batch_size=batch_size, upsert_keys=["id"]
        )
        assert str(err) == (
            "duplicate upsert keys within one load: rows 0, 3 share a key (columns id); each "
            "key may appear once per load | table: public.people | column: id | row: 0"
        )


@pytest.mark.parametrize("method", METHODS)
def test_errors_name_the_index_label_a_pipeline_reported(engine: sa.Engine, method: str) -> None:
    """A pipeline's output keeps its input row numbers as index labels; errors name both."""
    run(engine, PEOPLE)
    frame = people().assign(name=["ok", "x" * 11, "ok", "ok", "ok"])
    frame.index = pd.Index([0, 2, 3, 7, 9])  # rows 1, 4, 5, 6, 8 failed validation upstream
    err = _fails(engine, method, frame, DataValidationError)
    assert (err.row, err.index) == (1, 2)
    assert str(err).endswith("| column: name | row: 1 | index: 2")
    # a default RangeIndex adds nothing: the position is the label
    err = _fails(engine, method, frame.reset_index(drop=True), DataValidationError)
    assert (err.row, err.index) == (1, None)


@pytest.mark.parametrize("method", METHODS)
def test_nul_byte_infinity_and_oversized_values(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE, "CREATE TABLE floats (id integer, f float8)")
    err = _fails(
        engine, method, people().assign(note=[OTHER_ROW] * 3 + ["a\x00b", "x"]), DataValidationError
    )
    assert (
        str(err)
        == "text contains a NUL byte (\\x00) | table: public.people | column: note | row: 3"
    )
    err = _fails(
        engine,
        method,
        people().assign(name=["ok"] * 4 + ["x" * 11]),
        DataValidationError,
        upsert_keys=["id"],
    )
    assert str(err) == (
        "text longer than the column's 10 characters | table: public.people | column: name | row: 4"
    )
    err = _fails(
        engine, method, people().assign(amount=[1, 2, 10_000, 3, 10_001]), DataValidationError
    )
    assert (err.column, err.row) == ("amount", 2)
    assert "numeric value too large for the column (must be below 10000 in magnitude) (2 rows" in (
        str(err)
    )
    err = _fails(engine, method, people().assign(qty=[1, 2, 3, 2**31, 5]), DataValidationError)
    assert (err.column, err.row) == ("qty", 3)
    err = _fails(engine, method, people().assign(qty=[1, 2, 3.5, 4, 5]), DataValidationError)
    assert str(err).startswith("not a whole number for an integer column")
    err = _fails(
        engine,
        method,
        pd.DataFrame({"id": [1, 2], "f": [1.0, -np.inf]}),
        DataValidationError,
        table="floats",
    )
    assert str(err) == "infinity cannot be stored | table: public.floats | column: f | row: 1"
    assert count(engine, "floats") == 0


@pytest.mark.parametrize("method", METHODS)
def test_server_side_overflow_is_located(engine: sa.Engine, method: str) -> None:
    """9999.999 passes the digit check but rounds to 10000.00: the server rejects it."""
    run(engine, PEOPLE)
    frame = people().assign(amount=objects(1, 2, 3, 4, decimal.Decimal("9999.999")))
    err = _fails(engine, method, frame, DataValidationError, bad_row=4)
    assert str(err).startswith("load failed: numeric field overflow | table: public.people")
    assert err.sqlstate == "22003"
    if method == "copy":
        assert (err.row, err.batch, err.column) == (4, 3, "amount")
    else:
        assert err.batch == 3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("upsert", [False, True])
def test_constraint_violation_in_last_batch(engine: sa.Engine, method: str, upsert: bool) -> None:
    run(engine, PEOPLE)
    frame = people(7).assign(qty=[1, 2, 3, 4, 5, 6, -1])
    err = _fails(
        engine,
        method,
        frame,
        ConstraintViolationError,
        bad_row=6,
        upsert_keys=["id"] if upsert else None,
    )
    assert str(err).startswith(
        'load failed: new row for relation "people" violates check constraint "people_qty_check"'
    )
    assert err.sqlstate == "23514"
    if upsert and method == "generic":
        # The generic path upserts through one INSERT … SELECT from the staging table,
        # where the CHECK fires with no row to report (the gap load_dataframe documents);
        # COPY into the empty table goes straight in and names the row.
        assert (err.row, err.batch) == (None, None)
    elif method == "generic":
        assert err.batch == 4
    else:
        assert (err.row, err.batch) == (6, 4)


@pytest.mark.parametrize("method", METHODS)
def test_not_null_violation_names_column(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE)
    frame = people().assign(name=objects("a", "b", "c", None, "e"))
    err = _fails(engine, method, frame, ConstraintViolationError, bad_row=3, upsert_keys=["id"])
    assert err.column == "name"
    assert err.sqlstate == "23502"
    if method == "copy":
        assert err.row == 3


@pytest.mark.parametrize("method", METHODS)
def test_unique_violation_against_existing_rows(engine: sa.Engine, method: str) -> None:
    run(engine, PEOPLE, "INSERT INTO people VALUES (4, 'old', 1, 1, 'keep')")
    loader = loader_for(engine, method, batch_size=2)
    with pytest.raises(ConstraintViolationError, match='unique constraint "people_pkey"') as caught:
        loader.load_dataframe(people(), "people")
    assert_clean(caught.value)
    assert rows(engine, "people") == [(4, "old", decimal.Decimal("1.00"), 1, "keep")]


# ---------------------------------------------------------------------------- transactions


def _kill_on(
    engine: sa.Engine, admin: psycopg.Connection[Any], marker: str, times: int = 1
) -> list[int]:
    """Terminate the executing backend (from another connection) before a matching statement."""
    killed: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def kill(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if marker in statement and len(killed) < times:
            pid = cursor.connection.get_backend_pid()
            killed.append(pid)
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            admin.commit()

    return killed


@pytest.mark.parametrize(
    ("method", "upsert", "marker"),
    [
        ("generic", False, "INSERT INTO"),
        ("copy", False, "set_config('TimeZone', %(zone)s"),
        ("copy", True, "LOCK TABLE"),  # into the empty table: straight
        ("copy", True, "WITH written AS"),  # into a table with a row: staged, then merged
    ],
)
def test_connection_killed_mid_load(
    engine: sa.Engine,
    postgresql: psycopg.Connection[Any],
    method: str,
    upsert: bool,
    marker: str,
) -> None:
    run(engine, "CREATE TABLE events (id integer PRIMARY KEY, at timestamptz)")
    before = 1 if marker == "WITH written AS" else 0
    if before:
        run(engine, "INSERT INTO events VALUES (100, now())")
    frame = pd.DataFrame({"id": range(6), "at": times(["2024-01-01T00:00:00Z"] * 6)})
    keys = ["id"] if upsert else None
    killed = _kill_on(engine, postgresql, marker)
    loader = loader_for(engine, method, batch_size=2)
    with pytest.raises(ConnectionLostError) as caught:
        loader.load_dataframe(frame, "events", upsert_keys=keys)
    assert killed
    assert "table: public.events" in str(caught.value)
    assert_clean(caught.value)
    assert count(engine, "events") == before
    result = loader.load_dataframe(frame, "events", upsert_keys=keys)  # the loader still works
    assert result.rows_inserted == 6
    assert count(engine, "events") == before + 6


_GATED = (
    "CREATE TABLE big (id bigint PRIMARY KEY, name text)",
    # Row 0 waits for an advisory lock the test holds, so the COPY is parked on the
    # server while the client is still streaming the rest of the (large) frame.
    (
        "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$"
    ),
    (
        "CREATE TRIGGER gate BEFORE INSERT ON big FOR EACH ROW WHEN (NEW.id = 0) "
        "EXECUTE FUNCTION gate()"
    ),
)
_BIG_ROWS = 150_000  # ~10 MB of CSV: more than the socket buffers hold


def _kill_the_copy(admin: psycopg.Connection[Any]) -> tuple[threading.Thread, list[int]]:
    """Hold the gate's lock; a thread terminates the COPY once it waits there, then opens it."""
    admin.execute("SELECT pg_advisory_lock(4242)")
    admin.commit()
    killed: list[int] = []
    pause = threading.Event()

    def kill() -> None:
        try:
            for _ in range(10_000):  # bounded: a broken test fails instead of hanging
                pid = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE 'COPY %' AND wait_event_type = 'Lock'"
                ).fetchone()
                admin.commit()
                if pid is not None:
                    admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid[0],))
                    killed.append(pid[0])
                    return
                pause.wait(0.002)
        finally:
            admin.execute("SELECT pg_advisory_unlock(4242)")
            admin.commit()

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread, killed


def _big_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": range(_BIG_ROWS), "name": [OTHER_ROW + "-汉字" * 8] * _BIG_ROWS})


def test_connection_killed_during_the_copy_stream(
    engine: sa.Engine, postgresql: psycopg.Connection[Any]
) -> None:
    run(engine, *_GATED)
    loader = loader_for(engine, "copy")
    thread, killed = _kill_the_copy(postgresql)
    with pytest.raises(ConnectionLostError) as caught:
        loader.load_dataframe(_big_frame(), "big")
    thread.join()
    assert len(killed) == 1
    assert str(caught.value).startswith("load failed: ")
    assert "table: public.big" in str(caught.value)
    assert_clean(caught.value, chain_has_no_other_rows=True)
    assert count(engine, "big") == 0
    assert loader.load_dataframe(people_ids(3), "big").rows_inserted == 3  # still works


def test_a_copy_killed_mid_stream_is_retried_as_a_whole(
    engine: sa.Engine, postgresql: psycopg.Connection[Any]
) -> None:
    run(engine, *_GATED)
    sleeps: list[float] = []
    loader = WarehouseLoader(
        engine, method="copy", retry=RetryConfig(max_attempts=2, backoff_ms=0), sleep=sleeps.append
    )
    thread, killed = _kill_the_copy(postgresql)
    result = loader.load_dataframe(_big_frame(), "big")
    thread.join()
    assert len(killed) == 1
    assert sleeps == [0.0]
    assert result.rows_inserted == _BIG_ROWS
    assert count(engine, "big") == _BIG_ROWS  # no row twice


def people_ids(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(1, n + 1), "name": ["x"] * n})


def test_transient_failure_retries_the_whole_transaction(
    engine: sa.Engine, postgresql: psycopg.Connection[Any]
) -> None:
    run(engine, "CREATE TABLE events (id integer PRIMARY KEY)")
    killed = _kill_on(engine, postgresql, "INSERT INTO", times=1)
    sleeps: list[float] = []
    loader = WarehouseLoader(
        engine,
        method="generic",
        batch_size=2,
        retry=RetryConfig(max_attempts=3, backoff_ms=500, retriable_errors=frozenset({Exception})),
        sleep=sleeps.append,
    )
    with capture_logs() as logs:
        result = loader.load_dataframe(pd.DataFrame({"id": range(5)}), "events")
    assert len(killed) == 1
    assert sleeps == [0.5]
    assert [e["event"] for e in logs if e["event"] == "retry.attempt"] == ["retry.attempt"]
    assert result.rows_inserted == 5
    assert count(engine, "events") == 5  # no row twice


def test_data_errors_are_never_retried(engine: sa.Engine) -> None:
    run(engine, PEOPLE)
    sleeps: list[float] = []
    loader = WarehouseLoader(
        engine,
        retry=RetryConfig(max_attempts=4, retriable_errors=frozenset({Exception})),
        sleep=sleeps.append,
    )
    with pytest.raises(ConstraintViolationError):
        loader.load_dataframe(people().assign(qty=-1), "people")
    assert sleeps == []


@pytest.mark.parametrize("method", METHODS)
def test_connection_lost_during_commit_is_not_retried(
    engine: sa.Engine, postgresql: psycopg.Connection[Any], method: str
) -> None:
    run(engine, "CREATE TABLE events (id integer PRIMARY KEY)")
    commits: list[int] = []

    @event.listens_for(engine, "commit")
    def kill(conn: Any) -> None:
        pid = conn.connection.driver_connection.get_backend_pid()
        commits.append(pid)
        postgresql.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        postgresql.commit()

    sleeps: list[float] = []
    loader = WarehouseLoader(
        engine,
        method="copy" if method == "copy" else "generic",
        retry=RetryConfig(max_attempts=4),
        sleep=sleeps.append,
    )
    with pytest.raises(CommitOutcomeUnknownError, match="connection lost during COMMIT") as caught:
        loader.load_dataframe(pd.DataFrame({"id": [1, 2]}), "events")
    assert not isinstance(caught.value, ConnectionLostError)
    assert len(commits) == 1
    assert sleeps == []
    event.remove(engine, "commit", kill)
    assert count(engine, "events") == 0


def test_several_loads_and_an_audit_row_in_one_transaction(engine: sa.Engine) -> None:
    run(engine, PEOPLE, "CREATE TABLE audit (note text)")
    loader = loader_for(engine, "copy")
    with loader.transaction() as tx:
        tx.load_dataframe(people(2), "people")
        tx.load_dataframe(people(2, first=2), "people", upsert_keys=["id"])
        tx.connection.execute(sa.text("INSERT INTO audit VALUES (:n)"), {"n": "done"})
    assert count(engine, "people") == 3
    assert count(engine, "audit") == 1

    def failing_group() -> None:
        with loader.transaction() as tx:
            tx.connection.execute(sa.text("INSERT INTO audit VALUES ('second')"))
            tx.load_dataframe(people(2, first=10), "people")
            tx.load_dataframe(people(1, first=1), "people")  # duplicate key: all rolls back

    with pytest.raises(ConstraintViolationError):
        failing_group()
    assert count(engine, "people") == 3
    assert count(engine, "audit") == 1


def test_a_caught_failure_still_rolls_the_transaction_back(engine: sa.Engine) -> None:
    run(engine, PEOPLE)
    loader = loader_for(engine, "generic")

    def swallowing_group() -> None:
        with loader.transaction() as tx:
            tx.load_dataframe(people(2), "people")
            with pytest.raises(ConstraintViolationError):
                tx.load_dataframe(people(1), "people")
            with pytest.raises(DatabaseError, match="an earlier load in this transaction failed"):
                tx.load_dataframe(people(1, first=9), "people")

    with pytest.raises(DatabaseError, match="a load in it failed") as caught:
        swallowing_group()
    assert isinstance(caught.value.__cause__, ConstraintViolationError)
    assert count(engine, "people") == 0


def test_run_in_transaction_retries_the_whole_group(
    engine: sa.Engine, postgresql: psycopg.Connection[Any]
) -> None:
    run(engine, PEOPLE, "CREATE TABLE audit (note text)")
    killed = _kill_on(engine, postgresql, "INSERT INTO audit", times=1)
    loader = WarehouseLoader(engine, retry=RetryConfig(max_attempts=2, backoff_ms=0))

    def work(tx: Any) -> int:
        result = tx.load_dataframe(people(3), "people")
        tx.connection.execute(sa.text("INSERT INTO audit VALUES ('x')"))
        return int(result.rows_inserted)

    assert loader.run_in_transaction(work) == 3
    assert len(killed) == 1
    assert (count(engine, "people"), count(engine, "audit")) == (3, 1)


# ---------------------------------------------------------------------------- logging


def test_load_events_are_logged_without_secrets(engine: sa.Engine) -> None:
    run(engine, PEOPLE)
    loader = loader_for(engine, "copy", batch_size=2)
    with capture_logs() as logs:
        loader.load_dataframe(people(3), "people")
        with pytest.raises(ConstraintViolationError):
            loader.load_dataframe(people(1), "people")
    events = {e["event"]: e for e in logs}
    completed = events["database.load.completed"]
    assert {k: completed[k] for k in ("table", "schema", "rows", "batches", "method")} == {
        "table": "people",
        "schema": "public",
        "rows": 3,
        "batches": 2,
        "method": "copy",
    }
    assert completed["duration_ms"] >= 0
    failed = events["database.load.failed"]
    assert failed["error_type"] == "ConstraintViolationError"
    assert (failed["rows"], failed["batches"]) == (1, 1)
    assert "duration_ms" in failed
    assert "database.load.started" in events
    assert SECRET not in repr(logs)
    assert OTHER_ROW not in repr(logs)
    assert SECRET not in repr(loader)
