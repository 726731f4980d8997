"""Chunked loads into one transaction, unchanged rows left alone, and dry-run plans, on a
real PostgreSQL: both load paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from wdh_domain.pipelines import RetryConfig
from wdh_io.database._engine import create_engine
from wdh_io.errors import DatabaseError, DataValidationError
from wdh_io.loader import LoadPlan, LoadTransaction, WarehouseLoader

pytestmark = pytest.mark.integration

METHODS = ["copy", "generic"]
NO_RETRY = RetryConfig(max_attempts=1)

PEOPLE = (
    "CREATE TABLE people (id integer PRIMARY KEY, name text, score numeric(8, 2), "
    "loaded_at timestamptz NOT NULL DEFAULT now()); "
    # counts the row versions UPDATE writes, whichever statement writes them
    "CREATE TABLE updates_seen (n integer NOT NULL); INSERT INTO updates_seen VALUES (0); "
    "CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN UPDATE updates_seen SET n = n + 1; RETURN NEW; END $$; "
    "CREATE TRIGGER counted AFTER UPDATE ON people FOR EACH ROW EXECUTE FUNCTION count_update()"
)


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    engine = create_engine(database_url, pool_size=2)
    with engine.begin() as conn:
        conn.exec_driver_sql(PEOPLE)
    yield engine
    engine.dispose()


def loader_for(engine: sa.Engine, method: str, **kwargs: Any) -> WarehouseLoader:
    kwargs.setdefault("retry", NO_RETRY)
    return WarehouseLoader(engine, method=method, **kwargs)  # type: ignore[arg-type]


def people(ids: list[int], names: list[str | None], *, start: int = 0) -> pd.DataFrame:
    """Rows of ``people`` indexed by input position (from ``start``), as a pipeline does."""
    index = pd.RangeIndex(start, start + len(ids))
    return pd.DataFrame(
        {"id": ids, "name": pd.Series(names, dtype=object, index=index), "score": 1.5},
        index=index,
    )


def stored(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """Each row's values and its row version (``xmin``, ``ctid``)."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(
            "SELECT id, name, score::text, xmin::text, ctid::text FROM people ORDER BY id"
        )
        return [tuple(row) for row in result]


def updates_seen(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT n FROM updates_seen").scalar_one())


def seed(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO people (id, name, score) VALUES (1, 'ann', 1.5), (2, NULL, 1.5), "
            "(3, 'cid', 1.5)"
        )


@pytest.mark.parametrize("method", METHODS)
def test_chunks_are_staged_and_merged_once(engine: sa.Engine, method: str) -> None:
    seed(engine)
    loader = loader_for(engine, method, batch_size=2)
    with loader.transaction() as tx:
        load = tx.staged_load("people", upsert_keys=["id"])
        # 1 and 2 (NULL name) as stored, 3 changed, 4 to 6 new
        assert load.append(people([1, 4], ["ann", "dan"])) == 2
        assert load.append(people([2, 3, 5], [None, "CID", "eve"], start=2)) == 3
        assert load.append(people([], [], start=5)) == 0
        assert load.append(people([6], ["fay"], start=5)) == 1
        with engine.connect() as other:  # nothing is visible before the commit
            assert other.exec_driver_sql("SELECT count(*) FROM people").scalar_one() == 3
        result = load.merge()
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (3, 1, 2)
    assert result.batches == 4  # 1 + 2 + 0 + 1 slices of batch_size 2
    assert [(r[0], r[1]) for r in stored(engine)] == [
        (1, "ann"),
        (2, None),
        (3, "CID"),
        (4, "dan"),
        (5, "eve"),
        (6, "fay"),
    ]
    assert updates_seen(engine) == 1


def in_transaction(loader: WarehouseLoader, body: Callable[[LoadTransaction], object]) -> None:
    with loader.transaction() as tx:
        body(tx)


@pytest.mark.parametrize("method", METHODS)
def test_a_key_repeated_across_chunks_is_refused_naming_the_rows(
    engine: sa.Engine, method: str
) -> None:
    seed(engine)
    before = stored(engine)

    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([7, 1], ["a", "ann"], start=100))
        load.append(people([8, 1], ["b", "ann"], start=200))  # 1 again, as stored
        with pytest.raises(DataValidationError) as caught:
            load.merge()
        message = str(caught.value)
        assert "rows with index labels 101, 201 share a key (columns id)" in message
        assert (caught.value.row, caught.value.index) == (1, 101)

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)
    assert stored(engine) == before


@pytest.mark.parametrize("method", METHODS)
def test_a_key_repeated_within_a_chunk_is_named_by_index_labels(
    engine: sa.Engine, method: str
) -> None:
    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        with pytest.raises(DataValidationError) as caught:
            load.append(people([1, 2, 1], ["a", "b", "c"], start=40))
        assert "rows with index labels 40, 42 share a key" in str(caught.value)
        assert (caught.value.row, caught.value.index) == (0, 40)

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)


