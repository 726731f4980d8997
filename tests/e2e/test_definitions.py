"""The code location loads, validates and wires the sample domain: source -> table asset."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions

from wdh_logging import reset_logging

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def defs() -> Iterator[Definitions]:
    """The code location's definitions, imported as Dagster imports them.

    Importing the module configures logging for the process (it is an entry point);
    that configuration is undone afterwards so later tests start from the defaults.
    """
    from wdh_orchestrator.definitions import defs as loaded

    yield loaded
    reset_logging()


def test_definitions_pass_dagster_validation(defs: Definitions) -> None:
    Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("sample_pipeline_job")
    assert {node.name for node in job.nodes} == {"sample_data"}  # one asset, the whole domain
    assert "warehouse" in defs.resources  # type: ignore[operator]


def test_the_table_asset_depends_on_its_source_files(defs: Definitions) -> None:
    graph = defs.resolve_asset_graph()
    table = graph.get(AssetKey("sample_data"))
    assert table.parent_keys == {AssetKey("sample_files")}
    assert {key.name for key in table.check_keys} == {
        "failure_rate_within_threshold",
        "upsert_keys_unique",
        "non_empty_load",
    }


def test_pyproject_points_dagster_at_the_definitions(orchestrator_app: Path) -> None:
    config = tomllib.loads((orchestrator_app / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["dagster"]["module_name"] == "wdh_orchestrator.definitions"


@pytest.mark.slow
def test_dagster_cli_validates_the_code_location(orchestrator_cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DAGSTER_HOME", "DATABASE_URL"}}
    env["ENVIRONMENT"] = "dev"
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate"],
        cwd=orchestrator_cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Validation successful" in output


def test_sensors_keep_their_own_intervals_by_default(defs: Definitions) -> None:
    if os.environ.get("WDH_SENSOR_INTERVAL_S"):
        pytest.skip("WDH_SENSOR_INTERVAL_S is set in this environment")
    intervals = {
        name: defs.resolve_sensor_def(name).minimum_interval_seconds
        for name in ("sample_landing_sensor", "audit_failed_runs", "audit_cancelled_runs")
    }
    assert intervals == {
        "sample_landing_sensor": 15,
        "audit_failed_runs": 5,
        "audit_cancelled_runs": 5,
    }


def test_the_sensor_interval_setting_takes_whole_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wdh_orchestration._landing import _sensor_interval_s

    monkeypatch.setenv("WDH_SENSOR_INTERVAL_S", " 2 ")
    assert _sensor_interval_s(15) == 2
    monkeypatch.setenv("WDH_SENSOR_INTERVAL_S", "")
    assert _sensor_interval_s(15) == 15
    for bad in ("0", "-1", "1.5", "soon"):
        monkeypatch.setenv("WDH_SENSOR_INTERVAL_S", bad)
        with pytest.raises(ValueError, match=r"^WDH_SENSOR_INTERVAL_S must be .*: got '"):
            _sensor_interval_s(15)
