"""The root conftest's collection rules: every test classified, slow tests opt-in.

Each case runs ``pytest --collect-only`` (in this process: pytester) in a scratch
workspace holding the root ``conftest.py`` and ``pyproject.toml`` and one test file, so
the rules are checked as a developer meets them, without the repository's own tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SAMPLE_TESTS = """
import pytest

def test_plain():
    pass

def test_with_database(database_url):
    pass

@pytest.mark.integration
def test_declared_integration():
    pass

@pytest.mark.slow
def test_slow():
    pass
"""


@pytest.fixture
def workspace(pytester: pytest.Pytester) -> pytest.Pytester:
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, pytester.path / name)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_sample.py").write_text(SAMPLE_TESTS, encoding="utf-8")
    return pytester


def _collected(workspace: pytest.Pytester, *args: str) -> list[str]:
    """The test names ``pytest --collect-only`` selects with *args*."""
    result = workspace.runpytest_inprocess(
        "--collect-only", "-q", "-n0", "-p", "no:cacheprovider", *args
    )
    assert result.ret == 0, result.outlines
    return sorted(line.rsplit("::", 1)[1] for line in result.outlines if "::" in line)


def test_every_test_is_classified_and_slow_tests_are_opt_in(workspace: pytest.Pytester) -> None:
    # by default: no slow test
    assert _collected(workspace) == [
        "test_declared_integration",
        "test_plain",
        "test_with_database",
    ]
    # naming the file runs everything in it, the slow test included
    everything = _collected(workspace, "tests/test_sample.py")
    assert everything == [
        "test_declared_integration",
        "test_plain",
        "test_slow",
        "test_with_database",
    ]
    # CI's two steps: a database fixture makes a test integration, every other test is
    # unit, and together the steps select every test once
    integration = _collected(workspace, "--run-slow", "-m", "integration")
    assert integration == ["test_declared_integration", "test_with_database"]
    unit = _collected(workspace, "--run-slow", "-m", "unit")
    assert unit == ["test_plain", "test_slow"]
    assert sorted(integration + unit) == everything
