"""Settings: sources, defaults, validation, and the DATABASE_URL password never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from wdh_config import Settings, get_settings

pytestmark = pytest.mark.unit

PLANTED = "s3cr3t-planted"  # pragma: allowlist secret
PG_URL = f"postgresql+psycopg2://wdh:{PLANTED}@db.internal:5432/wdh"
SQLITE_URL = f"sqlite:///var/{PLANTED}.db"

SETTING_VARIABLES = [
    "ENVIRONMENT",
    "DATABASE_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "LOG_TO_FILE",
    "LOG_FILE_DIR",
    "DAGSTER_HOME",
    "MAX_WORKERS",
    "DB_POOL_SIZE",
    "DB_BATCH_SIZE",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No setting in the environment, no .env in the working directory, empty cache."""
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def all_text_of(exc: ValidationError) -> str:
    """Everything a user or a log could ever see of the error."""
    return "\n".join(
        [
            str(exc),
            repr(exc),
            repr(exc.errors()),
            exc.json(),
            "".join(traceback.format_exception(exc)),
        ]
    )


def test_defaults_in_dev() -> None:
    settings = Settings()
    assert settings.environment == "dev"
    assert settings.database_url is None
    assert settings.log_level == "INFO"
    assert settings.log_format == "json"
    assert settings.log_to_file is False
    assert settings.log_file_dir == Path("logs")
    assert settings.dagster_home is None  # Dagster reads DAGSTER_HOME itself
    assert (settings.max_workers, settings.db_pool_size, settings.db_batch_size) == (4, 10, 1000)


def test_upper_case_variables_fill_lower_case_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ENVIRONMENT": "staging",
        "DATABASE_URL": PG_URL,
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "Pretty",
        "LOG_TO_FILE": "true",
        "LOG_FILE_DIR": "/var/log/wdh",
        "DAGSTER_HOME": "/opt/dagster",
        "MAX_WORKERS": "8",
        "DB_POOL_SIZE": "20",
        "DB_BATCH_SIZE": "5000",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "staging"
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == PG_URL
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "pretty"
    assert settings.log_to_file is True
    assert settings.log_file_dir == Path("/var/log/wdh")
    assert settings.dagster_home == Path("/opt/dagster")
    assert (settings.max_workers, settings.db_pool_size, settings.db_batch_size) == (8, 20, 5000)


def test_dagster_home_is_expanded_and_blank_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", "~/dagster-home")
    assert Settings().dagster_home == Path("~/dagster-home").expanduser()
    monkeypatch.setenv("DAGSTER_HOME", "  ")
    assert Settings().dagster_home is None


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text(
        "# comment\nDB_BATCH_SIZE=250\nMAX_WORKERS=2\nUNRELATED_TOOL_SETTING=x\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MAX_WORKERS", "3")
    settings = Settings()
    assert settings.db_batch_size == 250
    assert settings.max_workers == 3  # the process environment overrides .env
    assert Settings(_env_file=None).db_batch_size == 1000


def test_keyword_arguments_override_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert Settings(db_pool_size=7).db_pool_size == 7


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_staging_and_prod_require_database_url(environment: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(environment=environment)
    (error,) = info.value.errors()
    assert error["loc"] == ("DATABASE_URL",)
    assert error["msg"] == (
        f"Value error, DATABASE_URL is required when ENVIRONMENT={environment} "
        "(only dev may omit it to use the embedded database)"
    )
    assert "DATABASE_URL" in str(info.value)
    # nothing was given, so nothing is masked: the error must not pretend a value was read
    assert error["input"] is None
    assert "input_value=None" in str(info.value)
    assert "**********" not in str(info.value)


def test_a_given_database_url_is_masked_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(environment="prod", database_url=f"sqlite:///{PLANTED}.db")
    (error,) = info.value.errors()
    assert error["loc"] == ("DATABASE_URL",)
    assert error["input"] == "**********"
    assert "input_value='**********'" in str(info.value)
    assert PLANTED not in all_text_of(info.value)


def test_blank_database_url_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert Settings().database_url is None
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="DATABASE_URL is required when ENVIRONMENT=prod"):
        Settings()


