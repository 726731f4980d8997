"""Upserts into an empty table go straight into it (COPY, no staging, no merge): the same
rows, counts and refusals as the staged path, on a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from wdh_domain.pipelines import RetryConfig
from wdh_io.database._engine import create_engine
from wdh_io.errors import ConstraintViolationError, DatabaseError, DataValidationError
from wdh_io.loader import LoadResult, LoadTransaction, WarehouseLoader

pytestmark = pytest.mark.integration

NO_RETRY = RetryConfig(max_attempts=1)

PEOPLE = (
    "CREATE TABLE people (id integer PRIMARY KEY, name text, email text UNIQUE, "
    "score numeric(8, 2), loaded_at timestamptz NOT NULL DEFAULT now())"
)


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    engine = create_engine(database_url, pool_size=2)
    with engine.begin() as conn:
        conn.exec_driver_sql(PEOPLE)
    yield engine
    engine.dispose()


def loader(engine: sa.Engine, method: str = "copy") -> WarehouseLoader:
    return WarehouseLoader(engine, method=method, retry=NO_RETRY)  # type: ignore[arg-type]


def people(ids: list[int], *, start: int = 0, emails: list[str] | None = None) -> pd.DataFrame:
    index = pd.RangeIndex(start, start + len(ids))
    return pd.DataFrame(
        {
            "id": ids,
            "name": [f"n{i}" for i in ids],
            "email": emails or [f"{i}@example.com" for i in ids],
            "score": "1.50",
        },
        index=index,
    )


def stored(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        result = conn.exec_driver_sql("SELECT id, name, email, score::text FROM people ORDER BY id")
        return [tuple(row) for row in result]


def load_chunks(
    engine: sa.Engine,
    chunks: list[pd.DataFrame],
    method: str = "copy",
    keys: tuple[str, ...] | list[str] = ("id",),
) -> LoadResult:
    with loader(engine, method).transaction() as tx:
        load = tx.staged_load("people", upsert_keys=list(keys))
        for chunk in chunks:
            load.append(chunk)
        return load.merge()


def in_transaction(warehouse: WarehouseLoader, body: Callable[[LoadTransaction], None]) -> None:
    with warehouse.transaction() as tx:
        body(tx)


def other_writer_is_blocked(engine: sa.Engine) -> bool:
    """Whether another connection's INSERT waits for a lock (given up after 50 ms)."""
    with engine.connect() as other:
        other.exec_driver_sql("SET lock_timeout = '50ms'")
        try:
            other.exec_driver_sql("INSERT INTO people (id) VALUES (-1)")
        except sa.exc.OperationalError as exc:
            return "lock timeout" in str(exc.orig)
        finally:
            other.rollback()
        return False


def test_an_empty_table_is_loaded_straight_and_locked_against_other_writers(
    engine: sa.Engine,
) -> None:
    with loader(engine).transaction() as tx:
        load = tx.staged_load("people", upsert_keys=["id"])
        assert load.append(people([1, 2])) == 2
        assert other_writer_is_blocked(engine)  # SHARE ROW EXCLUSIVE until COMMIT
        assert load.append(people([3], start=2)) == 1
        result = load.merge()
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (3, 0, 0)
    assert stored(engine) == [(i, f"n{i}", f"{i}@example.com", "1.50") for i in (1, 2, 3)]
    assert not other_writer_is_blocked(engine)


def test_a_table_with_rows_is_staged_and_merged_without_locking_writers_out(
    engine: sa.Engine,
) -> None:
    load_chunks(engine, [people([1])])
    with loader(engine).transaction() as tx:
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2]))  # 1 unchanged
        assert not other_writer_is_blocked(engine)
        result = load.merge()
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 0, 1)


