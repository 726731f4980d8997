"""The landing sensor of a domain: one run per new file, keyed by the file's content.

Each evaluation lists the landing directory's files matching the domain's pattern and
hashes (SHA-256) those it has not seen with the same size and modification time (the
cursor remembers them). Every file becomes a ``RunRequest`` whose run key is
``<domain>:<sha256>``: Dagster never launches two runs with one run key from a sensor,
so the same file landing twice -- copied again, or under another name -- is one run.
With ``per_file`` partitioning the file's name is added as a partition and the run
materializes that partition; otherwise the run's config names the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final

from dagster import (
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,  # not exported by dagster; the type of define_asset_job's result
)

from wdh_orchestration._domain import Domain

__all__ = ["file_sha256", "landing_sensor"]

_CHUNK: Final = 1 << 20
#: ``WDH_SENSOR_INTERVAL_S``: when set, the minimum interval in seconds of every sensor of
#: the platform (this one and the run-status sensors), in place of their own defaults --
#: tests that drive ``dagster dev`` set it low so they need not wait out a whole interval.
_SENSOR_INTERVAL_ENV: Final = "WDH_SENSOR_INTERVAL_S"


def _sensor_interval_s(default: int) -> int:
    """``WDH_SENSOR_INTERVAL_S`` as a whole number of seconds (at least 1), or *default*."""
    raw = os.environ.get(_SENSOR_INTERVAL_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(
            f"{_SENSOR_INTERVAL_ENV} must be a whole number of seconds, at least 1: got {raw!r}"
        )
    return int(raw)


_INTERVAL_S: Final = _sensor_interval_s(15)


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of *path*'s content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def landing_sensor(
    domain: Domain,
    *,
    job: UnresolvedAssetJobDefinition,
    partitions: DynamicPartitionsDefinition | None,
    landing_dir: Path,
) -> SensorDefinition:
    """``<name>_landing_sensor``: runs *job* once per new file of *domain* in *landing_dir*.

    It is on by default (``dagster dev`` starts the daemon that runs it); a missing
    landing directory is not an error, just nothing to do.
    """

    @sensor(
        name=f"{domain.name}_landing_sensor",
        job=job,
        minimum_interval_seconds=_INTERVAL_S,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"One run per new {domain.file_pattern} file in {landing_dir}",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests: list[RunRequest] = []
        new_keys: list[str] = []
        files = sorted(landing_dir.glob(domain.file_pattern)) if landing_dir.is_dir() else []
        for path in files:
            if not path.is_file():
                continue
            stat = path.stat()
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
            if seen.get(path.name, "").startswith(f"{signature}:"):
                continue
            digest = file_sha256(path)
            seen[path.name] = f"{signature}:{digest}"
            requests.append(_request(domain, path, digest, partitioned=partitions is not None))
            if partitions is not None and not context.instance.has_dynamic_partition(
                str(partitions.name), path.name
            ):
                new_keys.append(path.name)
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=(
                [partitions.build_add_request(new_keys)] if partitions and new_keys else []
            ),
            cursor=json.dumps(seen, sort_keys=True),
        )

    return _sensor


def _request(domain: Domain, path: Path, digest: str, *, partitioned: bool) -> RunRequest:
    tags = {"wdh/file": path.name, "wdh/file_sha256": digest}
    run_key = f"{domain.name}:{digest}"
    if partitioned:
        return RunRequest(run_key=run_key, partition_key=path.name, tags=tags)
    op = domain.table if domain.schema == "public" else f"{domain.schema}__{domain.table}"
    config: dict[str, Any] = {"ops": {op: {"config": {"path": str(path)}}}}
    return RunRequest(run_key=run_key, run_config=config, tags=tags)