def test_prod_requires_postgresql_and_hides_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("DATABASE_URL", f"mysql://wdh:{PLANTED}@db.internal/wdh")
    with pytest.raises(ValidationError) as info:
        Settings()
    (error,) = info.value.errors()
    assert error["loc"] == ("DATABASE_URL",)
    assert error["msg"] == (
        "Value error, DATABASE_URL must be a PostgreSQL URL (postgresql[+driver]://...) "
        "when ENVIRONMENT=prod, got dialect 'mysql'"
    )
    text = all_text_of(info.value)
    assert PLANTED not in text
    assert "db.internal" not in text  # the whole URL is hidden, not only its password
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    [PG_URL, f"postgresql://wdh:{PLANTED}@h/db", f"PostgreSQL+psycopg://wdh:{PLANTED}@h/db"],
)
def test_prod_accepts_postgresql_urls(url: str) -> None:
    settings = Settings(environment="prod", database_url=url)
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == url


def test_staging_and_dev_accept_other_databases() -> None:
    assert Settings(environment="staging", database_url=SQLITE_URL).database_url is not None
    assert Settings(environment="dev", database_url=SQLITE_URL).database_url is not None


def test_database_url_must_be_a_url() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(database_url=f"wdh:{PLANTED}@db.internal")
    assert "DATABASE_URL is not a URL" in str(info.value)
    assert PLANTED not in all_text_of(info.value)


def test_secret_never_in_repr_str_or_dumps() -> None:
    settings = Settings(environment="prod", database_url=PG_URL)
    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.model_dump()),
        repr(settings.database_url),
        str(settings.database_url),
    ):
        assert PLANTED not in text
        assert "db.internal" not in text
    assert isinstance(settings.database_url, SecretStr)


def test_other_errors_name_the_variable_and_keep_their_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    monkeypatch.setenv("DB_POOL_SIZE", "0")
    monkeypatch.setenv("MAX_WORKERS", "many")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError) as info:
        Settings()
    errors = {error["loc"]: error for error in info.value.errors()}
    assert set(errors) == {
        ("ENVIRONMENT",),
        ("LOG_LEVEL",),
        ("LOG_FORMAT",),
        ("MAX_WORKERS",),
        ("DB_POOL_SIZE",),
    }
    assert errors[("DB_POOL_SIZE",)]["msg"] == "Input should be greater than or equal to 1"
    assert errors[("MAX_WORKERS",)]["input"] == "many"
    assert errors[("ENVIRONMENT",)]["type"] == "literal_error"
    assert "input_value='many'" in str(info.value)
    assert PLANTED not in all_text_of(info.value)


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("DB_BATCH_SIZE", "42")
    assert get_settings().db_batch_size == 1000  # cached: the environment is not re-read
    get_settings.cache_clear()
    second = get_settings()
    assert second is not first
    assert second.db_batch_size == 42


def test_get_settings_failure_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    with pytest.raises(ValidationError, match="DATABASE_URL is required"):
        get_settings()
    monkeypatch.setenv("DATABASE_URL", PG_URL)
    assert get_settings().environment == "prod"


def test_importing_reads_nothing() -> None:
    # In a fresh interpreter whose environment cannot validate, importing still works:
    # the environment is read by Settings() / get_settings(), never at import time.
    env = {**os.environ, "ENVIRONMENT": "prod", "MAX_WORKERS": "not-a-number"}
    code = "import wdh_config; print(sorted(wdh_config.__all__))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['Environment', 'Settings', 'get_settings']"


def test_database_timeouts_default_and_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings(_env_file=None)
    assert (defaults.db_lock_timeout_ms, defaults.db_statement_timeout_ms) == (60_000, 3_600_000)
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "250")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "0")
    settings = Settings(_env_file=None)
    assert (settings.db_lock_timeout_ms, settings.db_statement_timeout_ms) == (250, 0)
    monkeypatch.setenv("DB_LOCK_TIMEOUT_MS", "-1")
    with pytest.raises(ValidationError, match="DB_LOCK_TIMEOUT_MS"):
        Settings(_env_file=None)
