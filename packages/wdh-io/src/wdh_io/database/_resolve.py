"""Which database to use: the configured ``DATABASE_URL`` or, in dev, the embedded one."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from sqlalchemy import URL

from wdh_io.database._embedded import start_embedded_database
from wdh_io.database._url import parse_url
from wdh_io.errors import DatabaseError

__all__ = ["DatabaseSettings", "resolve_database_url"]


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class DatabaseSettings(Protocol):
    """What :func:`resolve_database_url` reads from ``wdh_config.Settings``."""

    @property
    def database_url(self) -> _Secret | None: ...

    @property
    def environment(self) -> object: ...


def _environment_name(settings: DatabaseSettings) -> str:
    env = settings.environment
    return str(getattr(env, "value", env)).lower()


def resolve_database_url(
    settings: DatabaseSettings | None = None,
    *,
    embedded_directory: Path | str | None = None,
    migrate: bool = True,
) -> URL:
    """The database URL to use.

    ``DATABASE_URL`` from *settings* (default: ``wdh_config.get_settings()``) when set.
    Otherwise, only when the environment is ``dev``: the embedded PostgreSQL under
    *embedded_directory* (default ``<cwd>/.wdh/pgdata``), started or reused and — with
    *migrate* — migrated to head. Staging and production never start it.

    Raises:
        DatabaseError: no URL is configured outside ``dev``, or the URL is malformed
            (the message never contains it).
        EmbeddedDatabaseError, MigrationError: the embedded database failed.
    """
    if settings is None:
        from wdh_config import get_settings  # noqa: PLC0415  (settings read on demand)

        settings = get_settings()
    secret = settings.database_url
    if secret is not None:
        return parse_url(secret.get_secret_value())
    environment = _environment_name(settings)
    if environment != "dev":
        raise DatabaseError(
            f"DATABASE_URL is not set and the environment is {environment!r}; "
            "the embedded database is only started in 'dev'"
        )
    return start_embedded_database(embedded_directory, migrate=migrate)
