"""The shared PostgreSQL fixtures give each test a working database of its own."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_gets_a_fresh_database(postgresql: psycopg.Connection[Any], attempt: int) -> None:
    """Run twice: the table the first run leaves behind must not exist in the second."""
    with postgresql.cursor() as cur:
        cur.execute("SELECT to_regclass('public.isolation_marker') IS NULL")
        row = cur.fetchone()
        assert row is not None
        assert row[0] is True, "a previous test's table leaked into this database"
        cur.execute("CREATE TABLE isolation_marker (attempt int)")
        cur.execute("INSERT INTO isolation_marker VALUES (%s)", (attempt,))
    postgresql.commit()


def test_database_url_reaches_the_same_database(
    postgresql: psycopg.Connection[Any], database_url: URL
) -> None:
    with postgresql.cursor() as cur:
        cur.execute("CREATE TABLE reached (x int)")
    postgresql.commit()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            assert (
                conn.execute(text("SELECT current_database()")).scalar_one()
                == postgresql.info.dbname
            )
            assert conn.execute(text("SELECT count(*) FROM reached")).scalar_one() == 0
            version = conn.execute(text("SHOW server_version_num")).scalar_one()
            assert int(version) >= 150000
    finally:
        engine.dispose()


class Pool(Protocol):
    """The root conftest's database pools (``wdh_migrated_database_pool``)."""

    def lend(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


def _one(connection: psycopg.Connection[Any], query: str) -> Any:
    row = connection.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


def _exists(connection: psycopg.Connection[Any], dbname: str) -> bool:
    found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
    return found.fetchone() is not None


def test_a_database_left_with_rows_and_new_objects_is_reset_for_the_next_test(
    wdh_migrated_database_pool: Pool,
) -> None:
    """What the next test would see after rows, new objects and settings: the template."""
    with wdh_migrated_database_pool.lend() as first:
        name = first.info.dbname
        revision = _one(first, "SELECT version_num FROM alembic_version")
        first.execute(
            "INSERT INTO pipeline_executions (execution_id, pipeline_name, status)"
            " VALUES ('e1', 'p', 'running')"
        )
        first.execute(
            "INSERT INTO data_quality_metrics (execution_id, domain, metric_name)"
            " VALUES ('e1', 'd', 'm')"
        )
        first.execute("CREATE SCHEMA scratch")
        first.execute("CREATE TABLE scratch.t (x int)")
        first.execute("CREATE TABLE public.leftover (x serial)")
        first.execute("CREATE TYPE public.mood AS ENUM ('ok')")
        first.execute("CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        first.execute("CREATE TEMPORARY TABLE scratch_temp (x int)")
        first.execute(f"ALTER DATABASE {name} SET TimeZone TO 'Asia/Shanghai'".encode())
        first.commit()
    with wdh_migrated_database_pool.lend() as second:
        assert second.info.dbname == name  # reused, not cloned again
        assert _one(second, "SELECT count(*) FROM pipeline_executions") == 0
        assert _one(second, "SELECT count(*) FROM data_quality_metrics") == 0
        assert _one(second, "SELECT version_num FROM alembic_version") == revision
        assert _one(second, "SELECT to_regnamespace('scratch')") is None
        assert _one(second, "SELECT to_regclass('public.leftover')") is None
        assert _one(second, "SELECT to_regtype('public.mood')") is None
        assert _one(second, "SELECT to_regproc('public.f')") is None
        assert _one(second, "SELECT current_setting('TimeZone')") != "Asia/Shanghai"
        second.execute(
            "INSERT INTO pipeline_executions (execution_id, pipeline_name, status)"
            " VALUES ('e2', 'p', 'running')"
        )
        metric_id = _one(
            second,
            "INSERT INTO data_quality_metrics (execution_id, domain, metric_name)"
            " VALUES ('e2', 'd', 'm') RETURNING metric_id",
        )
        assert metric_id == 1  # identities restarted


@pytest.mark.parametrize(
    ("change", "undone"),
    [
        ("COMMENT ON TABLE sample_data IS 'changed'", False),
        ("ALTER TABLE sample_data ADD COLUMN extra int", False),
        ("UPDATE alembic_version SET version_num = 'other'", False),
        ("CREATE SEQUENCE public.free; SELECT nextval('public.free')", True),
        ("SELECT setval('rejected_rows_rejected_row_id_seq', 5)", True),
    ],
)
def test_the_next_test_never_sees_a_change_the_pool_cannot_undo(
    wdh_migrated_database_pool: Pool, postgresql: psycopg.Connection[Any], change: str, undone: bool
) -> None:
    """A change the pool cannot undo: the next test gets another, fresh database."""
    with wdh_migrated_database_pool.lend() as first:
        name = first.info.dbname
        revisions = _one(first, "SELECT string_agg(version_num, ',') FROM alembic_version")
        for statement in change.split("; "):
            first.execute(statement.encode())
        first.commit()
    with wdh_migrated_database_pool.lend() as second:
        assert (second.info.dbname == name) is undone
        assert _one(second, "SELECT obj_description('sample_data'::regclass)") is None
        extra = _one(
            second,
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_name = 'sample_data' AND column_name = 'extra'",
        )
        assert extra == 0
        assert _one(second, "SELECT string_agg(version_num, ',') FROM alembic_version") == revisions
        assert _one(second, "SELECT to_regclass('public.free')") is None
        sequence = "rejected_rows_rejected_row_id_seq"
        assert _one(second, f"SELECT last_value FROM {sequence}") == 1
        assert _one(second, f"SELECT is_called FROM {sequence}") is False
    assert _exists(postgresql, name) is undone  # not undone: dropped
