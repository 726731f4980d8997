"""The least-privilege application role (AC-1.7.5): data yes, DDL no."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import URL, create_engine, text

from wdh_io.audit import AuditRecorder
from wdh_io.database import create_app_role, drop_app_role
from wdh_io.errors import DatabaseError

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret
SCRIPT = Path(__file__).resolve().parents[1] / "sql" / "create_app_role.sql"


@pytest.fixture
def role_name(migrated_database_url: URL) -> Iterator[str]:
    """A role name unique to this test (roles are cluster-wide), dropped afterwards."""
    name = f"wdh_app_{uuid.uuid4().hex[:10]}"
    yield name
    drop_app_role(migrated_database_url, name)


def _as_role(url: URL, role: str) -> sa.Engine:
    # Tests reach the server without passwords (trust auth), so the role's password is
    # not what grants access here; privileges are.
    return create_engine(url.set(username=role, password=PASSWORD))


def _check_privileges(url: URL, role: str) -> None:
    engine = _as_role(url, role)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sample_data (record_id, customer_name, amount, transaction_date)"
                    " VALUES (1, '张三', 12.50, DATE '2026-01-31')"
                )
            )
            conn.execute(text("UPDATE sample_data SET region = 'east' WHERE record_id = 1"))
            assert conn.execute(text("SELECT region FROM sample_data")).scalar_one() == "east"
            conn.execute(text("CREATE TEMPORARY TABLE staging (x int)"))  # the upsert path
        AuditRecorder(engine).start_run(execution_id="e1", pipeline_name="sample")
        AuditRecorder(engine).record_metrics(execution_id="e1", domain="d", metrics={"m": 1})
        for ddl in (
            "CREATE TABLE intruder (x int)",
            "DROP TABLE sample_data",
            "ALTER TABLE sample_data ADD COLUMN y int",
            "DELETE FROM sample_data",
            "UPDATE alembic_version SET version_num = 'x'",
        ):
            with pytest.raises(sa.exc.ProgrammingError) as caught, engine.begin() as conn:
                conn.execute(text(ddl))
            assert "permission denied" in str(caught.value) or "must be owner" in str(caught.value)
    finally:
        engine.dispose()


def test_the_app_role_writes_rows_but_cannot_create_tables(
    migrated_database_url: URL, role_name: str
) -> None:
    create_app_role(migrated_database_url, role_name, PASSWORD)
    create_app_role(migrated_database_url, role_name, PASSWORD)  # re-running is safe
    _check_privileges(migrated_database_url, role_name)


def test_tables_of_later_migrations_are_granted_too(
    migrated_database_url: URL, role_name: str
) -> None:
    create_app_role(migrated_database_url, role_name, PASSWORD)
    admin = create_engine(migrated_database_url)
    try:
        with admin.begin() as conn:
            conn.execute(text("CREATE TABLE later (id serial PRIMARY KEY, v text)"))
    finally:
        admin.dispose()
    engine = _as_role(migrated_database_url, role_name)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO later (v) VALUES ('ok')"))
    finally:
        engine.dispose()


def test_rerunning_without_delete_revokes_it_now_and_for_future_tables(
    migrated_database_url: URL, role_name: str
) -> None:
    create_app_role(migrated_database_url, role_name, PASSWORD, allow_delete=True)
    engine = _as_role(migrated_database_url, role_name)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM sample_data"))  # granted
        create_app_role(migrated_database_url, role_name, PASSWORD, allow_delete=False)
        admin = create_engine(migrated_database_url)
        try:
            with admin.begin() as conn:
                conn.execute(text("CREATE TABLE later (id int)"))
        finally:
            admin.dispose()
        for table in ("sample_data", "later"):
            with (
                pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
                engine.begin() as conn,
            ):
                conn.execute(text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def test_the_psql_script_grants_the_same(migrated_database_url: URL, role_name: str) -> None:
    url = migrated_database_url
    host = url.host or str(url.query.get("host"))
    port = str(url.port or url.query.get("port") or 5432)
    result = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-h",
            host,
            "-p",
            port,
            "-U",
            url.username or "postgres",
            "-d",
            url.database or "",
            "-v",
            f"app_role={role_name}",
            "-v",
            f"app_password={PASSWORD}",
            "-f",
            str(SCRIPT),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )
    if result.returncode == 127 or ("not found" in result.stderr and "psql" in result.stderr):
        pytest.skip("psql is not installed")
    assert result.returncode == 0, result.stderr
    _check_privileges(url, role_name)


def test_role_errors_name_the_role_but_not_the_password(migrated_database_url: URL) -> None:
    with pytest.raises(DatabaseError) as caught:
        create_app_role(migrated_database_url.set(username="wdh_nobody"), "wdh_x", PASSWORD)
    assert "could not create the application role 'wdh_x'" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def _role_exists(url: URL, role: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            return found.first() is not None
    finally:
        engine.dispose()


def test_a_role_granted_in_two_databases_is_dropped_by_the_last_drop(
    migrated_database_url: URL, role_name: str
) -> None:
    second = f"{migrated_database_url.database}_second"
    admin = create_engine(migrated_database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{second}"'))
        second_url = migrated_database_url.set(database=second)
        create_app_role(migrated_database_url, role_name, PASSWORD)
        create_app_role(second_url, role_name, PASSWORD)
        # The first drop revokes this database's grants; the second database's grants
        # remain, so DROP ROLE (which PostgreSQL would refuse) is skipped.
        assert drop_app_role(migrated_database_url, role_name) is False
        assert _role_exists(migrated_database_url, role_name)
        assert drop_app_role(second_url, role_name) is True
        assert not _role_exists(migrated_database_url, role_name)
        assert drop_app_role(second_url, role_name) is False  # gone: not an error
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{second}" WITH (FORCE)'))
        admin.dispose()