@pytest.mark.parametrize("method", METHODS)
def test_a_repeated_key_is_refused_by_a_dry_run_too(engine: sa.Engine, method: str) -> None:
    seed(engine)  # a table with rows: the chunks are staged (an empty one: test_straight_load)

    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1], ["a"]))
        load.append(people([1], ["b"], start=1))
        with pytest.raises(DataValidationError, match="index labels 0, 1 share a key"):
            load.plan()

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)


@pytest.mark.parametrize("method", METHODS)
def test_errors_in_a_chunk_name_its_index_labels(engine: sa.Engine, method: str) -> None:
    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2], ["a", "b"]))
        bad = people([3, 4, 5], ["c", "d", "e"], start=2)
        bad["score"] = [1.0, 1e9, 2.0]  # too large for numeric(8, 2)
        with pytest.raises(DataValidationError) as caught:
            load.append(bad)
        assert (caught.value.column, caught.value.row, caught.value.index) == ("score", 1, 3)
        with pytest.raises(DatabaseError, match="earlier load in this transaction failed"):
            load.merge()

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)
    assert stored(engine) == []


@pytest.mark.parametrize("method", METHODS)
def test_every_chunk_must_have_the_first_chunks_columns(engine: sa.Engine, method: str) -> None:
    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1], ["a"]))
        with pytest.raises(DataValidationError, match="differ from the first chunk's"):
            load.append(people([2], ["b"]).drop(columns=["score"]))

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)


@pytest.mark.parametrize("method", METHODS)
def test_a_rollback_after_the_merge_leaves_nothing(engine: sa.Engine, method: str) -> None:
    seed(engine)
    before = stored(engine)

    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 9], ["changed", "new"]))
        assert load.merge().rows_written == 2
        raise RuntimeError("a later step failed")

    with pytest.raises(RuntimeError, match="later step"):
        in_transaction(loader_for(engine, method), body)
    assert stored(engine) == before
    assert updates_seen(engine) == 0
    with engine.connect() as conn:  # the staging table went with the transaction
        staging = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'wdh_stage_%'",
            execution_options={"no_parameters": True},
        )
        assert staging.scalar_one() == 0


@pytest.mark.parametrize("method", METHODS)
def test_appends_go_straight_into_the_table(engine: sa.Engine, method: str) -> None:
    loader = loader_for(engine, method, batch_size=2)
    with loader.transaction() as tx:
        load = tx.staged_load("people")
        assert load.append(people([1, 2, 3], ["a", "b", "c"])) == 3
        assert load.append(people([4], ["d"], start=3)) == 1
        with tx.connection.begin_nested():  # already in the table, in this transaction
            count = tx.connection.exec_driver_sql("SELECT count(*) FROM people").scalar_one()
        assert count == 4
        result = load.merge()
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (4, 0, 0)
    assert result.batches == 3


@pytest.mark.parametrize("method", METHODS)
def test_merging_twice_is_refused(engine: sa.Engine, method: str) -> None:
    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1], ["a"]))
        load.merge()
        with pytest.raises(DatabaseError, match="already merged"):
            load.merge()

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader_for(engine, method), body)
    assert stored(engine) == []


# ----------------------------------------------------------------------- unchanged rows


@pytest.mark.parametrize("method", METHODS)
def test_reloading_an_identical_frame_writes_no_row(engine: sa.Engine, method: str) -> None:
    loader = loader_for(engine, method)
    frame = people([1, 2, 3], ["ann", None, "cid"])
    assert loader.load_dataframe(frame, "people", upsert_keys=["id"]).rows_inserted == 3
    before = stored(engine)
    # loaded_at is stamped by the load: a new value does not make a row changed
    again = frame.assign(loaded_at=pd.Timestamp("2030-01-01", tz="UTC"))
    result = loader.load_dataframe(again, "people", upsert_keys=["id"])
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (0, 0, 3)
    assert stored(engine) == before  # same row versions: nothing was written
    assert updates_seen(engine) == 0
    with loader.transaction() as tx:  # the same through a staged load
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(again.iloc[:2])
        load.append(again.iloc[2:])
        staged = load.merge()
    assert (staged.rows_inserted, staged.rows_updated, staged.rows_unchanged) == (0, 0, 3)
    assert stored(engine) == before
    assert updates_seen(engine) == 0


@pytest.mark.parametrize("method", METHODS)
def test_compared_columns_can_be_chosen(engine: sa.Engine, method: str) -> None:
    loader = loader_for(engine, method)
    frame = people([1, 2], ["ann", "bob"]).assign(loaded_at=pd.Timestamp("2030-01-01", tz="UTC"))
    loader.load_dataframe(frame, "people", upsert_keys=["id"])
    later = frame.assign(loaded_at=pd.Timestamp("2031-01-01", tz="UTC"))
    counted = loader.load_dataframe(later, "people", upsert_keys=["id"], compare_ignore=())
    assert (counted.rows_updated, counted.rows_unchanged) == (2, 0)
    ignored = loader.load_dataframe(
        later.assign(name=["ANN", "bob"]), "people", upsert_keys=["id"], compare_ignore=["name"]
    )
    assert (ignored.rows_updated, ignored.rows_unchanged) == (0, 2)
    assert [r[1] for r in stored(engine)] == ["ann", "bob"]
    only_keys = loader.load_dataframe(frame[["id"]], "people", upsert_keys=["id"])
    assert (only_keys.rows_inserted, only_keys.rows_updated, only_keys.rows_unchanged) == (0, 0, 2)


