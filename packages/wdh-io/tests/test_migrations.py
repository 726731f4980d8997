"""The Alembic migrations: history shape, every up/down step, model drift, data survival,
the command line from the repository root, and no password in any output."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from pytest_alembic import Config as PytestAlembicConfig
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import URL, create_engine, inspect, text

from wdh_io.database import (
    alembic_config as make_alembic_config,
)
from wdh_io.database import (
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from wdh_io.errors import DatabaseError, MigrationError

pytestmark = pytest.mark.integration

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
ALEMBIC_INI = REPO_ROOT / "packages" / "wdh-io" / "alembic.ini"
# The foundation's revisions. Domains add theirs after these, so tests name these two
# instead of assuming either is the head.
AUDIT_REVISION = "d3f37894989b"
SAMPLE_REVISION = "c9c4bcd509e9"
REJECTED_ROWS_REVISION = "20261202_rejected_rows"
PLANTED = "s3cr3t-planted"


@pytest.fixture
def alembic_config() -> PytestAlembicConfig:
    return PytestAlembicConfig(alembic_config=make_alembic_config())


@pytest.fixture
def alembic_engine(database_url: URL) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _columns(url: URL, table: str) -> dict[str, tuple[str, bool]]:
    engine = create_engine(url)
    try:
        return {
            c["name"]: (str(c["type"]), c["nullable"]) for c in inspect(engine).get_columns(table)
        }
    finally:
        engine.dispose()


def test_history_is_linear_with_date_prefixed_files() -> None:
    versions = Path(make_alembic_config().get_main_option("script_location") or "") / "versions"
    files = sorted(p.name for p in versions.glob("*.py"))
    assert files, "no revision files"
    assert all(name[:8].isdigit() and name[8] == "_" for name in files), files
    chain = [
        script.revision
        for script in ScriptDirectory.from_config(make_alembic_config()).walk_revisions()
    ][::-1]  # base first
    assert chain[:3] == [AUDIT_REVISION, SAMPLE_REVISION, REJECTED_ROWS_REVISION]
    assert chain[-1] == head_revision()


def test_upgrade_creates_the_specified_tables(database_url: URL) -> None:
    upgrade_database(database_url)
    assert current_revision(database_url) == head_revision()
    assert _columns(database_url, "sample_data") == {
        "record_id": ("INTEGER", False),
        "customer_name": ("VARCHAR(100)", False),
        "email": ("VARCHAR(255)", True),
        "amount": ("NUMERIC(18, 2)", False),
        "transaction_date": ("DATE", False),
        "region": ("VARCHAR(50)", True),
        "loaded_at": ("TIMESTAMP", False),
    }
    executions = _columns(database_url, "pipeline_executions")
    assert executions["execution_id"] == ("VARCHAR(100)", False)
    assert executions["status"] == ("VARCHAR(20)", False)
    assert set(executions) == {
        "execution_id", "pipeline_name", "started_at", "completed_at", "status",
        "input_file_path", "rows_input", "rows_output", "rows_failed", "duration_ms",
        "error_message", "created_at",
    }  # fmt: skip
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            tz_columns = conn.execute(
                text(
                    "SELECT table_name || '.' || column_name FROM information_schema.columns "
                    "WHERE data_type = 'timestamp with time zone' AND table_schema = 'public' "
                    "AND table_name IN "
                    "('pipeline_executions', 'data_quality_metrics', 'sample_data')"
                )
            ).scalars()
            assert set(tz_columns) == {
                "pipeline_executions.started_at", "pipeline_executions.completed_at",
                "pipeline_executions.created_at", "data_quality_metrics.recorded_at",
                "sample_data.loaded_at",
            }  # fmt: skip
        inspector = inspect(engine)
        assert {ix["name"] for ix in inspector.get_indexes("pipeline_executions")} == {
            "ix_pipeline_executions_status",
            "ix_pipeline_executions_started_at",
            "ix_pipeline_executions_pipeline_name",
        }
        assert [fk["name"] for fk in inspector.get_foreign_keys("data_quality_metrics")] == [
            "fk_data_quality_metrics_execution_id_pipeline_executions"
        ]
        assert inspector.get_pk_constraint("sample_data")["name"] == "pk_sample_data"
    finally:
        engine.dispose()


def test_rejected_rows_table_has_its_columns_keys_and_checks(database_url: URL) -> None:
    upgrade_database(database_url, REJECTED_ROWS_REVISION)
    assert _columns(database_url, "rejected_rows") == {
        "rejected_row_id": ("BIGINT", False),
        "execution_id": ("VARCHAR(100)", False),
        "domain": ("VARCHAR(100)", False),
        "source_file": ("TEXT", True),
        "input_row": ("BIGINT", False),
        "file_line": ("BIGINT", True),
        "field": ("TEXT", True),
        "error_code": ("VARCHAR(100)", False),
        "message": ("TEXT", False),
        "raw_values": ("JSONB", False),
        "rejected_at": ("TIMESTAMP", False),
        "resolved_by_execution_id": ("VARCHAR(100)", True),
        "resolved_at": ("TIMESTAMP", True),
    }
    engine = create_engine(database_url)
    try:
        inspector = inspect(engine)
        assert {fk["name"] for fk in inspector.get_foreign_keys("rejected_rows")} == {
            "fk_rejected_rows_execution_id_pipeline_executions",
            "fk_rejected_rows_resolved_by_execution_id_pipeline_executions",
        }
        assert {ix["name"] for ix in inspector.get_indexes("rejected_rows")} == {
            "ix_rejected_rows_execution_id_input_row",
            "ix_rejected_rows_resolved_by_execution_id",
        }
        assert {ck["name"] for ck in inspector.get_check_constraints("rejected_rows")} == {
            "ck_rejected_rows_input_row_not_negative",
            "ck_rejected_rows_file_line_positive",
            "ck_rejected_rows_resolution_pair",
            "ck_rejected_rows_raw_values_object",
        }
        insert = (
            "INSERT INTO rejected_rows (execution_id, domain, input_row, file_line, "
            "error_code, message, raw_values, resolved_by_execution_id, resolved_at) "
            "VALUES ('exec_1', 'sample', {row}, 2, 'E', 'm', {raw}, {by}, {at})"
        )
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO pipeline_executions (execution_id, pipeline_name, status) "
                    "VALUES ('exec_1', 'sample', 'failed')"
                )
            )
            conn.execute(text(insert.format(row=0, raw="'{}'", by="NULL", at="NULL")))
        for row, raw, by, at in [
            (-1, "'{}'", "NULL", "NULL"),  # negative input row
            (0, "'[1]'", "NULL", "NULL"),  # raw values not an object
            (0, "'{}'", "'exec_1'", "NULL"),  # resolved by someone, but never at
            (0, "'{}'", "'exec_unknown'", "now()"),  # resolved by a run that does not exist
        ]:
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(text(insert.format(row=row, raw=raw, by=by, at=at)))
    finally:
        engine.dispose()
    downgrade_database(database_url, SAMPLE_REVISION)
    engine = create_engine(database_url)
    try:
        assert "rejected_rows" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything(database_url: URL) -> None:
    upgrade_database(database_url)
    downgrade_database(database_url, "base")
    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
    assert current_revision(database_url) is None


def test_audit_rows_survive_the_upgrade_to_head(database_url: URL) -> None:
    upgrade_database(database_url, AUDIT_REVISION)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO pipeline_executions (execution_id, pipeline_name, status) "
                    "VALUES ('exec_1', 'sample', 'success')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO data_quality_metrics (execution_id, domain, metric_name, "
                    "metric_value) VALUES ('exec_1', 'sample', 'rows_input', 42)"
                )
            )
        upgrade_database(database_url)
        with engine.connect() as conn:
            assert conn.execute(
                text("SELECT execution_id, status FROM pipeline_executions")
            ).all() == [("exec_1", "success")]
            assert (
                conn.execute(text("SELECT metric_value FROM data_quality_metrics")).scalar_one()
                == 42
            )
    finally:
        engine.dispose()


def test_a_failing_upgrade_leaves_the_database_where_it_was(database_url: URL) -> None:
    upgrade_database(database_url, AUDIT_REVISION)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:  # sabotage revision 2: its table already exists
            conn.execute(text("CREATE TABLE sample_data (x int)"))
        with pytest.raises(
            MigrationError, match="could not upgrade the database to revision 'head'"
        ):
            upgrade_database(database_url)
        assert current_revision(database_url) == AUDIT_REVISION
    finally:
        engine.dispose()


def _url_with_password(url: URL) -> URL:
    return url.set(password=PLANTED, username="wdh_no_such_user")


def test_migration_errors_do_not_contain_the_password(database_url: URL) -> None:
    with pytest.raises(MigrationError) as caught:
        upgrade_database(_url_with_password(database_url))
    assert PLANTED not in str(caught.value)
    assert PLANTED not in repr(caught.value)


def test_a_malformed_url_is_not_echoed() -> None:
    with pytest.raises(DatabaseError, match="malformed") as caught:
        upgrade_database(f"not a url with {PLANTED}")
    assert PLANTED not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def _alembic_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    unset: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**environment, **(env or {})},
    )


@pytest.mark.slow
def test_cli_in_dev_without_a_url_uses_the_embedded_database(tmp_path: Path) -> None:
    """No DATABASE_URL in dev: each command starts the embedded server under ./.wdh."""
    dev = {"ENVIRONMENT": "dev"}
    upgraded = _alembic_cli("upgrade", "head", env=dev, cwd=tmp_path, unset=("DATABASE_URL",))
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"Running upgrade {AUDIT_REVISION} -> {SAMPLE_REVISION}" in upgraded.stderr
    assert (tmp_path / ".wdh" / "pgdata").is_dir()
    current = _alembic_cli("current", env=dev, cwd=tmp_path, unset=("DATABASE_URL",))
    assert current.returncode == 0, current.stderr
    assert f"{head_revision()} (head)" in current.stdout
    downgraded = _alembic_cli(
        "downgrade", AUDIT_REVISION, env=dev, cwd=tmp_path, unset=("DATABASE_URL",)
    )
    assert downgraded.returncode == 0, downgraded.stderr
    assert f"Running downgrade {SAMPLE_REVISION} -> {AUDIT_REVISION}" in downgraded.stderr


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_cli_with_an_unreachable_server_fails_in_one_line() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg2://wdh_user:{PLANTED}@127.0.0.1:{port}/wdh_nowhere"
    result = _alembic_cli("current", env={"DATABASE_URL": url, "ENVIRONMENT": "dev"})
    assert result.returncode != 0
    assert f"FAILED: cannot connect to the database 'wdh_nowhere' on 127.0.0.1:{port}" in (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stderr
    assert PLANTED not in result.stdout + result.stderr


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_cli_with_a_malformed_url_fails_in_one_line_without_echoing_it() -> None:
    result = _alembic_cli("-x", f"url=postgresql+psycopg2://u:{PLANTED}@h:notaport/db", "current")
    assert result.returncode != 0
    assert "FAILED: the database URL is malformed" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in (PLANTED, "notaport"):
        assert fragment not in result.stdout + result.stderr


@pytest.mark.slow
def test_cli_from_the_repository_root_upgrades_and_downgrades(database_url: URL) -> None:
    url = database_url.render_as_string(hide_password=False)
    upgraded = _alembic_cli("-x", f"url={url}", "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"Running upgrade {AUDIT_REVISION} -> {SAMPLE_REVISION}" in upgraded.stderr
    assert current_revision(database_url) == head_revision()
    downgraded = _alembic_cli("-x", f"url={url}", "downgrade", AUDIT_REVISION)
    assert downgraded.returncode == 0, downgraded.stderr
    assert current_revision(database_url) == AUDIT_REVISION


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_cli_never_prints_the_password_from_settings(database_url: URL) -> None:
    secret_url = _url_with_password(database_url).render_as_string(hide_password=False)
    result = _alembic_cli("upgrade", "head", env={"DATABASE_URL": secret_url, "ENVIRONMENT": "dev"})
    assert result.returncode != 0
    assert 'role "wdh_no_such_user" does not exist' in result.stderr  # it did try to connect
    assert PLANTED not in result.stdout
    assert PLANTED not in result.stderr


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_offline_mode_emits_sql_without_a_database() -> None:
    result = _alembic_cli("upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE sample_data" in result.stdout
    assert "CREATE INDEX ix_pipeline_executions_status" in result.stdout
