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


SLOW_MODULE = """
import pytest

pytestmark = pytest.mark.slow

def test_first():
    pass

def test_second():
    pass
"""

OTHER_SLOW_MODULE = """
import pytest

@pytest.mark.slow(weight=3)  # heavier than the two tests of the other slow module
def test_alone():
    pass
"""

QUICK_MODULE = "".join(f"def test_quick_{i}():\n    pass\n\n" for i in range(12))


AS_TWO_WORKERS = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.workerinput = {"workercount": 2}  # what pytest-xdist gives each of two workers
"""


def test_slow_modules_open_the_share_of_a_worker_each(workspace: pytest.Pytester) -> None:
    # worksteal hands each worker a contiguous share of the collection (here 7 tests, then
    # 8) and it runs its share in order: each slow module must open a share of its own,
    # whole, the heaviest by weight first, rather than all of them opening the first share
    tests = workspace.path / "tests"
    (tests / "test_sample.py").unlink()
    (tests / "test_a_slow.py").write_text(SLOW_MODULE, encoding="utf-8")
    (tests / "test_b_slow.py").write_text(OTHER_SLOW_MODULE, encoding="utf-8")
    (tests / "test_quick.py").write_text(QUICK_MODULE, encoding="utf-8")
    (workspace.path / "as_two_workers.py").write_text(AS_TWO_WORKERS, encoding="utf-8")
    workspace.syspathinsert()

    result = workspace.runpytest_inprocess(
        "--collect-only",
        "-q",
        "-n0",
        "-p",
        "no:cacheprovider",
        "-p",
        "as_two_workers",
        "--run-slow",
    )

    assert result.ret == 0, result.outlines
    order = [line.rsplit("::", 1)[1] for line in result.outlines if "::" in line]
    assert len(order) == 15
    assert order[0] == "test_alone"  # the heaviest module first
    assert order[7:9] == ["test_first", "test_second"]
    assert all(name.startswith("test_quick_") for name in order[1:7] + order[9:])
