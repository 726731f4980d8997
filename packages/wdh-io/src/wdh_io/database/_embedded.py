"""The embedded development PostgreSQL (``pgserver``, a real PostgreSQL 16).

Started under ``<cwd>/.wdh/pgdata`` when ``ENVIRONMENT=dev`` and no ``DATABASE_URL`` is
set, so the sample job and ``alembic upgrade head`` run on a fresh clone with no server
installed. ``pgserver`` is the optional extra ``wdh-io[embedded]`` and is imported only
here, only when needed.

Reuse and concurrency: ``pgserver`` takes an inter-process lock while it starts a
server and reuses a running one for the same data directory, recording every process
that holds it; with the default ``keep_running=False`` the last such process to exit
stops the server. Two processes starting at once (a Dagster webserver and a run worker)
therefore share one server. The server listens only on a unix socket; ``pgserver`` puts
the socket elsewhere when the data directory's path is too long for one (107 bytes).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import URL

from wdh_io.database._migrate import upgrade_database
from wdh_io.database._url import postgres_url
from wdh_io.errors import EmbeddedDatabaseError
from wdh_logging import get_logger

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


def _pgdata(directory: Path | str | None) -> Path:
    path = Path(directory) if directory is not None else Path.cwd() / DEFAULT_EMBEDDED_DIRECTORY
    return path.expanduser().resolve()


@contextlib.contextmanager
def _quiet_platformdirs() -> Iterator[None]:
    # pgserver keeps its lock file in the user runtime directory; without XDG_RUNTIME_DIR
    # (containers, CI, root shells) platformdirs warns on every start and falls back to
    # /tmp/runtime-<uid>, which is fine: the warning would only puzzle the user.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


def _get_server(pgdata: Path, *, keep_running: bool) -> Any:
    try:
        with _quiet_platformdirs():
            import pgserver  # noqa: PLC0415  (optional extra, imported only when used)
    except ImportError as exc:
        raise EmbeddedDatabaseError(
            "the embedded development database needs the optional extra: "
            "install 'wdh-io[embedded]' (pgserver), or set DATABASE_URL"
        ) from exc
    try:
        # pgserver creates the data directory itself with a check-then-mkdir outside its
        # lock, so two processes starting at once can race (FileExistsError); creating it
        # here first is idempotent, and pgserver runs initdb (under its lock) when the
        # directory has no PG_VERSION yet.
        pgdata.mkdir(parents=True, exist_ok=True)
        with _quiet_platformdirs():
            return pgserver.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    except Exception as exc:  # pgserver raises CalledProcessError, TimeoutExpired, OSError...
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}: {exc}"
            f" (server log: {pgdata / 'log'})"
        ) from exc


def embedded_database_url(server: Any) -> URL:
    """The SQLAlchemy URL (psycopg2, unix socket, trust auth: no password) of a pgserver."""
    info = server.get_postmaster_info()
    return postgres_url(
        host=str(info.socket_dir) if info.socket_dir is not None else info.hostname,
        port=info.port,
        user=_USER,
        database=_DATABASE,
    )


def start_embedded_database(
    directory: Path | str | None = None, *, migrate: bool = True, keep_running: bool = False
) -> URL:
    """Start (or reuse) the embedded PostgreSQL under *directory* and return its URL.

    Args:
        directory: the data directory; default ``<cwd>/.wdh/pgdata`` (created if absent).
        migrate: apply the migrations (``upgrade head``) before returning.
        keep_running: leave the server running after the last process using it exits
            (default: the last one stops it).

    Logs ``database.embedded.ready`` with the data directory and the socket directory.

    Raises:
        EmbeddedDatabaseError: ``pgserver`` is not installed or the server did not start.
        MigrationError: the migrations failed.
    """
    pgdata = _pgdata(directory)
    server = _get_server(pgdata, keep_running=keep_running)
    url = embedded_database_url(server)
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

    A no-op when this process never started or reused a server in *directory*.
    """
    pgdata = _pgdata(directory)
    try:
        import pgserver  # noqa: PLC0415
    except ImportError:
        return
    server = pgserver.PostgresServer._instances.get(pgdata)
    if server is not None:
        server.cleanup()
        _log.info("database.embedded.released", directory=str(pgdata))
