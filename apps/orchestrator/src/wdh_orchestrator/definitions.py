"""The Dagster code location of WorkDataHub: the one place where the platform is assembled.

``dagster dev`` (``[tool.dagster]`` in this app's ``pyproject.toml``), ``dagster job
execute -m wdh_orchestrator.definitions`` and every run worker import this module. On
import it

1. reads the settings (``wdh_config.get_settings()``: environment variables and ``.env``),
2. configures logging once for the process (structlog through stdlib logging, so that
   Dagster's managed python loggers put the events in each run's event log), and
3. builds the resources for the settings' environment and the ``Definitions``.

Nothing here touches a database: the warehouse resource opens its engine when a run
starts.
"""

from __future__ import annotations

from typing import Any

from dagster import Definitions

from wdh_config import Settings, get_settings
from wdh_logging import configure_logging
from wdh_orchestration import SCHEDULES, SENSORS, WarehouseResource, sample_pipeline_job

__all__ = ["build_definitions", "build_resources", "defs"]


def build_resources(settings: Settings) -> dict[str, Any]:
    """The resources of *settings*' environment, by resource key.

    ``warehouse``: in ``dev``, the database of ``DATABASE_URL`` or, without one, the
    embedded PostgreSQL under ``./.wdh/pgdata`` (started and migrated by the first run);
    in ``staging`` and ``prod``, the database of ``DATABASE_URL`` (which ``Settings``
    requires there). The URL itself is resolved inside each run, never stored in
    Dagster's configuration.
    """
    return {"warehouse": WarehouseResource.from_settings(settings)}


def build_definitions(settings: Settings) -> Definitions:
    """Configure this process's logging from *settings* and assemble the definitions."""
    configure_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        to_file=settings.log_to_file,
        file_dir=settings.log_file_dir,
    )
    return Definitions(
        jobs=[sample_pipeline_job],
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources=build_resources(settings),
    )


defs = build_definitions(get_settings())
