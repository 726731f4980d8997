"""Parse database URLs without ever echoing them back: the one URL parser of ``wdh_io``."""

from __future__ import annotations

from sqlalchemy import URL, make_url
from sqlalchemy import exc as sa_exc

from wdh_io.errors import DatabaseError

__all__ = ["mask_url", "parse_url", "password_in_field", "postgres_url"]

_MAX_PORT = 65535


def parse_url(url: URL | str) -> URL:
    """*url* as a ``sqlalchemy.URL``; every ``wdh_io`` function taking a URL string uses it.

    A malformed URL raises one :class:`~wdh_io.errors.DatabaseError` that names neither
    the URL nor any part of it, with the original exception dropped (``from None``), so
    no part of the string reaches a traceback either. What it replaces (SQLAlchemy 2.1.9):

    * a string that is not a URL at all: ``ArgumentError("Could not parse SQLAlchemy URL
      from given URL string")`` (no echo, but an error class outside ``wdh_io.errors``);
    * a port that is not a number: a bare ``ValueError("invalid literal for int() with
      base 10: '<the port text>'")``, which quotes part of the URL;
    * a port outside 1 to 65535, which SQLAlchemy accepts and the driver would reject
      only at connect time.

    A URL that names PostgreSQL without a driver (``postgresql://…``, or Heroku's
    ``postgres://…``) gets the driver ``wdh-io`` installs, psycopg2: SQLAlchemy 2.1's
    default for a bare ``postgresql`` is psycopg 3, which is not installed, and would
    fail at connect time with ``No module named 'psycopg'``. A ``URL`` object is
    otherwise returned unchanged (it was parsed, or built, already).
    """
    if isinstance(url, URL):
        return _with_installed_driver(url)
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        parsed = None
    if parsed is None or (parsed.port is not None and not 0 < parsed.port <= _MAX_PORT):
        raise DatabaseError(
            "the database URL is malformed (expected dialect+driver://user@host:port/database"
            " with a port from 1 to 65535)"
        ) from None
    return _with_installed_driver(parsed)


_BARE_POSTGRES = frozenset({"postgresql", "postgres"})


def _with_installed_driver(url: URL) -> URL:
    if url.drivername in _BARE_POSTGRES:
        return url.set(drivername="postgresql+psycopg2")
    return url


_MASK = "***"


def mask_url(url: URL) -> URL:
    """*url* with every password replaced by ``***``: the password field and a
    ``?password=`` query parameter (which SQLAlchemy's own masking leaves visible)."""
    masked = url.set(password=_MASK) if url.password is not None else url
    if "password" in masked.query:
        masked = masked.update_query_dict({"password": _MASK})
    return masked


def password_in_field(url: URL) -> URL:
    """*url* with a ``?password=`` query parameter moved into the password field.

    libpq reads both and the query parameter wins, so the connection is the same; but
    SQLAlchemy masks only the field in ``repr(engine)``, ``str(engine.url)`` and its
    messages, so the password must live there.
    """
    value = url.query.get("password")
    if value is None:
        return url
    password = value[-1] if isinstance(value, tuple) else value
    return url.difference_update_query(["password"]).set(password=password)


def postgres_url(
    *,
    host: str | None,
    port: int | str | None,
    user: str,
    database: str,
    password: str | None = None,
    driver: str = "psycopg2",
) -> URL:
    """The SQLAlchemy URL of a PostgreSQL database from libpq-style parts.

    A *host* starting with ``/`` is a unix-socket directory (the embedded server, a local
    socket): it goes into the query string (``?host=/dir&port=5432``), where libpq looks
    for it, instead of the URL's host part. An empty *password* means none.
    """
    if host is not None and str(host).startswith("/"):
        return URL.create(
            f"postgresql+{driver}",
            username=user,
            password=password or None,
            database=database,
            query={"host": str(host), "port": str(port or 5432)},
        )
    return URL.create(
        f"postgresql+{driver}",
        username=user,
        password=password or None,
        host=host,
        port=int(port) if port is not None else None,
        database=database,
    )
