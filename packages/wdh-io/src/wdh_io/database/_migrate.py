"""Apply and revert the Alembic migrations from code (the packaged ``migrations/``).

The same revisions run from the command line with
``alembic -c packages/wdh-io/alembic.ini upgrade head``; these functions build the
Alembic configuration in memory, so they work from an installed wheel too. Run them
with an admin (DDL-capable) URL; the application role cannot create tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, create_engine, pool
from sqlalchemy import exc as sa_exc

from wdh_io._translate import primary_message, scrub, secrets_of
from wdh_io.database._url import parse_url
from wdh_io.errors import MigrationError
from wdh_logging import get_logger

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "upgrade_database",
]

_log = get_logger(__name__)

#: The directory holding ``env.py`` and ``versions/`` (inside the installed package).
MIGRATIONS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: URL | str | None = None) -> Config:
    """An Alembic ``Config`` for the packaged migrations, bound to *url* when given.

    The URL travels in ``config.attributes`` (never in the ini options), so it is not
    rendered into Alembic's configuration text or output.
    """
    config = Config()
    # configparser interpolates "%"; a checkout path containing one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.attributes["url"] = parse_url(url)
    return config


def head_revision() -> str:
    """The revision id of the newest migration (the single head)."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise MigrationError(f"expected one migration head, found {len(heads)}: {sorted(heads)}")
    return heads[0]


def current_revision(url: URL | str) -> str | None:
    """The revision the database at *url* is at (``None`` before the first migration)."""
    parsed = parse_url(url)
    engine = create_engine(parsed, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except sa_exc.SQLAlchemyError as exc:
        raise MigrationError(
            f"could not read the schema revision: {primary_message(exc, secrets_of(parsed))}"
        ) from exc
    finally:
        engine.dispose()


def upgrade_database(url: URL | str, revision: str = "head") -> None:
    """Migrate the database at *url* up to *revision* (default: the newest), in one transaction.

    Raises:
        MigrationError: a revision failed (the database stays at the revision it was
            at) or the database cannot be reached. The message names the target
            revision and the cause, never the URL's password.
    """
    _run("upgrade", url, revision)


def downgrade_database(url: URL | str, revision: str) -> None:
    """Revert the database at *url* down to *revision* (``"-1"``, a revision id, ``"base"``).

    Raises:
        MigrationError: as for :func:`upgrade_database`.
    """
    _run("downgrade", url, revision)


def _run(direction: str, url: URL | str, revision: str) -> None:
    parsed = parse_url(url)
    config = alembic_config(parsed)
    where = parsed.render_as_string(hide_password=True)
    _log.info(f"database.migration.{direction}.started", revision=revision, database=where)
    try:
        if direction == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
    except sa_exc.SQLAlchemyError as exc:
        raise MigrationError(
            f"could not {direction} the database to revision {revision!r}: "
            f"{primary_message(exc, secrets_of(parsed))}"
        ) from exc
    except Exception as exc:  # alembic CommandError, a failing revision's own error
        raise MigrationError(
            f"could not {direction} the database to revision {revision!r}: "
            f"{scrub(str(exc), secrets_of(parsed))}"
        ) from exc
    _log.info(f"database.migration.{direction}.completed", revision=revision, database=where)
