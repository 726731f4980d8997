"""Both load paths store the same thing for every PostgreSQL type a frame can carry, or
refuse it with the same error class; counts are exact in every table shape.

The matrix loads one frame per column type, both ways (COPY and generic), as an append
and as an upsert (half the keys new), under a session time zone far from UTC, and
compares the stored text of every value and the ``LoadResult`` of every call.

The module shares one database (per process): creating and dropping a database per test
cost more than the tests themselves. Each test starts from an empty ``public`` schema
instead -- every table, view and function of the test before is dropped with it.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
from pytest_postgresql.executors import NoopExecutor

from wdh_domain.pipelines import RetryConfig
from wdh_io.database import create_engine
from wdh_io.errors import DatabaseError, DataValidationError
from wdh_io.loader import LoadResult, WarehouseLoader

pytestmark = pytest.mark.integration

METHODS = ("copy", "generic")
NO_RETRY = RetryConfig(max_attempts=1)
ZONE = "America/Los_Angeles"
UUID_A = uuid.UUID("12345678-1234-5678-1234-567812345678")
NAIVE = dt.datetime(2024, 3, 10, 2, 30, 0, 123_456)  # noqa: DTZ001 - naive means UTC
AWARE = dt.datetime(2024, 3, 10, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def _col(values: list[Any], dtype: Any = object) -> pd.Series:
    series: pd.Series = pd.Series(values, dtype=dtype)
    return series


#: PostgreSQL type → a column of four values (the last usually NULL) of what a frame
#: holds for it, in the dtypes pipelines and readers produce.
MATRIX: dict[str, tuple[str, pd.Series]] = {
    "smallint": ("smallint", _col([1, -32768, 32767, None], "Int16")),
    "integer_obj": ("integer", _col([1, decimal.Decimal(2), 3.0, None])),
    "bigint": ("bigint", _col([2**62, -(2**40), 0, 7], "int64")),
    "real": ("real", _col([1.5, -0.25, np.nan, 3.0], "float32")),
    "double": ("double precision", _col([0.1, 1e300, -0.0, np.nan], "float64")),
    "numeric_s": (
        "numeric(12, 4)",
        _col([decimal.Decimal("1.2345"), decimal.Decimal("NaN"), decimal.Decimal("-9"), None]),
    ),
    "numeric": ("numeric", _col([decimal.Decimal("1e-20"), 3, 2.5, None])),
    # what the schema step gives a Decimal field with max_digits and decimal_places
    "numeric_arrow": (
        "numeric(18, 2)",
        _col(
            [decimal.Decimal("1.5"), decimal.Decimal("-0.01"), None, decimal.Decimal("9" * 16)],
            pd.ArrowDtype(pa.decimal128(18, 2)),
        ),
    ),
    "numeric_arrow_wider": (
        "numeric",
        _col(
            [decimal.Decimal("0.001"), None, decimal.Decimal("-12.5"), 0],
            pd.ArrowDtype(pa.decimal128(38, 3)),
        ),
    ),
    "boolean": ("boolean", _col([True, False, None, True], "boolean")),
    "text_str": ("text", _col(["a\\b", 'q"q,x', "中文\n😀", None], "str")),
    "text_obj": ("text", _col(["", "\\x41", "tab\tx", None])),
    "text_arrow": ("text", _col(["a", "b\\N", "", None], pd.ArrowDtype(pa.string()))),
    "varchar": ("varchar(20)", _col(["x", "y", "z", None], "string")),
    "char": ("char(5)", _col(["ab", "abcde", "a  ", None])),
    "date_obj": ("date", _col([dt.date(2024, 2, 29), dt.date(1, 1, 1), None, NAIVE])),
    "date64": ("date", _col(["2024-02-29", "1970-01-01", None, "2000-01-01"], "datetime64[s]")),
    "ts": (
        "timestamp",
        _col(["2024-01-01 00:00:01.5", None, "1900-01-01", "2262-01-01"], "datetime64[us]"),
    ),
    "ts_obj": ("timestamp", _col([NAIVE, AWARE, None, pd.Timestamp("2024-01-01")])),
    "tstz_naive": (
        "timestamptz",
        _col(["2024-01-01 12:00", None, "2024-07-01", "1999-12-31"], "datetime64[ns]"),
    ),
    "tstz_aware": (
        "timestamptz",
        pd.Series(
            pd.to_datetime(
                _col(["2024-01-01T08:00:00+08:00", None, "2024-07-01T00:00Z", "1999-12-31T23:00Z"]),
                utc=True,
                format="ISO8601",
            )
        ),
    ),
    "tstz_obj": ("timestamptz", _col([NAIVE, AWARE, None, NAIVE])),
    "tstz_text": (
        "timestamptz",
        _col(["2024-01-01 12:00:00", None, "2024-07-01", "2000-01-01"], "str"),
    ),
    "time": ("time", _col([dt.time(1, 2, 3), dt.time(23, 59, 59, 999_999), None, dt.time()])),
    "interval": ("interval", _col(["1 day 2h", "-3min", None, "36h 0.5s"], "timedelta64[us]")),
    "interval_obj": (
        "interval",
        _col([dt.timedelta(days=1, hours=2), None, dt.timedelta(microseconds=-1), dt.timedelta()]),
    ),
    "bytea": ("bytea", _col([b"\\x41", b"\x00\xff\\\\", None, b""])),
    "uuid_obj": ("uuid", _col([UUID_A, uuid.UUID(int=0), None, UUID_A])),
    "uuid_str": ("uuid", _col([str(UUID_A), None, str(uuid.UUID(int=1)), str(UUID_A)], "str")),
    "json": ("json", _col([{"a": [1, 2.5, None]}, [1, "x"], '{"doc": "as text"}', None])),
    "jsonb": ("jsonb", _col([{"z": 1, "a": {"b": "中"}}, None, 3, [True, None]])),
    "int_array": ("integer[]", _col([[1, 2], [], None, [None, 3]])),
    "text_array": ("text[]", _col([["a", 'b"c', "d,e", "{x}", None], ["\\"], None, ["NULL"]])),
    "inet": ("inet", _col(["10.0.0.1", "::1", None, "192.168.0.0/24"])),
}


#: the root conftest's ``clone_database`` fixture
CloneDatabase = Callable[[NoopExecutor, str], AbstractContextManager[sa.URL]]


@pytest.fixture(scope="module")
def parity_url(wdh_pg_proc: NoopExecutor, clone_database: CloneDatabase) -> Iterator[sa.URL]:
    """This module's own database (empty), whose sessions run in a zone far from UTC."""
    with clone_database(wdh_pg_proc, "parity") as url:
        engine = create_engine(url, pool_size=1)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER DATABASE {url.database} SET TimeZone TO '{ZONE}'")
        finally:
            engine.dispose()  # new connections get the far-from-UTC zone
        yield url


