"""Fixtures of the code-location tests: a migrated database and settings pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from wdh_config import get_settings

PLANTED_PASSWORD = "s3cr3t-planted"  # pragma: allowlist secret (trust auth ignores it)


@pytest.fixture
def migrated_url(migrated_database_url: URL) -> URL:
    """This test's own database, cloned from the session's template migrated to head
    with the packaged migrations (the root conftest's ``migrated_database_url``)."""
    return migrated_database_url


@pytest.fixture
def staging_env(migrated_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    """``ENVIRONMENT=staging`` and ``DATABASE_URL`` = this test's database, with a planted
    password, as the settings of a deployed environment would be."""
    url = migrated_url.set(password=PLANTED_PASSWORD)
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()
