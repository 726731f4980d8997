"""wdh-io fixtures: a database with the migrations applied, cloned per test from a template.

The migrations run once per session, into a template database on the session's server
(the root conftest's ``wdh_pg_proc``); every test that asks for ``migrated_database_url``
gets its own database cloned from that template and dropped afterwards.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pytest
from pytest_postgresql import factories
from sqlalchemy import URL

from wdh_io.database import postgres_url, upgrade_database


def apply_migrations(
    *, host: str, port: int | str, user: str, dbname: str, password: str | None, **_: Any
) -> None:
    """pytest-postgresql loader: migrate the template database to head."""
    upgrade_database(
        postgres_url(host=host, port=port, user=user, password=password, database=dbname)
    )


# The process id in the name lets several test sessions share one server.
wdh_migrated_proc = factories.postgresql_noproc(
    dbname=f"wdh_io_migrated_{os.getpid()}", depends_on="wdh_pg_proc", load=[apply_migrations]
)
migrated_postgresql = factories.postgresql("wdh_migrated_proc")


@pytest.fixture
def migrated_database_url(migrated_postgresql: psycopg.Connection[Any]) -> URL:
    """SQLAlchemy URL (psycopg2) of this test's own database, migrated to head."""
    info = migrated_postgresql.info
    return postgres_url(
        host=info.host, port=info.port, user=info.user, password=info.password, database=info.dbname
    )
