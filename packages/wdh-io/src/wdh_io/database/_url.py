"""Parse database URLs without ever echoing them back."""

from __future__ import annotations

from sqlalchemy import URL, make_url
from sqlalchemy import exc as sa_exc

from wdh_io.errors import DatabaseError

__all__ = ["parse_url"]


def parse_url(url: URL | str) -> URL:
    """*url* as a ``sqlalchemy.URL``.

    SQLAlchemy's own parse error quotes the whole string, password included; this one
    says only that the URL is malformed, and drops the original exception (``from None``)
    so the string cannot surface in a traceback either.
    """
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise DatabaseError(
            "the database URL is malformed (expected dialect+driver://user@host:port/database)"
        ) from None
