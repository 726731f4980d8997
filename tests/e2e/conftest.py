"""Fixtures of the end-to-end tests: a migrated database, the repository's paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

REPO_ROOT = Path(__file__).resolve().parents[2]
ORCHESTRATOR_APP = REPO_ROOT / "apps" / "orchestrator"


@pytest.fixture
def migrated_url(migrated_database_url: URL) -> URL:
    """This test's own database, cloned from the session's template migrated to head
    with the packaged migrations (the root conftest's ``migrated_database_url``)."""
    return migrated_database_url


@pytest.fixture
def orchestrator_app() -> Path:
    """``apps/orchestrator``: the code location a user starts ``dagster dev`` in."""
    return ORCHESTRATOR_APP


@pytest.fixture
def repo_root() -> Path:
    """The workspace root."""
    return REPO_ROOT


@pytest.fixture
def orchestrator_cwd(tmp_path: Path) -> Path:
    """A scratch copy of what ``dagster dev`` reads from ``apps/orchestrator``: its
    ``pyproject.toml`` (``[tool.dagster]``) and ``dagster.yaml`` (instance settings).

    Dagster commands run here behave as in the app directory but leave their state
    (``.wdh/dagster``, temporary homes) in ``tmp_path``, not in the repository.
    """
    cwd = tmp_path / "orchestrator"
    cwd.mkdir()
    for name in ("pyproject.toml", "dagster.yaml"):
        shutil.copy2(ORCHESTRATOR_APP / name, cwd / name)
    return cwd
