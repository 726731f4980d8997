"""The fresh-clone path: ``ENVIRONMENT=dev``, no ``DATABASE_URL``, no ``.env``.

The sample job, with the warehouse resource the code location builds for ``dev``, starts
the embedded PostgreSQL under ``./.wdh/pgdata`` of the working directory, migrates it
and loads the sample -- what a new user's first launch from the UI does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, Definitions

from wdh_config import get_settings
from wdh_io.database import start_embedded_database, stop_embedded_database
from wdh_orchestration import build_platform
from wdh_orchestration.domains.sample import SAMPLE
from wdh_orchestrator.definitions import build_resources

# the embedded server's start (initdb) and a Dagster run: seconds
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def fresh_clone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with nothing configured; the embedded server is released after."""
    for name in ("DATABASE_URL", "DAGSTER_HOME", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "dev")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    pgdata = tmp_path / ".wdh" / "pgdata"
    try:
        yield pgdata
    finally:
        # This process holds the server since the run started it; releasing the last
        # hold stops it, so no PostgreSQL outlives the test.
        stop_embedded_database(pgdata)
        get_settings.cache_clear()


def test_sample_job_runs_on_the_embedded_database_of_a_fresh_clone(fresh_clone: Path) -> None:
    settings = get_settings()
    assert (settings.environment, settings.database_url) == ("dev", None)
    resources: dict[str, Any] = build_resources(settings)

    platform = build_platform([SAMPLE], landing_dir=settings.landing_dir)
    job = Definitions(**platform.definitions_kwargs(), resources=resources).resolve_job_def(
        "sample_pipeline_job"
    )
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)

    assert result.success
    assert (fresh_clone / "PG_VERSION").exists()  # created in the working directory
    url = start_embedded_database(fresh_clone, migrate=False)  # the same server, reused
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            loaded = conn.execute(sa.text("SELECT count(*) FROM sample_data")).scalar_one()
            status = conn.execute(sa.text("SELECT status FROM pipeline_executions")).scalar_one()
    finally:
        engine.dispose()
    assert loaded == 17
    assert status == "success"
