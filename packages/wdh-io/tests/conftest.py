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


def _url(host: str, port: int | str, user: str, password: str | None, dbname: str) -> URL:
    if str(host).startswith("/"):  # unix socket directory (the embedded server)
        return URL.create(
            "postgresql+psycopg2",
            username=user,
            password=password or None,
            database=dbname,
            query={"host": str(host), "port": str(port)},
        )
    return URL.create(
        "postgresql+psycopg2",
        username=user,
        password=password or None,
        host=host,
        port=int(port),
        database=dbname,
    )


def apply_migrations(
    *, host: str, port: int | str, user: str, dbname: str, password: str | None, **_: Any
) -> None:
    """pytest-postgresql loader: migrate the template database to head."""
    from wdh_io.database import upgrade_database

    upgrade_database(_url(host, port, user, password, dbname))


# The process id in the name lets several test sessions share one server.
wdh_migrated_proc = factories.postgresql_noproc(
    dbname=f"wdh_io_migrated_{os.getpid()}", depends_on="wdh_pg_proc", load=[apply_migrations]
)
migrated_postgresql = factories.postgresql("wdh_migrated_proc")


def _connection_url(connection: psycopg.Connection[Any]) -> URL:
    info = connection.info
    return _url(info.host, info.port, info.user, info.password, info.dbname)


@pytest.fixture
def migrated_database_url(migrated_postgresql: psycopg.Connection[Any]) -> URL:
    """SQLAlchemy URL (psycopg2) of this test's own database, migrated to head."""
    return _connection_url(migrated_postgresql)
