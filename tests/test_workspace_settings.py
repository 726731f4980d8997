"""Settings, .env.example and logging work together as the README says."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from wdh_config import Settings
from wdh_logging import configure_logging, get_logger, reset_logging

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "s3cr3t-planted"  # pragma: allowlist secret


def _variables() -> list[str]:
    """The environment variable of each setting: its first alias, else its name."""
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        names.append(str(choices[0] if choices else name).upper())
    return names


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in _variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def restore_logging() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    reset_logging()
    logging.getLogger().setLevel(level)


def test_env_example_documents_every_setting(clean_environment: Path) -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    # a setting is documented as an assignment, or as a commented-out one (`# NAME=...`)
    # when merely uncommenting the example value would change the default behaviour
    assignments = re.findall(r"^(?:# )?([A-Z_]+)=", text, flags=re.MULTILINE)
    assert sorted(assignments) == sorted(_variables())
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert lines[index - 1].startswith("#"), f"{line!r} has no comment above it"
    # placeholders only: the file is a valid configuration and holds no credentials
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.database_url is None
    assert settings == Settings(_env_file=None)


def test_settings_drive_logging_and_the_url_stays_secret(
    clean_environment: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg2://wdh:{PLANTED}@db.internal:5432/wdh"
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("LOG_TO_FILE", "1")
    monkeypatch.setenv("LOG_FILE_DIR", str(clean_environment / "logs"))
    settings = Settings()
    buffer = io.StringIO()
    configure_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        to_file=settings.log_to_file,
        file_dir=settings.log_file_dir,
        stream=buffer,
    )
    logger = get_logger("wdh_orchestrator.startup")
    logger.info("below the configured level")
    logger.warning(
        "settings.loaded",
        settings=settings,
        as_dict=settings.model_dump(),
        database_url=settings.database_url,
    )
    logger.warning("connecting to %s", url)  # a careless caller: still masked
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = buffer.getvalue() + (clean_environment / "logs" / "workdatahub.log").read_text()
    assert PLANTED not in written
    loaded, connecting = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert loaded["event"] == "settings.loaded"
    assert loaded["database_url"] == "***REDACTED***"
    assert loaded["as_dict"]["database_url"] == "***REDACTED***"
    assert loaded["as_dict"]["db_pool_size"] == 10
    assert connecting["event"] == "connecting to postgresql+psycopg2://wdh:***@db.internal:5432/wdh"
