"""``dagster_run_retention`` deletes finished runs older than ``keep_days``, and only those."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus, Definitions

from wdh_orchestration import WarehouseResource, build_platform
from wdh_orchestration.domains.sample import SAMPLE

pytestmark = pytest.mark.unit


def test_old_finished_runs_are_deleted_and_the_rest_kept(
    instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wdh_orchestration._retention as retention

    platform = build_platform([SAMPLE], landing_dir=Path("unused"))
    defs = Definitions(
        **platform.definitions_kwargs(), resources={"warehouse": WarehouseResource()}
    )
    sample = defs.resolve_job_def("sample_pipeline_job")
    purge = defs.resolve_job_def("dagster_run_retention")
    finished = instance.create_run_for_job(sample, status=DagsterRunStatus.SUCCESS)
    running = instance.create_run_for_job(sample, status=DagsterRunStatus.STARTED)

    kept = purge.execute_in_process(instance=instance)  # nothing is 90 days old
    assert kept.output_for_node("purge_old_runs") == 0

    class _Later(datetime):
        @classmethod
        def now(cls, tz: object = None) -> _Later:
            return cls.fromtimestamp(datetime.now(UTC).timestamp(), UTC) + timedelta(days=3)

    monkeypatch.setattr(retention, "datetime", _Later)
    config = {"ops": {"purge_old_runs": {"config": {"keep_days": 2}}}}
    purged = purge.execute_in_process(instance=instance, run_config=config)

    assert purged.output_for_node("purge_old_runs") == 2  # the finished run and the first purge
    remaining = {run.run_id for run in instance.get_runs()}
    assert finished.run_id not in remaining
    assert kept.run_id not in remaining
    assert running.run_id in remaining  # in progress: never deleted
    assert purged.run_id in remaining  # itself: never deleted
    assert platform.schedules[0].cron_schedule == "17 3 * * *"
