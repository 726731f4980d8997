"""Alembic environment: where the database URL comes from and how migrations run.

The URL (a secret) is never stored in ``alembic.ini``. In order of precedence:

1. ``config.attributes["connection"]`` — a SQLAlchemy ``Connection`` or ``Engine``
   handed over by a caller (pytest-alembic, tests);
2. ``config.attributes["url"]`` — a ``sqlalchemy.URL`` set by
   :func:`wdh_io.database.upgrade_database` / ``downgrade_database``;
3. ``-x url=...`` on the command line;
4. :func:`wdh_io.database.resolve_database_url` — ``DATABASE_URL`` from the settings,
   or in ``dev`` with none set the embedded PostgreSQL under ``./.wdh/pgdata``.

Online runs take a transaction-scoped advisory lock first, so two processes migrating
the same database at once (say, a webserver and a run worker on a fresh embedded
database) run one after the other instead of both creating the same tables. The whole
upgrade runs in one transaction: PostgreSQL DDL is transactional, so a failing
revision leaves the database at the revision it started from.

Logging is configured from ``alembic.ini`` only when Alembic runs from its command
line; programmatic callers keep their own logging setup.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, pool, text
from sqlalchemy import exc as sa_exc

from wdh_io._translate import primary_message, secrets_of
from wdh_io.database._engine import describe_url_text
from wdh_io.database._url import parse_url
from wdh_io.errors import DatabaseError, MigrationError
from wdh_io.schema import metadata

# Any fixed 64-bit number, the same in every process that migrates this schema.
_MIGRATION_LOCK_ID = 0x57_44_48_5F_4D_49_47  # "WDH_MIG"

config = context.config

if config.config_file_name is not None and config.cmd_opts is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = metadata


class _OneLineError(MigrationError, CommandError):
    """A :class:`MigrationError` that Alembic's command line prints as one ``FAILED:`` line
    (it does so for its own ``CommandError``) instead of a traceback."""


def _explicit_url() -> URL | None:
    """The URL given by a programmatic caller or ``-x url=...``, if any.

    A malformed one fails in one line that does not echo it (see
    :func:`wdh_io.database.parse_url`).
    """
    given: URL | str | None = config.attributes.get("url")
    if given is None:
        given = context.get_x_argument(as_dictionary=True).get("url") or None
    if given is None:
        return None
    try:
        return parse_url(given)
    except DatabaseError as exc:
        raise _OneLineError(exc.message) from None


def _configure(connection: Connection | None = None, url: URL | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    """Emit the SQL to stdout (``alembic upgrade head --sql``); no database is touched."""
    url = _explicit_url() or parse_url("postgresql+psycopg2://")
    _configure(url=url)
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": _MIGRATION_LOCK_ID}
            )
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    connectable = config.attributes.get("connection")
    if isinstance(connectable, Connection):
        _run_on(connectable)
        return
    if isinstance(connectable, Engine):
        with connectable.connect() as connection:
            _run_on(connection)
        return

    url = _explicit_url()
    if url is None:
        # Imported here: resolving may start the embedded database, which only an
        # online run without an explicit URL needs. migrate=False: this run *is* the
        # migration; a nested Alembic upgrade inside env.py would tear down the
        # ``alembic.context`` proxy this command is still using.
        from wdh_io.database import resolve_database_url  # noqa: PLC0415

        url = resolve_database_url(migrate=False)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        try:
            connection = engine.connect()
        except sa_exc.DBAPIError as exc:
            # One short line instead of SQLAlchemy's traceback (which quotes the driver's
            # full text); host and database say where, the password never appears.
            raise _OneLineError(
                f"cannot connect to the {describe_url_text(url)}: "
                f"{primary_message(exc, secrets_of(url))}"
            ) from None
        with connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
