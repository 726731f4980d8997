"""``build_platform``: every domain's definitions plus the platform's own jobs and sensors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    AssetsDefinition,
    AssetSpec,
    JobDefinition,
    LoggerDefinition,
    RetryPolicy,
    ScheduleDefinition,
    SensorDefinition,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # not exported by dagster; the type of define_asset_job's result
)

from wdh_orchestration._assets import DomainDefinitions, build_domain
from wdh_orchestration._console import one_line_console_logger
from wdh_orchestration._domain import Domain
from wdh_orchestration._replay_job import build_replay_job
from wdh_orchestration._retention import run_retention_job, run_retention_schedule
from wdh_orchestration._run_sensors import audit_run_sensors

__all__ = ["Platform", "build_platform"]


@dataclass(frozen=True, slots=True)
class Platform:
    """What ``Definitions`` needs: assets, jobs, sensors and loggers of all domains."""

    domains: dict[str, DomainDefinitions]
    assets: list[AssetsDefinition | AssetSpec]
    jobs: list[UnresolvedAssetJobDefinition | JobDefinition]
    sensors: list[SensorDefinition]
    schedules: list[ScheduleDefinition]
    loggers: dict[str, LoggerDefinition]

    def definitions_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``dagster.Definitions`` (resources not included)."""
        return {
            "assets": self.assets,
            "jobs": self.jobs,
            "sensors": self.sensors,
            "schedules": self.schedules,
            "loggers": self.loggers,
        }


def build_platform(
    domains: Sequence[Domain],
    *,
    landing_dir: Path,
    log_level: str = "INFO",
    retry_policy: RetryPolicy | None = None,
) -> Platform:
    """Build each domain (see ``build_domain``), the ``replay_rejected_rows`` job over
    all of them (see ``build_replay_job``), the audit run-status sensors over those jobs,
    the daily run-retention job, and the one-line ``console`` logger at *log_level*;
    *retry_policy* overrides every job's op retry policy.

    Raises:
        ValueError: two domains share a name or a table.
    """
    for attribute in ("name", "table"):
        values = [getattr(d, attribute) for d in domains]
        if len(set(values)) != len(values):
            msg = f"two domains share a {attribute}: {sorted(values)}"
            raise ValueError(msg)
    built = {
        d.name: build_domain(d, landing_dir=landing_dir, retry_policy=retry_policy) for d in domains
    }
    replay = build_replay_job(domains, retry_policy=retry_policy)
    jobs: list[UnresolvedAssetJobDefinition | JobDefinition] = [b.job for b in built.values()]
    jobs.append(replay)
    return Platform(
        domains=built,
        assets=[a for b in built.values() for a in (b.source, b.table)],
        jobs=[*jobs, run_retention_job],
        sensors=[b.sensor for b in built.values()] + audit_run_sensors(jobs),
        schedules=[run_retention_schedule],
        loggers={"console": one_line_console_logger(log_level)},
    )
