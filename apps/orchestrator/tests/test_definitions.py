"""The composition root builds the resources of each environment from the settings."""

from __future__ import annotations

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


def test_build_definitions_serves_the_sample_job() -> None:
    try:
        defs = build_definitions(Settings(environment="dev", log_format="pretty"))
    finally:
        reset_logging()  # build_definitions configured this process's logging
    assert defs.resolve_job_def("sample_pipeline_job").name == "sample_pipeline_job"
