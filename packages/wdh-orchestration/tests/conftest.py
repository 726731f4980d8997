"""Fixtures of the wdh-orchestration tests: a migrated database and a Dagster instance
that captures the platform's loggers like ``apps/orchestrator/dagster.yaml`` does."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from dagster import DagsterInstance
from sqlalchemy.engine import URL

from wdh_io.database import upgrade_database
from wdh_logging import configure_logging, reset_logging
from wdh_orchestration import WarehouseResource

MANAGED_LOGGERS = ["wdh_domain", "wdh_io", "wdh_orchestration"]


@pytest.fixture
def migrated_url(database_url: URL) -> URL:
    """This test's fresh database, migrated to head."""
    upgrade_database(database_url)
    return database_url


@pytest.fixture
def warehouse(migrated_url: URL) -> WarehouseResource:
    """The warehouse resource on this test's database."""
    return WarehouseResource(
        database_url=migrated_url.render_as_string(hide_password=False), pool_size=2
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """An in-memory Dagster instance whose run event logs capture the wdh_* loggers."""
    settings = {
        "python_logs": {"managed_python_loggers": MANAGED_LOGGERS, "python_log_level": "INFO"}
    }
    with DagsterInstance.ephemeral(settings=settings) as inst:
        yield inst


@pytest.fixture
def log_stream() -> Iterator[StringIO]:
    """Logging configured as an entry point does it, into a buffer the test can read."""
    stream = StringIO()
    configure_logging(level="INFO", fmt="json", stream=stream)
    yield stream
    reset_logging()
