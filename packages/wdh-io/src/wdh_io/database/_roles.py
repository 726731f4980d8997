"""Least privilege (AC-1.7.5): an application role that reads and writes data, no DDL.

Migrations run with an admin URL (the owner of the tables). Pipelines connect as an
application role created here, which gets:

* ``CONNECT`` and ``TEMPORARY`` on the database (the loader's upsert stages rows in a
  temporary table),
* ``USAGE`` on the schema — and no ``CREATE``, so it cannot create, alter or drop tables,
* ``SELECT, INSERT, UPDATE`` (and ``DELETE`` only when asked; re-running without it
  revokes an earlier ``DELETE``, default privileges included) on every table of the
  schema, ``SELECT`` only on ``alembic_version``,
* ``USAGE, SELECT`` on the schema's sequences (serial keys such as ``metric_id``),
* the same grants, as default privileges, on tables and sequences the admin creates
  later, so a new migration's tables are usable without re-running this.

The password is sent as a SCRAM verifier computed on the client
(``psycopg2.extensions.encrypt_password``), so the clear text appears in no statement,
server log or error. The same grants as a psql script: ``packages/wdh-io/sql/create_app_role.sql``.
"""

from __future__ import annotations

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as psycopg2_connection
from psycopg2.extensions import encrypt_password
from sqlalchemy import URL, Connection, create_engine, pool
from sqlalchemy import exc as sa_exc

from wdh_io._translate import secrets_of, translate
from wdh_io.database._url import parse_url
from wdh_io.errors import DatabaseError
from wdh_logging import get_logger

__all__ = ["create_app_role", "drop_app_role"]

_log = get_logger(__name__)


def _grant_statements(
    role: str, admin: str, database: str, schema: str, *, allow_delete: bool
) -> list[sql.Composed]:
    table_privileges = sql.SQL(
        "SELECT, INSERT, UPDATE, DELETE" if allow_delete else "SELECT, INSERT, UPDATE"
    )
    r, a, s = sql.Identifier(role), sql.Identifier(admin), sql.Identifier(schema)
    # Without DELETE, take back a DELETE an earlier run granted (on existing tables and
    # as a default privilege for future ones): the call states the privileges wanted.
    revokes = (
        []
        if allow_delete
        else [
            sql.SQL("REVOKE DELETE ON ALL TABLES IN SCHEMA {} FROM {}").format(s, r),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE DELETE ON TABLES FROM {}"
            ).format(a, s, r),
        ]
    )
    return [
        *revokes,
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
            sql.Identifier(database), r
        ),
        # Before PostgreSQL 15 every role could create objects in "public"; take that
        # away so that "no DDL" holds on every version.
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(s),
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(s, r),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(table_privileges, s, r),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(a, s, table_privileges, r),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} "
            "GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(a, s, r),
    ]


def create_app_role(
    admin_url: URL | str,
    role_name: str,
    password: str,
    *,
    schema: str = "public",
    allow_delete: bool = False,
) -> None:
    """Create (or update) the login role *role_name* with data-only privileges on *schema*.

    Run it with the admin URL after ``upgrade head``. Re-running it is safe: an existing
    role gets the new password and the grants again. All statements run in one
    transaction.

    Raises:
        DatabaseError: the admin cannot create roles or grant (the message names the
            role and the cause, never the password or the URL).
    """
    url = parse_url(admin_url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            raw = _psycopg2_connection(connection)
            verifier = encrypt_password(password, role_name, raw, None)
            with raw.cursor() as cursor:
                cursor.execute("SELECT current_user, current_database()")
                admin, database = cursor.fetchone() or ("", "")
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role_name,))
                verb = "ALTER" if cursor.fetchone() else "CREATE"
                cursor.execute(
                    sql.SQL(
                        verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                    ).format(sql.Identifier(role_name), sql.Literal(verifier))
                )
                for statement in _grant_statements(
                    role_name, admin, database, schema, allow_delete=allow_delete
                ):
                    cursor.execute(statement)
                # The schema's revision is the migrations' business: read-only for the app.
                cursor.execute(
                    "SELECT to_regclass(format('%%I.alembic_version', %s::text)) IS NOT NULL",
                    (schema,),
                )
                version_table = cursor.fetchone()
                if version_table is not None and version_table[0]:
                    cursor.execute(
                        sql.SQL(
                            "REVOKE INSERT, UPDATE, DELETE ON {}.alembic_version FROM {}"
                        ).format(sql.Identifier(schema), sql.Identifier(role_name))
                    )
    except DatabaseError:
        raise
    except (sa_exc.SQLAlchemyError, psycopg2.Error) as exc:  # psycopg2: the raw cursor's
        raise translate(
            exc,
            action=f"could not create the application role {role_name!r}",
            dialect=engine.dialect,
            secrets=(*secrets_of(url), password),
        ) from exc
    finally:
        engine.dispose()
    _log.info("database.role.granted", role=role_name, schema=schema, allow_delete=allow_delete)


def drop_app_role(admin_url: URL | str, role_name: str) -> bool:
    """Drop what *role_name* owns and its privileges in this database; drop the role too
    once nothing else refers to it. Returns whether the role itself was dropped.

    Roles are cluster-wide, but ``DROP OWNED`` works on one database at a time (plus the
    shared objects: its ``CONNECT`` grants on every database go with the first call).
    So run it in every database the role was granted on: while ``pg_shdepend`` still
    records a privilege of the role in another database (or a database it owns),
    PostgreSQL would refuse ``DROP ROLE``, so it is skipped (``database.role.kept`` is
    logged with the number of remaining dependencies) and the call returns ``False``;
    the call in the last such database drops the role. A role that does not exist is
    not an error (``False``).
    """
    url = parse_url(admin_url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            raw = _psycopg2_connection(connection)
            with raw.cursor() as cursor:
                cursor.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (role_name,))
                found = cursor.fetchone()
                if found is None:
                    return False
                ident = sql.Identifier(role_name)
                cursor.execute(sql.SQL("DROP OWNED BY {}").format(ident))
                cursor.execute(
                    "SELECT count(*) FROM pg_shdepend "
                    "WHERE refclassid = 'pg_authid'::regclass AND refobjid = %s",
                    (found[0],),
                )
                remaining = cursor.fetchone()
                if remaining is not None and remaining[0]:
                    _log.info(
                        "database.role.kept",
                        role=role_name,
                        reason="still referenced in other databases",
                        dependencies=int(remaining[0]),
                    )
                    return False
                cursor.execute(sql.SQL("DROP ROLE {}").format(ident))
    except DatabaseError:
        raise
    except (sa_exc.SQLAlchemyError, psycopg2.Error) as exc:
        raise translate(
            exc,
            action=f"could not drop the application role {role_name!r}",
            dialect=engine.dialect,
            secrets=secrets_of(url),
        ) from exc
    finally:
        engine.dispose()
    _log.info("database.role.dropped", role=role_name)
    return True


def _psycopg2_connection(connection: Connection) -> psycopg2_connection:
    raw: object = connection.connection.dbapi_connection
    if not isinstance(raw, psycopg2_connection):
        raise DatabaseError("the admin URL must use the psycopg2 driver (postgresql+psycopg2://)")
    return raw
