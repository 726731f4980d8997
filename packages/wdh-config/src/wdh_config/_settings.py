"""The ``Settings`` model: every WorkDataHub setting, read from the environment and ``.env``.

Environment variable names are the upper-case field names (``DATABASE_URL`` ->
``settings.database_url``); matching is case-insensitive. Values come, highest
priority first, from keyword arguments, the process environment, the ``.env`` file
in the current working directory, and the defaults below. Nothing is read at import
time: only constructing ``Settings()`` (or calling `get_settings`) reads anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Environment", "LogFormat", "LogLevel", "Settings"]

Environment = Literal["dev", "staging", "prod"]
"""Deployment environment; ``staging`` and ``prod`` require ``DATABASE_URL``."""

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "pretty"]

_SECRET_FIELDS: Final = frozenset({"database_url"})
_HIDDEN: Final = "**********"  # what pydantic shows for a SecretStr


class Settings(BaseSettings):
    """Validated application configuration.

    ``DATABASE_URL`` is a `pydantic.SecretStr`: ``repr``, ``str``, ``model_dump_json``
    and every validation error show ``**********`` instead of it; read the real value
    with ``settings.database_url.get_secret_value()`` only where a connection is made.
    With ``ENVIRONMENT=dev`` and no ``DATABASE_URL``, ``database_url`` is ``None``,
    meaning "use the embedded development database" (started by ``wdh_io``).
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",  # .env files also hold variables for other tools
        validate_default=True,
        # belt and braces: even errors we did not anticipate never echo their input
        hide_input_in_errors=True,
    )

    environment: Environment = Field(
        default="dev", description="dev | staging | prod (ENVIRONMENT)"
    )
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the warehouse, e.g. "
            "postgresql+psycopg2://{user}:{password}@{host}:5432/{db} (DATABASE_URL); "
            "required in staging and prod, PostgreSQL in prod; unset in dev = "
            "embedded PostgreSQL"
        ),
    )
    log_level: LogLevel = Field(default="INFO", description="minimum log level (LOG_LEVEL)")
    log_format: LogFormat = Field(
        default="json", description="json lines for machines, pretty for humans (LOG_FORMAT)"
    )
    log_to_file: bool = Field(
        default=False, description="also write daily-rotated JSON log files (LOG_TO_FILE)"
    )
    log_file_dir: Path = Field(
        default=Path("logs"), description="directory of the log files (LOG_FILE_DIR)"
    )
    dagster_home: Path | None = Field(
        default=None,
        description=(
            "Dagster instance directory, '~' expanded (DAGSTER_HOME). Dagster itself reads "
            "the DAGSTER_HOME environment variable; this field only documents and validates "
            "it. Unset: `dagster dev` run from apps/orchestrator keeps its storage in "
            "apps/orchestrator/.wdh/dagster (its dagster.yaml)"
        ),
    )
    max_workers: int = Field(
        default=4,
        ge=1,
        description=(
            "reserved for parallel pipeline execution (deferred to Epic 7, spec A-1.10); "
            "nothing reads it yet: "
            "the sample job runs its three steps in one process (MAX_WORKERS)"
        ),
    )
    db_pool_size: int = Field(
        default=10, ge=1, description="connections kept in the pool (DB_POOL_SIZE)"
    )
    db_batch_size: int = Field(
        default=1000, ge=1, description="rows per insert batch (DB_BATCH_SIZE)"
    )
    db_lock_timeout_ms: int = Field(
        default=60_000,
        ge=0,
        description=(
            "PostgreSQL lock_timeout of load and audit transactions in milliseconds, 0 = "
            "wait forever; a load that times out waiting for a lock is retried "
            "(DB_LOCK_TIMEOUT_MS)"
        ),
    )
    db_statement_timeout_ms: int = Field(
        default=3_600_000,
        ge=0,
        description=(
            "PostgreSQL statement_timeout of load and audit transactions in milliseconds, "
            "0 = no limit; a statement that runs longer fails and is not retried "
            "(DB_STATEMENT_TIMEOUT_MS)"
        ),
    )
    landing_dir: Path = Field(
        default=Path(".wdh/landing"),
        description=(
            "directory the landing sensors watch for new domain files, relative to the "
            "working directory unless absolute (WDH_LANDING_DIR)"
        ),
        validation_alias=AliasChoices("wdh_landing_dir", "landing_dir"),
    )

    def __init__(self, **values: Any) -> None:
        """Read and validate the settings; keyword arguments override the environment.

        Raises:
            pydantic.ValidationError: a setting is missing or invalid. Its text names
                the environment variable and never contains the ``DATABASE_URL`` value.
        """
        try:
            super().__init__(**values)
        except ValidationError as exc:
            # `from None`: the original error holds the raw input (the URL) and must
            # not be printed as the "During handling ..." context of a traceback.
            raise _without_secrets(exc) from None

    @field_validator("database_url", mode="before")
    @classmethod
    def _blank_means_unset(cls, value: object) -> object:
        # `DATABASE_URL=` copied from .env.example means "not set", not "empty URL"
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "environment", mode="before")
    @classmethod
    def _lower_case_choice(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("dagster_home", mode="before")
    @classmethod
    def _blank_home_is_unset(cls, value: object) -> object:
        # `DAGSTER_HOME=` means "not set", as Dagster itself treats an empty variable
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("dagster_home")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # `environment` is declared first, so it is validated (or failed) before this runs
        environment = info.data.get("environment")
        if environment is None:  # ENVIRONMENT itself is invalid and reported already
            return value
        if value is None:
            if environment != "dev":
                msg = (
                    f"DATABASE_URL is required when ENVIRONMENT={environment} "
                    "(only dev may omit it to use the embedded database)"
                )
                raise ValueError(msg)
            return value
        scheme, separator, _ = value.get_secret_value().partition("://")
        if not separator or not scheme:
            msg = (
                "DATABASE_URL is not a URL: expected "
                "{dialect}[+{driver}]://{user}:{password}@{host}/{database}"
            )
            raise ValueError(msg)
        dialect = scheme.split("+", 1)[0].lower()
        if environment == "prod" and dialect != "postgresql":
            msg = (
                "DATABASE_URL must be a PostgreSQL URL (postgresql[+driver]://...) when "
                f"ENVIRONMENT=prod, got dialect {dialect!r}"
            )
            raise ValueError(msg)
        return value


def _without_secrets(exc: ValidationError) -> ValidationError:
    """Rebuild *exc* with every secret input replaced by ``**********``.

    An absent (``None``) or blank ``DATABASE_URL`` is shown as it is: there is no
    secret to hide, and a mask would suggest that a value was given.

    pydantic keeps each failing input in the error (``errors()[i]["input"]``; for a
    model-level check the input is every setting, URL included). The rebuilt error
    keeps type, location and message of each entry but not the secret.
    """
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        # a model-level error (empty loc) carries every setting as its input
        secret = not loc or str(loc[0]).lower() in _SECRET_FIELDS
        details.append(
            {
                "type": PydanticCustomError(error["type"], error["msg"]),
                "loc": _env_names(loc),
                "input": _HIDDEN if secret and _was_given(error["input"]) else error["input"],
            }
        )
    return ValidationError.from_exception_data(exc.title, details, hide_input=False)


def _was_given(value: object) -> bool:
    # Nothing (None) or a blank DATABASE_URL= holds no secret: show it as it is, so the
    # error says "input_value=None" for a missing variable instead of a mask that
    # suggests a value was read.
    return value is not None and not (isinstance(value, str) and not value.strip())


def _env_names(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # Errors name the variable the user sets (DATABASE_URL), not the attribute.
    return tuple(part.upper() if isinstance(part, str) else part for part in loc)
