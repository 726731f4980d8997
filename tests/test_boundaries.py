"""The dependency rules hold in practice, not only on paper.

* ``wdh-domain`` installs into an empty virtualenv on its own, every one of its modules
  imports there, and the infrastructure (SQLAlchemy, Dagster, ...) is absent.
* ``lint-imports`` really fails when a ``wdh_domain`` module imports infrastructure or a
  higher layer -- checked on a copy of the source trees, never on the real checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

# Import names that must not be importable next to a lone wdh-domain.
HEAVY = ["sqlalchemy", "dagster", "psycopg2", "alembic", "pydantic_settings", "pyarrow"]
HIGHER = ["wdh_config", "wdh_io", "wdh_orchestration", "wdh_orchestrator"]


def run(command: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run *command*; on failure raise with its whole output so the cause is visible."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {done.returncode}\n"
            f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    return done.stdout


@pytest.fixture(scope="module")
def domain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with nothing but ``packages/wdh-domain`` (and its dependencies)."""
    uv = shutil.which("uv")
    if uv is None:  # pragma: no cover - CI and .ci/run always have uv
        pytest.fail("uv is not on PATH; it is needed to build the isolated virtualenv")
    venv = tmp_path_factory.mktemp("domain-alone") / "venv"
    env = {
        key: value
        for key, value in os.environ.items()
        # the workspace's own venv must not leak into the new one
        if key not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"}
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    run([uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=ROOT, env=env)
    python = venv / "bin" / "python"
    run(
        [uv, "pip", "install", "--quiet", "--python", python, ROOT / "packages" / "wdh-domain"],
        cwd=ROOT,
        env=env,
    )
    return python


def test_wdh_domain_installs_alone_without_infrastructure(domain_venv: Path) -> None:
    probe = textwrap.dedent(
        f"""
        import importlib, importlib.util, json, pkgutil
        import wdh_domain
        modules = [m.name for m in pkgutil.walk_packages(wdh_domain.__path__, "wdh_domain.")]
        for name in modules:
            importlib.import_module(name)
        absent = {{}}
        for name in {HEAVY + HIGHER!r}:
            try:
                importlib.import_module(name)
            except ImportError:
                absent[name] = True
            else:
                absent[name] = False
        print(json.dumps({{"file": wdh_domain.__file__, "modules": modules, "absent": absent}}))
        """
    )
    report = run([domain_venv, "-c", probe], cwd=domain_venv.parent)
    import json

    result = json.loads(report)
    # the installed copy, not the workspace's editable source tree
    assert str(domain_venv.parent.parent) in result["file"]
    assert result["absent"] == dict.fromkeys(HEAVY + HIGHER, True)


def test_wdh_domain_pulls_in_only_its_declared_dependencies(domain_venv: Path) -> None:
    listing = run(
        ["uv", "pip", "list", "--format", "freeze", "--python", domain_venv], cwd=ROOT
    ).lower()
    installed = {line.split("==")[0].replace("_", "-") for line in listing.splitlines() if line}
    # wdh-logging (structlog only) is the one redaction of secrets the domain uses
    assert {"wdh-domain", "pandas", "pydantic", "structlog", "wdh-logging"} <= installed
    forbidden = {
        "sqlalchemy",
        "dagster",
        "psycopg2-binary",
        "alembic",
        "pydantic-settings",
        "pyarrow",
        "wdh-io",
        "wdh-config",
    }
    assert installed.isdisjoint(forbidden), sorted(installed & forbidden)


@pytest.fixture
def source_copy(tmp_path: Path) -> Path:
    """Every workspace package's import tree and the import contracts, copied to tmp."""
    src = tmp_path / "src"
    for package_dir in sorted([*ROOT.glob("packages/*/src/wdh_*"), *ROOT.glob("apps/*/src/wdh_*")]):
        shutil.copytree(
            package_dir, src / package_dir.name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def lint_imports(copy: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(copy / ".importlinter")],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_lint_imports_passes_on_the_unchanged_copy(source_copy: Path) -> None:
    """The control: the copy is analysed (not the installed tree) and keeps every contract."""
    done = lint_imports(source_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        ("import sqlalchemy", "sqlalchemy"),
        ("import dagster", "dagster"),
        ("from pydantic_settings import BaseSettings", "pydantic_settings"),
        ("import wdh_io", "wdh_io"),
    ],
)
def test_lint_imports_fails_when_wdh_domain_imports_infrastructure(
    source_copy: Path, statement: str, forbidden: str
) -> None:
    module = source_copy / "src" / "wdh_domain" / "_boundary_probe.py"
    module.write_text(f'"""Planted by test_boundaries."""\n\n{statement}\n', encoding="utf-8")
    done = lint_imports(source_copy)
    assert done.returncode != 0, done.stdout
    assert "wdh_domain imports no infrastructure, no configuration and no higher layer BROKEN" in (
        done.stdout
    )
    assert f"wdh_domain._boundary_probe -> {forbidden}" in done.stdout