@pytest.fixture
def engine(parity_url: sa.URL) -> Iterator[sa.Engine]:
    """An engine on the module's database, whose ``public`` schema is empty again."""
    engine = create_engine(parity_url, pool_size=2)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
        zone = conn.exec_driver_sql("SHOW TimeZone").scalar_one()
    assert zone == ZONE  # the database's setting reaches every new connection
    yield engine
    engine.dispose()


def _stored(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET TimeZone TO 'UTC'")
        result = conn.exec_driver_sql(f"SELECT id, v::text FROM {table} ORDER BY id")
        return [tuple(row) for row in result]


def _comparable(result: LoadResult) -> tuple[Any, ...]:
    return (
        result.rows_inserted,
        result.rows_updated,
        result.batches,
        result.columns_dropped,
        result.rows_unchanged,
    )


def _load_both_ways(
    engine: sa.Engine, ddl: str, frame: pd.DataFrame, *, upsert: bool, batch_size: int = 2
) -> dict[str, Any]:
    """Load *frame* into a table per method; the results, or the error classes."""
    outcome: dict[str, Any] = {}
    for method in METHODS:
        table = f"t_{method}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(ddl.format(t=table))
        loader = WarehouseLoader(engine, method=method, batch_size=batch_size, retry=NO_RETRY)  # type: ignore[arg-type]
        try:
            if upsert:
                first = loader.load_dataframe(frame.iloc[:2], table, upsert_keys=["id"])
                second = loader.load_dataframe(
                    pd.concat([frame.iloc[1:2], frame.iloc[2:]]).iloc[::-1],
                    table,
                    upsert_keys=["id"],
                )
                outcome[method] = (
                    [_comparable(first), _comparable(second)],
                    _stored(engine, table),
                )
            else:
                result = loader.load_dataframe(frame, table)
                outcome[method] = ([_comparable(result)], _stored(engine, table))
        except DatabaseError as exc:
            outcome[method] = type(exc)
    return outcome


@pytest.mark.parametrize("upsert", [False, True], ids=["append", "upsert"])
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_both_paths_store_the_same(engine: sa.Engine, name: str, upsert: bool) -> None:
    pg_type, values = MATRIX[name]
    frame = pd.DataFrame({"id": range(len(values)), "v": values.to_numpy()}).astype(
        {"v": values.dtype}
    )
    outcome = _load_both_ways(
        engine, f"CREATE TABLE {{t}} (id integer PRIMARY KEY, v {pg_type})", frame, upsert=upsert
    )
    assert outcome["copy"] == outcome["generic"]
    assert not isinstance(outcome["copy"], type), outcome["copy"]
    if upsert:  # row 1 is loaded twice with the same value: unchanged the second time
        (_, second), _ = outcome["copy"]
        assert second[4] == 1, second


#: What the values mean, checked on one path (the other must agree, by the matrix).
EXPECTED = {
    "interval": ["1 day 02:00:00", "-00:03:00", None, "1 day 12:00:00.5"],
    "interval_obj": ["1 day 02:00:00", None, "-00:00:00.000001", "00:00:00"],
    "bytea": ["\\x5c783431", "\\x00ff5c5c", None, "\\x"],
    "numeric_s": ["1.2345", None, "-9.0000", None],
    "numeric_arrow": ["1.50", "-0.01", None, "9" * 16 + ".00"],
    "numeric_arrow_wider": ["0.001", None, "-12.500", "0.000"],
    "tstz_naive": [
        "2024-01-01 12:00:00+00",
        None,
        "2024-07-01 00:00:00+00",
        "1999-12-31 00:00:00+00",
    ],
    "tstz_text": [
        "2024-01-01 12:00:00+00",
        None,
        "2024-07-01 00:00:00+00",
        "2000-01-01 00:00:00+00",
    ],
    "tstz_obj": [
        "2024-03-10 02:30:00.123456+00",
        "2024-03-10 02:30:00+00",
        None,
        "2024-03-10 02:30:00.123456+00",
    ],
    "uuid_obj": [str(UUID_A), str(uuid.UUID(int=0)), None, str(UUID_A)],
    "jsonb": ['{"a": {"b": "中"}, "z": 1}', None, "3", "[true, null]"],
    "json": ['{"a": [1, 2.5, null]}', '[1, "x"]', '{"doc": "as text"}', None],
    "text_array": ['{a,"b\\"c","d,e","{x}",NULL}', '{"\\\\"}', None, '{"NULL"}'],
    "int_array": ["{1,2}", "{}", None, "{NULL,3}"],
    "integer_obj": ["1", "2", "3", None],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_values_keep_their_meaning(engine: sa.Engine, name: str) -> None:
    pg_type, values = MATRIX[name]
    frame = pd.DataFrame({"id": range(len(values)), "v": values.to_numpy()}).astype(
        {"v": values.dtype}
    )
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE t (id integer PRIMARY KEY, v {pg_type})")
    WarehouseLoader(engine, method="copy", retry=NO_RETRY).load_dataframe(frame, "t")
    assert [v for _, v in _stored(engine, "t")] == EXPECTED[name]


REFUSED: dict[str, tuple[str, pd.Series, int]] = {
    "non-whole Decimal into integer": ("integer", _col([1, decimal.Decimal("3.5")]), 1),
    "non-whole float in objects into integer": ("integer", _col([2.0, 3.5]), 1),
    "Arrow decimal too large for numeric(6, 2)": (
        "numeric(6, 2)",
        _col(
            [decimal.Decimal("9999.99"), decimal.Decimal("10000.00")],
            pd.ArrowDtype(pa.decimal128(18, 2)),
        ),
        1,
    ),
    "NUL in an Arrow string": ("text", _col(["ok", "a\x00b"], pd.ArrowDtype(pa.string())), 1),
    "NUL in str dtype": ("text", _col(["ok", "a\x00b"], "str"), 1),
    "year 10000": (
        "timestamp",
        pd.Series(np.array(["2000-01-01", "10000-01-01"], dtype="datetime64[s]")),
        1,
    ),
    "NaN inside JSON": ("jsonb", _col([{"a": 1}, {"a": float("nan")}]), 1),
    "a datetime inside JSON": ("jsonb", _col([None, {"at": NAIVE}]), 1),
}


@pytest.mark.parametrize("upsert", [False, True], ids=["append", "upsert"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_both_paths_refuse_the_same(engine: sa.Engine, case: str, upsert: bool) -> None:
    pg_type, values, row = REFUSED[case]
    frame = pd.DataFrame({"id": range(len(values)), "v": values})
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE t (id integer PRIMARY KEY, v {pg_type})")
    for method in METHODS:
        loader = WarehouseLoader(engine, method=method, retry=NO_RETRY)  # type: ignore[arg-type]
        with pytest.raises(DataValidationError) as caught:
            loader.load_dataframe(frame, "t", upsert_keys=["id"] if upsert else None)
        assert (caught.value.column, caught.value.row) == ("v", row), str(caught.value)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0


# ----------------------------------------------------------------------- table shapes


def test_views_load_the_same_both_ways(engine: sa.Engine) -> None:
    ddl = (
        "CREATE TABLE base_{t} (id integer PRIMARY KEY, v text); "
        "CREATE VIEW {t} AS SELECT id, v FROM base_{t}"
    )
    frame = pd.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    for upsert in (False, True):
        with engine.begin() as conn:
            for method in METHODS:
                conn.exec_driver_sql(f"DROP VIEW IF EXISTS t_{method}")
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS base_t_{method}")
        outcome = _load_both_ways(engine, ddl, frame, upsert=upsert)
        assert outcome["copy"] == outcome["generic"]
        counts, stored = outcome["copy"]
        assert stored == [(1, "a"), (2, "b"), (3, "c")]
        # the upsert's second load: 3 inserted, 2 as stored (unchanged, not written)
        assert counts == ([(2, 0, 1, (), 0), (1, 0, 1, (), 1)] if upsert else [(3, 0, 2, (), 0)])


def test_partitioned_tables_take_upserts_with_exact_counts(engine: sa.Engine) -> None:
    ddl = (
        "CREATE TABLE {t} (id integer, region text, v text, PRIMARY KEY (id, region)) "
        "PARTITION BY LIST (region); "
        "CREATE TABLE {t}_east PARTITION OF {t} FOR VALUES IN ('east'); "
        "CREATE TABLE {t}_west PARTITION OF {t} FOR VALUES IN ('west')"
    )
    results = {}
    for method in METHODS:
        table = f"p_{method}"
        with engine.begin() as conn:
            conn.exec_driver_sql(ddl.format(t=table))
        loader = WarehouseLoader(engine, method=method, retry=NO_RETRY)  # type: ignore[arg-type]
        first = pd.DataFrame({"id": [1, 2], "region": ["east", "west"], "v": ["a", "b"]})
        second = pd.DataFrame({"id": [2, 3, 1], "region": ["west", "east", "west"], "v": "c"})
        results[method] = [
            _comparable(loader.load_dataframe(first, table, upsert_keys=["id", "region"])),
            _comparable(loader.load_dataframe(second, table, upsert_keys=["id", "region"])),
            _stored_rows(engine, table),
        ]
    assert results["copy"] == results["generic"]
    assert results["copy"][:2] == [(2, 0, 1, (), 0), (2, 1, 1, (), 0)]


def test_partitions_with_a_skipping_trigger_count_unchanged_rows_exactly(
    engine: sa.Engine,
) -> None:
    results = {}
    for method in METHODS:
        table = f"pt_{method}"
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (id integer PRIMARY KEY, v text) PARTITION BY RANGE (id); "
                f"CREATE TABLE {table}_low PARTITION OF {table} FOR VALUES FROM (0) TO (10); "
                f"CREATE TABLE {table}_high PARTITION OF {table} FOR VALUES FROM (10) TO (99); "
                f"CREATE FUNCTION pskip_{method}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF NEW.v = 'skip' THEN RETURN NULL; END IF; RETURN NEW; END $$; "
                f"CREATE TRIGGER skip BEFORE INSERT OR UPDATE ON {table}_high "
                f"FOR EACH ROW EXECUTE FUNCTION pskip_{method}(); "
                f"INSERT INTO {table} VALUES (1, 'a'), (11, 'b'), (12, 'c')"
            )
        loader = WarehouseLoader(engine, method=method, retry=NO_RETRY)  # type: ignore[arg-type]
        # 1 and 11 as stored, 12 skipped by the trigger, 2 new, 13 new but skipped
        frame = pd.DataFrame({"id": [1, 11, 12, 2, 13], "v": ["a", "b", "skip", "n", "skip"]})
        result = loader.load_dataframe(frame, table, upsert_keys=["id"])
        results[method] = (_comparable(result), _stored_rows(engine, table))
    assert results["copy"] == results["generic"]
    (inserted, updated, _, _, unchanged), stored = results["copy"]
    assert (inserted, updated, unchanged) == (1, 0, 2)
    assert stored == [(1, "a"), (2, "n"), (11, "b"), (12, "c")]


def _stored_rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1, 2")]


@pytest.mark.parametrize("upsert", [False, True], ids=["append", "upsert"])
def test_rows_a_trigger_skips_are_not_counted(engine: sa.Engine, upsert: bool) -> None:
    results = {}
    for method in METHODS:
        table = f"trg_{method}"
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {table} (id integer PRIMARY KEY, v text); "
                f"CREATE FUNCTION skip_{method}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF NEW.v = 'skip' THEN RETURN NULL; END IF; RETURN NEW; END $$; "
                f"CREATE TRIGGER skip BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION skip_{method}(); "
                f"INSERT INTO {table} VALUES (1, 'old'), (2, 'old'), (5, 'same')"
            )
        loader = WarehouseLoader(engine, method=method, batch_size=2, retry=NO_RETRY)  # type: ignore[arg-type]
        frame = pd.DataFrame({"id": [1, 2, 3, 4, 5], "v": ["skip", "new", "skip", "new", "same"]})
        result = loader.load_dataframe(
            frame.iloc[2:4] if not upsert else frame,
            table,
            upsert_keys=["id"] if upsert else None,
        )
        results[method] = (_comparable(result), _stored_rows(engine, table))
    assert results["copy"] == results["generic"]
    counts, stored = results["copy"]
    if upsert:
        # 4 inserted, 2 updated, 5 unchanged; 1 and 3 skipped, which are not "unchanged"
        assert (counts[0], counts[1], counts[4]) == (1, 1, 1)
        assert stored == [(1, "old"), (2, "new"), (4, "new"), (5, "same")]
    else:
        assert counts[:2] == (1, 0)
        assert stored == [(1, "old"), (2, "old"), (4, "new"), (5, "same")]


@pytest.mark.parametrize("batch_size", [1, 1000])
@pytest.mark.parametrize(
    ("pg_type", "keys"),
    [
        ("char(5)", ["ab", "ab  "]),
        ("numeric(10, 2)", [decimal.Decimal("1.001"), decimal.Decimal("1.002")]),
    ],
)
def test_duplicate_keys_are_judged_by_postgresql_equality(
    engine: sa.Engine, pg_type: str, keys: list[Any], batch_size: int
) -> None:
    for method in METHODS:
        table = f"dup_{method}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TABLE {table} (k {pg_type} PRIMARY KEY, v text)")
        loader = WarehouseLoader(engine, method=method, batch_size=batch_size, retry=NO_RETRY)  # type: ignore[arg-type]
        frame = pd.DataFrame({"k": pd.Series(keys, dtype=object), "v": ["first", "second"]})
        with pytest.raises(DataValidationError, match="rows 0, 1 share a key") as caught:
            loader.load_dataframe(frame, table, upsert_keys=["k"])
        assert caught.value.row == 0
        assert _stored_rows(engine, table) == []
