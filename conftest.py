"""Shared pytest fixtures: a fresh, real PostgreSQL database for every test that asks.

The server is found once per session:

1. the server named by pytest-postgresql's own settings (``--postgresql-host``,
   ``--postgresql-port``, ``--postgresql-user`` or the matching ini keys; by default
   ``127.0.0.1:5432`` as user ``postgres``) when it answers — CI's machine has one;
2. otherwise an embedded PostgreSQL 16 (``pgserver``) started in a temporary
   directory for this session and removed afterwards — so ``uv run pytest`` passes
   on a fresh machine with no server at all.

On that server a template database is created once; ``postgresql`` (pytest-postgresql's
client fixture) then gives each test its own database cloned from that template and
drops it afterwards. Names carry the pytest process id, so two test sessions can share
a server. Packages build on these fixtures (for example a template with the migrations
applied) with ``pytest_postgresql.factories.postgresql_noproc(depends_on="wdh_pg_proc")``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

_CONNECT_TIMEOUT_S = 3


def _server_answers(host: str, port: int, user: str, password: str | None) -> bool:
    """Tell whether a PostgreSQL server accepts a connection (not just a TCP socket)."""
    if not host.startswith("/"):
        try:
            with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
                pass
        except OSError:
            return False
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            dbname="postgres",
            connect_timeout=_CONNECT_TIMEOUT_S,
        ):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def wdh_pg_proc(request: pytest.FixtureRequest) -> Iterator[NoopExecutor]:
    """The session's PostgreSQL server, with an empty template database created on it."""
    config = get_config(request)
    host = config.host or "127.0.0.1"
    port = int(config.port or 5432)
    user = config.user or "postgres"
    password = config.password
    embedded_dir: str | None = None
    server = None
    if not _server_answers(host, port, user, password):
        import pgserver  # dev dependency; started only when no server answers

        embedded_dir = tempfile.mkdtemp(prefix="wdh-pytest-pg-")
        server = pgserver.get_server(Path(embedded_dir), cleanup_mode="stop")
        host, port, user, password = embedded_dir, 5432, "postgres", None

    executor = NoopExecutor(
        host=host,
        port=port,
        user=user,
        password=password,
        options="",
        dbname=f"wdh_test_{os.getpid()}",
    )
    janitor = DatabaseJanitor(
        user=user,
        host=host,
        port=port,
        password=password,
        dbname=executor.template_dbname,
        template_dbname=None,
        as_template=True,
    )
    janitor.drop()
    try:
        with janitor:
            yield executor
    finally:
        if server is not None:
            server.cleanup()
        if embedded_dir is not None:
            shutil.rmtree(embedded_dir, ignore_errors=True)


postgresql = factories.postgresql("wdh_pg_proc")


def sqlalchemy_url(connection: psycopg.Connection[object], driver: str = "psycopg2") -> URL:
    """The SQLAlchemy URL of the database a psycopg connection is connected to."""
    info = connection.info
    host = info.host
    if host.startswith("/"):  # unix socket directory (the embedded server)
        return URL.create(
            f"postgresql+{driver}",
            username=info.user,
            password=info.password or None,
            database=info.dbname,
            query={"host": host, "port": str(info.port)},
        )
    return URL.create(
        f"postgresql+{driver}",
        username=info.user,
        password=info.password or None,
        host=host,
        port=info.port,
        database=info.dbname,
    )


@pytest.fixture
def database_url(postgresql: psycopg.Connection[object]) -> URL:
    """SQLAlchemy URL (psycopg2 driver) of this test's own fresh database."""
    return sqlalchemy_url(postgresql)