# ----------------------------------------------------------------------- dry runs


def _frame_values(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [
        tuple(None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in row)
        for row in frame[["id", "name"]].itertuples(index=False)
    ]


@pytest.mark.parametrize("method", METHODS)
def test_a_dry_run_plans_without_writing(engine: sa.Engine, method: str) -> None:
    seed(engine)  # 2 has a NULL name
    before = stored(engine)
    loader = loader_for(engine, method, batch_size=2)
    frame = people([1, 2, 3, 4, 5], ["ann", None, "CID", "dan", "eve"])
    plan = loader.plan_dataframe(frame, "people", upsert_keys=["id"], preview_rows=1)
    assert isinstance(plan, LoadPlan)
    assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (2, 1, 2)
    assert plan.rows_total == 5
    assert _frame_values(plan.inserts) == [(4, "dan")]
    assert _frame_values(plan.updates) == [(3, "CID")]
    assert _frame_values(plan.unchanged) == [(1, "ann")]
    assert list(plan.inserts.columns) == ["id", "name", "score"]
    assert stored(engine) == before
    assert updates_seen(engine) == 0
    # what the load then does agrees with the plan
    result = loader.load_dataframe(frame, "people", upsert_keys=["id"])
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (2, 1, 2)


@pytest.mark.parametrize("method", METHODS)
def test_a_staged_dry_run_covers_every_chunk(engine: sa.Engine, method: str) -> None:
    seed(engine)
    before = stored(engine)

    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2], ["ann", "bob"]))
        load.append(people([3, 4], ["cid", "dan"], start=2))
        plan = load.plan(preview_rows=10)
        assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (1, 1, 2)
        assert _frame_values(plan.updates) == [(2, "bob")]
        assert _frame_values(plan.unchanged) == [(1, "ann"), (3, "cid")]
        assert stored(engine) == before  # only the staging table was written
        raise RuntimeError("dry run: roll back")

    with pytest.raises(RuntimeError, match="dry run"):
        in_transaction(loader_for(engine, method), body)
    assert stored(engine) == before


@pytest.mark.parametrize("method", METHODS)
def test_a_dry_run_refuses_what_the_load_refuses(engine: sa.Engine, method: str) -> None:
    loader = loader_for(engine, method)
    frame = people([1, 2, 3], ["a", "b", "c"], start=10)
    frame["score"] = [1.0, 2.0, 1e9]
    with pytest.raises(DataValidationError) as caught:
        loader.plan_dataframe(frame, "people", upsert_keys=["id"])
    assert (caught.value.column, caught.value.row, caught.value.index) == ("score", 2, 12)
    assert stored(engine) == []


@pytest.mark.parametrize("method", METHODS)
def test_a_dry_run_of_an_append_writes_nothing(engine: sa.Engine, method: str) -> None:
    loader = loader_for(engine, method)
    plan = loader.plan_dataframe(people([1, 2, 3], ["a", "b", "c"]), "people", preview_rows=2)
    assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (3, 0, 0)
    assert _frame_values(plan.inserts) == [(1, "a"), (2, "b")]
    assert plan.updates.empty
    assert stored(engine) == []


@pytest.mark.parametrize("method", METHODS)
def test_a_repeated_key_is_refused_even_when_its_first_row_is_unchanged(
    engine: sa.Engine, method: str
) -> None:
    # 'ab' and 'ab  ' are one char(5) key; the first row equals the stored one, so the
    # merge alone would skip it and then update the key from the second row.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE codes (k char(5) PRIMARY KEY, v text); "
            "INSERT INTO codes VALUES ('ab', 'x')"
        )
    frame = pd.DataFrame({"k": ["ab", "ab  "], "v": ["x", "changed"]})
    with pytest.raises(DataValidationError, match="rows 0, 1 share a key"):
        loader_for(engine, method).load_dataframe(frame, "codes", upsert_keys=["k"])
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT k, v FROM codes").all() == [("ab   ", "x")]


@pytest.mark.parametrize("method", METHODS)
def test_a_plan_then_more_chunks_then_the_merge(engine: sa.Engine, method: str) -> None:
    seed(engine)
    loader = loader_for(engine, method)
    with loader.transaction() as tx:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2], ["ann", "bob"]))
        first = load.plan()
        load.append(people([4], ["dan"], start=2))
        second = load.plan()
        result = load.merge()
    assert (first.rows_insert, first.rows_update, first.rows_unchanged) == (0, 1, 1)
    assert (second.rows_insert, second.rows_update, second.rows_unchanged) == (1, 1, 1)
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 1, 1)
    assert [(r[0], r[1]) for r in stored(engine)] == [
        (1, "ann"),
        (2, "bob"),
        (3, "cid"),
        (4, "dan"),
    ]
