"""CI's coverage gate fails below a package's target and passes at or above it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / ".ci" / "coverage_gate.py"


@pytest.fixture(scope="module")
def logging_import_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real coverage data of a run that only imports wdh_logging (its bodies never run)."""
    workdir = tmp_path_factory.mktemp("coverage")
    (workdir / "run.py").write_text("import wdh_logging\n", encoding="utf-8")
    data_file = workdir / ".coverage"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--rcfile={ROOT / 'pyproject.toml'}",
            f"--data-file={data_file}",
            str(workdir / "run.py"),
        ],
        cwd=ROOT,  # coverage records paths relative to the root, as CI's pytest does
        check=True,
        capture_output=True,
        text=True,
    )
    return data_file


def _pyproject_with_targets(tmp_path: Path, targets: dict[str, int]) -> Path:
    """The root pyproject's coverage settings with other targets."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    start = text.index("[tool.wdh.coverage-targets]")
    table = "".join(f"{name} = {value}\n" for name, value in targets.items())
    path = tmp_path / "pyproject.toml"
    path.write_text(text[:start] + "[tool.wdh.coverage-targets]\n" + table, encoding="utf-8")
    return path


def _gate(data_file: Path, pyproject: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GATE), f"--data-file={data_file}", f"--pyproject={pyproject}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_repository_sets_the_specified_targets() -> None:
    with (ROOT / "pyproject.toml").open("rb") as file:
        targets = tomllib.load(file)["tool"]["wdh"]["coverage-targets"]
    assert targets == {
        "wdh_domain": 90,
        "wdh_logging": 90,
        "wdh_config": 90,
        "wdh_io": 80,
        "wdh_orchestration": 80,
    }


def test_a_package_below_its_target_fails_the_gate(
    logging_import_only: Path, tmp_path: Path
) -> None:
    result = _gate(logging_import_only, _pyproject_with_targets(tmp_path, {"wdh_logging": 90}))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wdh_logging" in result.stderr
    assert "is below its target 90 %" in result.stderr
    assert "Missing" in result.stdout  # the term-missing report came first
    assert "_redaction.py" in result.stdout


def test_a_package_at_or_above_its_target_passes(logging_import_only: Path, tmp_path: Path) -> None:
    result = _gate(logging_import_only, _pyproject_with_targets(tmp_path, {"wdh_logging": 10}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "wdh_logging" in result.stdout
    assert "ok" in result.stdout


def test_a_package_with_a_target_and_no_data_fails(
    logging_import_only: Path, tmp_path: Path
) -> None:
    pyproject = _pyproject_with_targets(tmp_path, {"wdh_logging": 10, "wdh_domain": 90})
    result = _gate(logging_import_only, pyproject)
    assert result.returncode == 1
    assert "wdh_domain was not measured" in result.stderr


def test_missing_data_fails(tmp_path: Path) -> None:
    result = _gate(tmp_path / "absent", ROOT / "pyproject.toml")
    assert result.returncode == 1
    assert "run pytest with --cov first" in result.stderr
