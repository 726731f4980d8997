"""The shared PostgreSQL fixtures give each test a working database of its own."""

from __future__ import annotations

from typing import Any

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