@pytest.mark.parametrize("emptied", ["truncate", "delete"])
def test_an_emptied_table_loads_the_same_rows_whichever_path(
    engine: sa.Engine, emptied: str
) -> None:
    """TRUNCATE leaves no page (straight); DELETE leaves pages (staged): same result."""
    load_chunks(engine, [people([5, 6])])
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE people" if emptied == "truncate" else "DELETE FROM people")
    result = load_chunks(engine, [people([1, 2]), people([3], start=2)])
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (3, 0, 0)
    assert [row[0] for row in stored(engine)] == [1, 2, 3]


@pytest.mark.parametrize("method", ["copy", "generic"])
def test_a_key_repeated_across_chunks_is_refused_naming_both_rows(
    engine: sa.Engine, method: str
) -> None:
    """Straight (COPY): at the append that repeats it; staged (generic): at the merge."""
    with pytest.raises(DataValidationError) as caught:
        load_chunks(
            engine,
            [people([7, 1], start=100), people([8, 9], start=200), people([10, 1], start=300)],
            method,
        )
    assert "rows with index labels 101, 301 share a key (columns id)" in str(caught.value)
    assert (caught.value.row, caught.value.index) == (1, 101)
    assert stored(engine) == []


def test_a_key_repeated_within_the_first_chunk_is_refused_naming_the_rows(
    engine: sa.Engine,
) -> None:
    with pytest.raises(DataValidationError, match="index labels 40, 42 share a key"):
        load_chunks(engine, [people([1, 2, 1], start=40)])
    assert stored(engine) == []


def test_another_unique_index_fails_naming_the_row(engine: sa.Engine) -> None:
    """No key repeats: the unique e-mail fails, located by COPY (staged: at the merge)."""
    chunks = [people([1, 2], emails=["a@x", "b@x"]), people([3], start=2, emails=["a@x"])]
    with pytest.raises(ConstraintViolationError) as caught:
        load_chunks(engine, chunks)
    assert "people_email_key" in str(caught.value)
    assert caught.value.row == 0
    assert stored(engine) == []


def test_a_dry_run_of_an_empty_table_plans_inserts_and_leaves_it_empty(
    engine: sa.Engine,
) -> None:
    plan = loader(engine).plan_dataframe(people([1, 2, 3]), "people", upsert_keys=["id"])
    assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (3, 0, 0)
    assert plan.inserts["id"].tolist() == [1, 2, 3]
    assert stored(engine) == []


def test_a_load_only_planned_stages_its_rows_and_locks_nothing(engine: sa.Engine) -> None:
    """plan_only (a dry run): staged even into an empty table; a repeated key is refused
    by the plan, as on the staged path."""

    def body(tx: LoadTransaction) -> None:
        load = tx.staged_load("people", upsert_keys=["id"], plan_only=True)
        load.append(people([1, 2]))
        assert not other_writer_is_blocked(engine)
        plan = load.plan()
        assert (plan.rows_insert, plan.rows_update, plan.rows_unchanged) == (2, 0, 0)
        load.append(people([2], start=2))
        with pytest.raises(DataValidationError, match="index labels 1, 2 share a key"):
            load.plan()

    with pytest.raises(DatabaseError, match="rolled back"):
        in_transaction(loader(engine), body)
    assert stored(engine) == []


def test_a_table_without_a_unique_index_on_the_keys_is_refused_as_before(
    engine: sa.Engine,
) -> None:
    with pytest.raises(DatabaseError, match="no unique or exclusion constraint"):
        load_chunks(engine, [people([1])], keys=["name"])
    assert stored(engine) == []


def test_a_role_that_may_insert_but_not_lock_is_staged(
    engine: sa.Engine, database_url: sa.URL
) -> None:
    """SHARE ROW EXCLUSIVE needs UPDATE, DELETE or TRUNCATE; an upsert that only inserts
    (no column to compare: DO NOTHING) needs INSERT alone, so it takes the staged path."""
    role = f"wdh_inserter_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE codes (code integer PRIMARY KEY)")
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT ON codes TO {role}")
    inserter = create_engine(database_url.set(username=role, password=None), pool_size=1)
    try:
        with loader(inserter).transaction() as tx:
            load = tx.staged_load("codes", upsert_keys=["code"])
            load.append(pd.DataFrame({"code": [1, 2, 3]}))
            result = load.merge()
        assert result.rows_inserted == 3
    finally:
        inserter.dispose()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")


