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
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.config import get_config
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy.engine import URL

if TYPE_CHECKING:
    import coverage

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


def sqlalchemy_url(connection: psycopg.Connection[Any], driver: str = "psycopg2") -> URL:
    """The SQLAlchemy URL of the database a psycopg connection is connected to."""
    # imported here, not at the top: coverage starts only at the end of this module
    from wdh_io.database import postgres_url

    info = connection.info
    return postgres_url(
        host=info.host,
        port=info.port,
        user=info.user,
        password=info.password,
        database=info.dbname,
        driver=driver,
    )


@pytest.fixture
def database_url(postgresql: psycopg.Connection[Any]) -> URL:
    """SQLAlchemy URL (psycopg2 driver) of this test's own fresh database."""
    return sqlalchemy_url(postgresql)


# --- Coverage per package, reported as warnings (never failures) ----------------------
#
# Measured in memory (no .coverage file), so several pytest sessions in one checkout do
# not combine or delete each other's data. `source` and `branch` come from
# [tool.coverage.run] in the root pyproject. Stands down when pytest-cov's --cov is given
# (two tracers cannot run at once), with --no-wdh-coverage, or with WDH_COVERAGE=0.
# WDH_COVERAGE_XML=<path> also writes a Cobertura XML report (CI uploads it).

COVERAGE_TARGETS: dict[str, float | None] = {
    "wdh_domain": 90.0,
    "wdh_logging": 90.0,
    "wdh_config": 90.0,
    "wdh_io": 70.0,
    "wdh_orchestration": 60.0,
    "wdh_orchestrator": None,  # the Dagster code location: reported, no target
}
_COVERAGE_KEY: pytest.StashKey[coverage.Coverage] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-wdh-coverage",
        action="store_true",
        help="do not measure per-package coverage (see COVERAGE_TARGETS in conftest.py)",
    )


def _start_coverage() -> coverage.Coverage | None:
    """Start measuring as this conftest is imported -- before any other conftest.

    pytest imports the conftest.py files on the command-line paths (which may import
    wdh_* packages) before any pytest_configure hook runs, so starting later would miss
    their import-time lines. Hence the decision is taken from sys.argv and the environment.
    """
    argv = sys.argv[1:]
    if (
        os.environ.get("WDH_COVERAGE") == "0"
        or "--no-wdh-coverage" in argv
        or any(arg == "--cov" or arg.startswith("--cov=") for arg in argv)
    ):
        return None
    import coverage

    cov = coverage.Coverage(
        data_file=None, config_file=str(Path(__file__).with_name("pyproject.toml"))
    )
    cov.start()
    return cov


_coverage = _start_coverage()


def pytest_configure(config: pytest.Config) -> None:
    if _coverage is None:
        return
    if config.getoption("--no-wdh-coverage") or config.getoption("cov_source", default=None):
        _coverage.stop()  # pytest.main(...) callers: the options are only known now
        return
    config.stash[_COVERAGE_KEY] = _coverage


def pytest_unconfigure(config: pytest.Config) -> None:
    cov = config.stash.get(_COVERAGE_KEY, None)
    if cov is not None:
        cov.stop()  # idempotent; covers sessions that ended before the summary


def _is_full_run(config: pytest.Config) -> bool:
    """True when the session ran the default test paths without selecting a subset."""
    explicit = [arg for arg in config.args if arg not in config.getini("testpaths")]
    narrowed = any(
        config.getoption(option, default=None) for option in ("keyword", "markexpr", "lf")
    )
    return not explicit and not narrowed


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    cov = config.stash.get(_COVERAGE_KEY, None)
    if cov is None:
        return
    import io

    import coverage

    cov.stop()
    full = _is_full_run(config)
    write = terminalreporter.write_line
    terminalreporter.section("coverage per package (below target: warning, not failure)")
    below: list[str] = []
    for package, target in COVERAGE_TARGETS.items():
        try:
            percent = cov.report(include=[f"*/{package}/*"], file=io.StringIO())
        except coverage.exceptions.NoDataError:
            write(f"{package:<20} not measured")
            continue
        goal = "" if target is None else f"  (target {target:.0f} %)"
        line = f"{package:<20} {percent:5.1f} %{goal}"
        if target is not None and percent < target and full:
            below.append(f"{package} {percent:.1f} % < {target:.0f} %")
            write(f"{line}  WARNING: below target", yellow=True, bold=True)
        else:
            write(line)
    if not full:
        write("(a subset of the tests ran: targets not checked)")
    for warning in below:
        write(f"WARNING: coverage {warning}", yellow=True, bold=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            write(f"::warning title=coverage below target::{warning}")
    xml_path = os.environ.get("WDH_COVERAGE_XML")
    if xml_path:
        cov.xml_report(outfile=xml_path)
        write(f"coverage XML written to {xml_path}")
