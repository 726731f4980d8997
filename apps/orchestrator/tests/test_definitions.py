"""The composition root builds the resources of each environment from the settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from wdh_config import Settings
from wdh_logging import reset_logging
from wdh_orchestration import WarehouseResource
from wdh_orchestrator.definitions import build_definitions, build_resources

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("environment", "url"),
    [
        ("dev", None),
        ("staging", "postgresql+psycopg2://u:p@db/wdh"),
        ("prod", "postgresql://u:p@db/wdh"),
    ],
)
def test_every_environment_gets_a_warehouse_sized_by_its_settings(
    environment: str, url: str | None
) -> None:
    settings = Settings(
        environment=environment, database_url=url, db_pool_size=4, db_batch_size=500
    )
    resources = build_resources(settings)
    warehouse = resources["warehouse"]
    assert isinstance(warehouse, WarehouseResource)
    assert (warehouse.pool_size, warehouse.batch_size) == (4, 500)
    assert warehouse.database_url is None  # resolved in the run, never stored in Dagster


def test_build_definitions_serves_every_domain(tmp_path: Path) -> None:
    try:
        defs = build_definitions(
            Settings(environment="dev", log_format="pretty", landing_dir=tmp_path)
        )
    finally:
        reset_logging()  # build_definitions configured this process's logging
    assert defs.resolve_job_def("sample_pipeline_job").name == "sample_pipeline_job"
    sensors = {s.name for s in defs.sensors or []}
    assert sensors == {"sample_landing_sensor", "audit_failed_runs", "audit_cancelled_runs"}
    source = defs.resolve_assets_def("sample_data")
    assert source.check_keys  # the platform's checks are on the table asset


def test_invalid_settings_still_load_the_code_location(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wdh_config import get_settings
    from wdh_orchestrator.definitions import load_settings

    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        settings = load_settings()
    finally:
        get_settings.cache_clear()
    assert settings.environment == "dev"  # the defaults; runs fail with the reason
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        "WorkDataHub: invalid settings: DATABASE_URL is required when ENVIRONMENT=prod "
        "(only dev may omit it to use the embedded database)"
    )
