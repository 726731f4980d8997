"""Dagster resources: the warehouse (engine, loader, audit recorder) as one swappable resource.

The composition root (``wdh_orchestrator.definitions``) builds the resources from
``wdh_config.Settings``; ops only ask for ``warehouse: WarehouseResource``. Tests and
other environments swap the instance (another URL, pool or batch size) without touching
an op.
"""

from __future__ import annotations

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy.engine import Engine

from wdh_config import Settings
from wdh_domain.pipelines import RetryConfig
from wdh_io.audit import AuditRecorder
from wdh_io.database import create_engine, parse_url, resolve_database_url
from wdh_io.loader import WarehouseLoader

__all__ = ["WarehouseResource"]

# Transient errors are retried at one level only: the op's Dagster retry policy.
_NO_RETRY = RetryConfig(max_attempts=1)


class WarehouseResource(ConfigurableResource):  # type: ignore[type-arg]
    """The warehouse database of a run: one pooled engine, shared by loader and audit.

    ``database_url`` is normally left unset: the URL is then resolved when a run starts,
    from the settings (``DATABASE_URL``, or in ``dev`` without one the embedded
    PostgreSQL under ``./.wdh/pgdata``, started and migrated on first use). Keeping the
    URL out of the resource's configuration keeps the password out of Dagster's run
    records and UI. To point a resource at a given database, pass
    ``database_url=dagster.EnvVar("NAME")`` (the UI shows only the variable's name).

    The URL is resolved and the engine created on first use of :attr:`engine`, inside
    the asset's or sensor's own code, so that bad settings, a malformed URL or an
    embedded database that cannot start fail that code with one readable message (a
    failure in Dagster's resource set-up would show a traceback instead). The engine is
    disposed when the process's work ends (``teardown_after_execution``). Loading the
    definitions never touches a database.
    """

    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the warehouse; leave unset to use the settings "
            "(DATABASE_URL, or the embedded database in dev). Pass an EnvVar, never a "
            "literal URL with a password."
        ),
    )
    pool_size: int = Field(default=10, ge=1, description="connections kept in the pool")
    batch_size: int = Field(default=1000, ge=1, description="rows per insert batch")
    lock_timeout_ms: int = Field(
        default=60_000, ge=0, description="longest wait for a lock per statement (0 = none)"
    )
    statement_timeout_ms: int = Field(
        default=3_600_000, ge=0, description="longest run of one statement (0 = none)"
    )

    _engine: Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> WarehouseResource:
        """The warehouse of *settings*' environment: its pool, batch and timeout settings."""
        return cls(
            pool_size=settings.db_pool_size,
            batch_size=settings.db_batch_size,
            lock_timeout_ms=settings.db_lock_timeout_ms,
            statement_timeout_ms=settings.db_statement_timeout_ms,
        )

    def teardown_after_execution(self, context: InitResourceContext) -> None:  # noqa: ARG002
        """Close the pool's connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> Engine:
        """The pooled engine, created on first use.

        Raises:
            pydantic.ValidationError: the settings are invalid (``DATABASE_URL`` missing
                outside ``dev``, say); the message never contains the URL.
            wdh_io.errors.WdhIoError: the URL is malformed (never echoed), or the
                embedded database could not be started or migrated.
        """
        if self._engine is None:
            url = parse_url(self.database_url) if self.database_url else resolve_database_url()
            self._engine = create_engine(url, pool_size=self.pool_size)
        return self._engine

    def loader(self) -> WarehouseLoader:
        """A loader on the run's engine. It does not retry by itself: a transient error
        fails the op, and the op's Dagster retry policy runs it again (see ``jobs``)."""
        return WarehouseLoader(
            self.engine,
            batch_size=self.batch_size,
            retry=_NO_RETRY,
            lock_timeout_ms=self.lock_timeout_ms,
            statement_timeout_ms=self.statement_timeout_ms,
        )

    def audit(self) -> AuditRecorder:
        """The audit recorder on the run's engine."""
        return AuditRecorder(
            self.engine,
            lock_timeout_ms=self.lock_timeout_ms,
            statement_timeout_ms=self.statement_timeout_ms,
        )
