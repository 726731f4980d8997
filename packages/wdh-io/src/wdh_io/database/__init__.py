"""Database access for WorkDataHub: engines, URLs, migrations, roles, the embedded dev server.

* :func:`create_engine` — one pooled SQLAlchemy ``Engine`` per URL (pre-ping on).
* :func:`parse_url` — the one URL parser: a malformed URL is a ``DatabaseError`` that
  never echoes it; :func:`mask_url` — the URL with every password (field and
  ``?password=``) shown as ``***``; :func:`postgres_url` builds one from libpq-style parts (socket
  directories included).
* :func:`describe_url` / :func:`describe_url_text` — where a URL points (driver, host,
  port, database; never user or password), as log fields or as one line of text.
* :func:`resolve_database_url` — ``DATABASE_URL`` from the settings, or in ``dev`` with
  none set the embedded PostgreSQL under ``./.wdh/pgdata``, started and migrated.
* :func:`upgrade_database` / :func:`downgrade_database` — the packaged Alembic migrations.
* :func:`create_app_role` / :func:`drop_app_role` — the least-privilege application role.
* :func:`start_embedded_database` / :func:`stop_embedded_database` — the embedded server.
"""

from wdh_io.database._embedded import (
    DEFAULT_EMBEDDED_DIRECTORY,
    start_embedded_database,
    stop_embedded_database,
)
from wdh_io.database._engine import create_engine, describe_url, describe_url_text
from wdh_io.database._migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from wdh_io.database._resolve import DatabaseSettings, resolve_database_url
from wdh_io.database._roles import create_app_role, drop_app_role
from wdh_io.database._url import mask_url, parse_url, postgres_url

__all__ = [
    "DEFAULT_EMBEDDED_DIRECTORY",
    "MIGRATIONS_DIR",
    "DatabaseSettings",
    "alembic_config",
    "create_app_role",
    "create_engine",
    "current_revision",
    "describe_url",
    "describe_url_text",
    "downgrade_database",
    "drop_app_role",
    "head_revision",
    "mask_url",
    "parse_url",
    "postgres_url",
    "resolve_database_url",
    "start_embedded_database",
    "stop_embedded_database",
    "upgrade_database",
]