def test_a_row_written_before_the_lock_sends_the_load_to_the_staged_path_unlocked(
    engine: sa.Engine,
) -> None:
    """Another writer commits a row between the first size check and the lock: the
    size read under the lock sees it, the lock is released, and the load merges."""
    written: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def write_first(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("LOCK TABLE") and not written:
            written.append(True)
            with engine.connect() as other:
                other.exec_driver_sql(
                    "INSERT INTO people (id, name, email) VALUES (2, 'n2', '2@example.com')"
                )
                other.commit()

    try:
        with loader(engine).transaction() as tx:
            load = tx.staged_load("people", upsert_keys=["id"])
            load.append(people([1, 2]))
            assert not other_writer_is_blocked(engine)
            result = load.merge()
    finally:
        event.remove(engine, "before_cursor_execute", write_first)
    assert written
    assert (result.rows_inserted, result.rows_updated, result.rows_unchanged) == (1, 1, 0)
    assert [row[:3] for row in stored(engine)] == [
        (1, "n1", "1@example.com"),
        (2, "n2", "2@example.com"),
    ]


@pytest.fixture
def stamper(engine: sa.Engine, database_url: sa.URL) -> Iterator[sa.Engine]:
    """A role that may insert every column of ``people`` but ``loaded_at``: a COPY that
    sends ``loaded_at`` is refused, one that leaves it to its default is not."""
    role = f"wdh_stamper_{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT SELECT, UPDATE, DELETE ON people TO {role}")
        conn.exec_driver_sql(f"GRANT INSERT (id, name, email, score) ON people TO {role}")
    other = create_engine(database_url.set(username=role, password=None), pool_size=1)
    yield other
    other.dispose()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {role}")
        conn.exec_driver_sql(f"DROP ROLE {role}")


def stamps(engine: sa.Engine) -> list[pd.Timestamp]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT loaded_at FROM people ORDER BY id").scalars()
        return [pd.Timestamp(value).tz_convert("UTC") for value in rows]


def test_rows_stamped_with_the_transaction_time_leave_loaded_at_to_its_default(
    engine: sa.Engine, stamper: sa.Engine
) -> None:
    """``loaded_at DEFAULT now()`` holding ``tx.timestamp()`` in every row is not sent
    (the role may not insert it) and stores that very instant."""
    with loader(stamper).transaction() as tx:
        moment = tx.timestamp()
        load = tx.staged_load("people")
        load.append(people([1, 2]).assign(loaded_at=moment))
        load.append(people([3], start=2).assign(loaded_at=moment))
        assert load.merge().rows_inserted == 3
    assert stamps(engine) == [moment] * 3


def test_an_upsert_straight_into_an_empty_table_stores_the_transaction_time(
    engine: sa.Engine,
) -> None:
    with loader(engine).transaction() as tx:
        moment = tx.timestamp()
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2]).assign(loaded_at=moment))
        load.append(people([3], start=2).assign(loaded_at=moment))
        assert load.merge().rows_inserted == 3
    assert stamps(engine) == [moment] * 3


def test_any_other_stamp_is_sent_and_stored_as_given(engine: sa.Engine, stamper: sa.Engine) -> None:
    with loader(engine).transaction() as tx:
        moment = tx.timestamp()
        earlier = moment - pd.Timedelta(seconds=1)
        load = tx.staged_load("people", upsert_keys=["id"])
        load.append(people([1, 2]).assign(loaded_at=[moment, earlier]))
        load.merge()
    assert stamps(engine) == [moment, earlier]
    # The role that may not insert loaded_at cannot send it, so it is indeed sent.
    with (
        pytest.raises(DatabaseError, match="permission denied"),
        loader(stamper).transaction() as tx,
    ):
        tx.staged_load("people").append(people([5]).assign(loaded_at=earlier))
