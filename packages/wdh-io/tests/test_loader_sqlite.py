"""The generic path on SQLite, the value preparation, and construction errors (no server)."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from wdh_domain.pipelines import RetryConfig
from wdh_io.database._engine import create_engine
from wdh_io.errors import (
    ConstraintViolationError,
    DatabaseError,
    DataValidationError,
    TableNotFoundError,
)
from wdh_io.loader import WarehouseLoader
from wdh_io.loader._copy import _Prefetch
from wdh_io.loader._projection import Catalog
from wdh_io.loader._values import ColumnKind, ColumnSpec, prepare_frame, python_rows, to_arrow

pytestmark = pytest.mark.unit


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(8) NOT NULL, "
            "qty INTEGER CHECK (qty >= 0), at DATETIME)"
        )
    yield engine
    engine.dispose()


def table_rows(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.exec_driver_sql("SELECT id, name, qty FROM items ORDER BY id")
        ]


def items(ids: list[int], name: str = "n") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"{name}{i}" for i in ids],
            "qty": ids,
            "at": pd.to_datetime(["2024-01-01T08:00:00+08:00"] * len(ids), utc=True),
        }
    )


def test_generic_append_and_upsert_count_exactly(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, batch_size=2)
    assert loader.method == "generic"
    first = loader.load_dataframe(items([1, 2, 3]), "items")
    assert (first.rows_inserted, first.rows_updated, first.batches) == (3, 0, 2)
    second = loader.load_dataframe(items([3, 4], name="u"), "items", upsert_keys=["id"])
    assert (second.rows_inserted, second.rows_updated) == (1, 1)
    assert table_rows(engine) == [(1, "n1", 1), (2, "n2", 2), (3, "u3", 3), (4, "u4", 4)]
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT at FROM items WHERE id = 1").scalar_one()
    assert str(stored).startswith("2024-01-01 00:00:00")  # the UTC instant


def test_sqlite_upserts_leave_unchanged_rows_alone(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, batch_size=2)
    loader.load_dataframe(
        items([1, 2, 3]).assign(qty=pd.array([1, None, 3], dtype="Int64")), "items"
    )
    again = items([1, 2, 3, 4]).assign(
        qty=pd.array([1, None, 30, 4], dtype="Int64")
    )  # 1, 2 (NULL qty) as stored
    result = loader.load_dataframe(again, "items", upsert_keys=["id"])
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 1, 2)
    assert table_rows(engine) == [(1, "n1", 1), (2, "n2", None), (3, "n3", 30), (4, "n4", 4)]
    ignored = loader.load_dataframe(
        again.assign(name="x"), "items", upsert_keys=["id"], compare_ignore=["name", "at"]
    )
    assert (ignored.rows_inserted, ignored.rows_updated, ignored.rows_unchanged) == (0, 0, 4)
    assert table_rows(engine)[0] == (1, "n1", 1)


def test_sqlite_has_no_staged_upserts_or_dry_runs(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=RetryConfig(max_attempts=1))
    with pytest.raises(DatabaseError, match="dry runs of upserts need PostgreSQL"):
        loader.plan_dataframe(items([1]), "items", upsert_keys=["id"])
    with loader.transaction() as tx:
        with pytest.raises(DatabaseError, match="staged upserts need PostgreSQL"):
            tx.staged_load("items", upsert_keys=["id"])
        load = tx.staged_load("items")  # appends need no staging
        assert load.append(items([1, 2])) == 2
        assert load.merge().rows_inserted == 2
    assert table_rows(engine) == [(1, "n1", 1), (2, "n2", 2)]


def test_sqlite_errors_roll_back_everything(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, batch_size=2, retry=RetryConfig(max_attempts=1))
    with pytest.raises(ConstraintViolationError, match="CHECK constraint failed") as caught:
        loader.load_dataframe(items([1, 2, 3, 4, 5]).assign(qty=[1, 2, 3, 4, -5]), "items")
    assert caught.value.batch == 3
    with pytest.raises(DataValidationError, match="longer than the column's 8 characters"):
        loader.load_dataframe(items([1, 2]).assign(name=["ok", "x" * 9]), "items")
    with pytest.raises(TableNotFoundError, match="table 'nope' does not exist"):
        loader.load_dataframe(items([1]), "nope")
    assert table_rows(engine) == []


def test_construction_errors(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="method='copy' needs PostgreSQL"):
        WarehouseLoader(engine, method="copy")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        WarehouseLoader(engine, batch_size=0)
    with pytest.raises(ValueError, match="method must be"):
        WarehouseLoader(engine, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="upsert_keys must name"):
        WarehouseLoader(engine).load_dataframe(items([1]), "items", upsert_keys=[])


def test_loader_from_url_owns_and_disposes_its_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'own.db'}"
    with WarehouseLoader(url) as loader:
        with loader.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (a TEXT)")
        assert loader.load_dataframe(pd.DataFrame({"a": ["中文😀"]}), "t").rows_inserted == 1
        assert loader.get_allowed_columns("t") == ["a"]
        assert "generic" in repr(loader)


SPECS = [
    ColumnSpec("i", ColumnKind.INTEGER, True, int_range=(-(2**31), 2**31 - 1)),
    ColumnSpec("t", ColumnKind.TEXT, True, max_length=4),
    ColumnSpec("d", ColumnKind.DATE, True),
    ColumnSpec("ts", ColumnKind.TIMESTAMPTZ, True),
    ColumnSpec("o", ColumnKind.OTHER, True),
]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": [1.0, np.nan, 3.0],
            "t": pd.Categorical(["a", None, "b"]),
            "d": pd.to_datetime(pd.Series(["2024-01-02", None, "2024-01-03"], dtype=object)),
            "ts": pd.to_datetime(
                pd.Series(["2024-01-01 00:00:00.123456789", None, "2024-01-01"], dtype=object),
                format="ISO8601",
            ),
            "o": [1, "x", decimal.Decimal("2")],
        }
    )


def test_prepare_normalises_and_both_conversions_agree() -> None:
    prepared = prepare_frame(frame(), SPECS, table="t", schema=None)
    assert str(prepared["i"].dtype) == "Int64"
    assert str(prepared["ts"].dtype) == "datetime64[us, UTC]"
    rows = python_rows(prepared, SPECS, 0, 3)
    assert rows[0] == {
        "i": 1,
        "t": "a",
        "d": dt.date(2024, 1, 2),
        "ts": dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC),
        "o": 1,
    }
    assert rows[1] == {"i": None, "t": None, "d": None, "ts": None, "o": "x"}
    arrow = to_arrow(prepared, SPECS)
    assert arrow.column(0).to_pylist() == [1, None, 3]
    assert arrow.column(1).to_pylist() == ["a", None, "b"]
    assert arrow.column(2).to_pylist() == [dt.date(2024, 1, 2), None, dt.date(2024, 1, 3)]
    assert arrow.column(4).to_pylist() == ["1", "x", "2"]  # mixed objects go as text


@pytest.mark.parametrize(
    ("column", "values", "message", "row"),
    [
        ("i", [1.0, 2.5, 3.0], "not a whole number", 1),
        ("i", pd.Series([1, 2**40, 3], dtype=object), "integer out of range", 1),
        ("t", ["a", "b", "toolong"], "text longer than the column's 4 characters", 2),
        ("t", pd.Series(["a", "b\x00", "c"], dtype=object), "NUL byte", 1),
        ("o", [decimal.Decimal("Infinity"), 1, 2], "infinity cannot be stored", 0),
    ],
)
def test_prepare_rejects_bad_values(column: str, values: Any, message: str, row: int) -> None:
    bad = frame()
    bad[column] = values
    with pytest.raises(DataValidationError, match=message) as caught:
        prepare_frame(bad, SPECS, table="t", schema="s")
    assert (caught.value.column, caught.value.row, caught.value.table) == (column, row, "t")


def test_reflection_errors_mask_secrets_by_structure_only(engine: sa.Engine) -> None:
    """SQLite quotes an unknown schema in its error. A schema name that happens to be
    the password's text is not a password: masking by structure leaves the message
    intact (search-and-replace would garble it and, by doing so, reveal the password)."""
    secret = "s3cr3t-planted"  # pragma: allowlist secret
    with engine.connect() as conn, pytest.raises(DatabaseError) as caught:
        Catalog(secrets=(secret,)).describe(conn, "items", secret)
    assert caught.value.message == f'reflection failed: unknown database "{secret}"'
    assert caught.value.table == "items"


def test_closing_the_copy_prefetch_early_never_hangs() -> None:
    """A COPY that fails (or ends) while the producer waits on the full queue must not
    leave ``close()`` joining a producer blocked on the end marker (it once did, in
    about one close of several hundred)."""

    def open_and_close() -> None:
        for i in range(300):
            stream = _Prefetch(iter([b"a", b"b"]))
            if i % 2:
                assert stream.read() == b"a"
            stream.close()

    worker = threading.Thread(target=open_and_close, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a hang guard, not a speed check: it ends in milliseconds
    assert not worker.is_alive(), "_Prefetch.close() deadlocked"
