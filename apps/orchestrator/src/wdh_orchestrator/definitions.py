"""The Dagster code location of WorkDataHub: the one place where the platform is assembled.

``dagster dev`` (``[tool.dagster]`` in this app's ``pyproject.toml``), ``dagster job
execute -m wdh_orchestrator.definitions`` and every run worker import this module. On
import it

1. reads the settings (``wdh_config.get_settings()``: environment variables and ``.env``),
2. configures logging once for the process (structlog through stdlib logging, so that
   Dagster's managed python loggers put the events in each run's event log), and
3. builds every domain of ``wdh_orchestration.domains.DOMAINS`` (assets, checks, jobs,
   sensors), the resources for the settings' environment and the ``Definitions``.

Invalid settings do not stop the code location from loading: it is served with default
logging and every run fails at once with one line naming the setting to fix (the
warehouse reads the settings again when a run starts). Nothing here touches a database.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from dagster import Definitions
from pydantic import ValidationError

from wdh_config import Settings, get_settings
from wdh_logging import configure_logging
from wdh_orchestration import WarehouseResource, build_platform, describe_failure
from wdh_orchestration.domains import DOMAINS

__all__ = ["build_definitions", "build_resources", "defs", "load_settings"]


def build_resources(settings: Settings) -> dict[str, Any]:
    """The resources of *settings*' environment, by resource key.

    ``warehouse``: in ``dev``, the database of ``DATABASE_URL`` or, without one, the
    embedded PostgreSQL under ``./.wdh/pgdata`` (started and migrated by the first run);
    in ``staging`` and ``prod``, the database of ``DATABASE_URL`` (which ``Settings``
    requires there). The URL itself is resolved inside each run, never stored in
    Dagster's configuration.
    """
    return {"warehouse": WarehouseResource.from_settings(settings)}


def load_settings() -> Settings:
    """The settings, or -- when they are invalid -- the defaults, after one line on stderr.

    The code location must load even with bad settings, so that the UI can show why runs
    fail; the runs themselves read the settings again and fail with the same line.
    """
    try:
        return get_settings()
    except ValidationError as exc:
        sys.stderr.write(f"WorkDataHub: {describe_failure(exc)}\n")
        return Settings.model_construct()


def build_definitions(settings: Settings) -> Definitions:
    """Configure this process's logging from *settings* and assemble the definitions."""
    configure_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        to_file=settings.log_to_file,
        file_dir=settings.log_file_dir,
    )
    # Dagster migrates its SQLite storage whenever a process opens it (every sensor tick
    # of the daemon): not news for the console.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    platform = build_platform(
        DOMAINS, landing_dir=settings.landing_dir, log_level=settings.log_level
    )
    return Definitions(**platform.definitions_kwargs(), resources=build_resources(settings))


defs = build_definitions(load_settings())
