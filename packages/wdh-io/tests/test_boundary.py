"""The one transaction boundary on a real PostgreSQL: tx-block semantics, timeouts,
permanent connection errors, pool exhaustion; every escaping error is a ``WdhIoError``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from wdh_domain.pipelines import RetryConfig
from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine
from wdh_io.errors import (
    DatabaseAccessError,
    DatabaseError,
    DataValidationError,
    TransientDatabaseError,
)
from wdh_io.loader import WarehouseLoader

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-planted"  # pragma: allowlist secret
NO_RETRY = RetryConfig(max_attempts=1)


@pytest.fixture
def engine(database_url: sa.URL) -> Iterator[sa.Engine]:
    engine = create_engine(database_url.set(password=SECRET), pool_size=3)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    yield engine
    engine.dispose()


def count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one())


def frame(*ids: int) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "v": [f"v{i}" for i in ids]})


def test_a_swallowed_statement_failure_makes_the_exit_raise(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    with (  # noqa: PT012 - the block is what is under test
        pytest.raises(DatabaseError, match="failed and its error was caught"),
        loader.transaction() as tx,
    ):
        tx.load_dataframe(frame(1, 2), "t")
        # swallowed: COMMIT would silently have been a ROLLBACK
        with contextlib.suppress(sa.exc.IntegrityError):
            tx.connection.exec_driver_sql("INSERT INTO t VALUES (1, 'dup')")
    assert count(engine) == 0


def test_any_failed_load_in_the_block_rolls_back_even_when_caught(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    with (  # noqa: PT012 - the block is what is under test
        pytest.raises(DatabaseError, match="a load in it failed"),
        loader.transaction() as tx,
    ):
        tx.load_dataframe(frame(1), "t")
        with contextlib.suppress(ValueError):  # not a DatabaseError: a bad argument
            tx.load_dataframe(frame(2), "t", upsert_keys=[])
    assert count(engine) == 0


def test_an_audit_failure_swallowed_in_the_block_rolls_back(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    with (  # noqa: PT012 - the block is what is under test
        pytest.raises(DatabaseError, match="failed and its error was caught"),
        loader.transaction() as tx,
    ):
        tx.load_dataframe(frame(1), "t")
        with contextlib.suppress(DatabaseError):  # no audit tables in this database
            AuditRecorder(engine).start_run(
                execution_id="e", pipeline_name="p", connection=tx.connection
            )
    assert count(engine) == 0


def test_a_lock_timeout_is_transient_and_retried(engine: sa.Engine) -> None:
    slept: list[float] = []
    loader = WarehouseLoader(
        engine,
        retry=RetryConfig(max_attempts=2, backoff_ms=0),
        sleep=slept.append,
        lock_timeout_ms=100,
    )
    assert loader.lock_timeout_ms == 100
    with engine.connect() as holder:
        holder.exec_driver_sql("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TransientDatabaseError) as caught:
            loader.load_dataframe(frame(1), "t")
        holder.rollback()
    assert caught.value.sqlstate == "55P03"
    assert len(slept) == 1  # retried once, then given up
    assert SECRET not in str(caught.value)


def test_a_statement_timeout_is_not_retried(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$; "
            "CREATE TRIGGER slow BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION slow()"
        )
    slept: list[float] = []
    for method in ("copy", "generic"):
        loader = WarehouseLoader(
            engine,
            method=method,
            retry=RetryConfig(max_attempts=3, backoff_ms=0),
            sleep=slept.append,
            statement_timeout_ms=50,
        )
        with pytest.raises(DatabaseError, match="statement_timeout") as caught:
            loader.load_dataframe(frame(1), "t")
        assert not isinstance(caught.value, TransientDatabaseError)
        assert caught.value.sqlstate == "57014"
    assert slept == []
    assert count(engine) == 0


def test_timeouts_are_transaction_local(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=NO_RETRY, lock_timeout_ms=1234)
    with loader.transaction() as tx:
        setting = tx.connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
    assert setting == "1234ms"
    with engine.connect() as conn:  # the pooled session keeps its own setting
        assert conn.exec_driver_sql("SHOW lock_timeout").scalar_one() == "0"
    with pytest.raises(ValueError, match="statement_timeout_ms"):
        WarehouseLoader(engine, statement_timeout_ms=-1)


@pytest.mark.parametrize(
    ("field", "advice"),
    [("database", "database name"), ("username", "user name")],
)
def test_permanent_connection_errors_are_not_retried(
    database_url: sa.URL, field: str, advice: str
) -> None:
    slept: list[float] = []
    url = database_url.set(password=SECRET)
    url = (
        url.set(database="wdh_no_such_db")
        if field == "database"
        else url.set(username="wdh_nobody")
    )
    loader = WarehouseLoader(
        url,
        retry=RetryConfig(max_attempts=3, backoff_ms=0),
        sleep=slept.append,
    )
    try:
        with pytest.raises(DatabaseAccessError) as caught:
            loader.load_dataframe(frame(1), "t")
    finally:
        loader.dispose()
    assert not isinstance(caught.value, TransientDatabaseError)
    assert f"check the {advice} in DATABASE_URL" in str(caught.value)
    assert slept == []
    seen: BaseException | None = caught.value
    while seen is not None:
        assert SECRET not in str(seen)
        seen = seen.__cause__


def test_pool_exhaustion_is_logged_and_a_wdh_error(database_url: sa.URL) -> None:
    engine = sa.create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=0.1)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    try:
        with (
            engine.connect(),  # the only pooled connection
            capture_logs() as logs,
            pytest.raises(TransientDatabaseError, match="pool exhausted"),
        ):
            loader.load_dataframe(frame(1), "t")
    finally:
        engine.dispose()
    assert any(entry["event"] == "database.pool.exhausted" for entry in logs)


def test_a_json_value_that_cannot_be_serialised_is_a_data_error(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE j (id integer PRIMARY KEY, doc jsonb)")
    for method in ("copy", "generic"):
        loader = WarehouseLoader(engine, method=method, retry=NO_RETRY)
        bad = pd.DataFrame({"id": [1, 2], "doc": [{"a": 1}, {"at": pd.Timestamp("2026-01-01")}]})
        with pytest.raises(DataValidationError) as caught:
            loader.load_dataframe(bad, "j")
        assert (caught.value.column, caught.value.row) == ("doc", 1)


def test_a_failure_rolled_back_to_a_savepoint_still_commits(engine: sa.Engine) -> None:
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    with loader.transaction() as tx:
        tx.load_dataframe(frame(1), "t")
        savepoint = tx.connection.begin_nested()
        with contextlib.suppress(sa.exc.IntegrityError):
            tx.connection.exec_driver_sql("INSERT INTO t VALUES (1, 'dup')")
        savepoint.rollback()  # handled properly: the transaction is usable again
    assert count(engine) == 1


def test_a_swallowed_failure_on_sqlite_makes_the_exit_raise(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    loader = WarehouseLoader(engine, retry=NO_RETRY)
    with (  # noqa: PT012 - the block is what is under test
        pytest.raises(DatabaseError, match="failed and its error was caught"),
        loader.transaction() as tx,
    ):
        tx.load_dataframe(frame(1, 2), "t")
        with contextlib.suppress(sa.exc.IntegrityError):
            tx.connection.exec_driver_sql("INSERT INTO t VALUES (1, 'dup')")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0
    engine.dispose()
