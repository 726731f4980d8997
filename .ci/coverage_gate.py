"""Fail when a package's test coverage is below its target.

Reads the coverage data that ``pytest --cov`` wrote (``.coverage``, or ``--data-file``),
prints coverage's term-missing report (files not fully covered, with their missed lines),
then one line per package with its line+branch coverage and its target, and exits with
status 1 when a package with a target is below it or was not measured at all.

The targets are ``[tool.wdh.coverage-targets]`` of the pyproject (package import name
= percent); the coverage settings (``[tool.coverage.*]``) come from the same file.

    uv run python .ci/coverage_gate.py [--data-file .coverage] [--pyproject pyproject.toml]
                                       [--xml coverage.xml]
"""

from __future__ import annotations

import argparse
import io
import sys
import tomllib
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parents[1]


def load_targets(pyproject: Path) -> dict[str, float]:
    """The per-package targets, in percent, from ``[tool.wdh.coverage-targets]``."""
    with pyproject.open("rb") as file:
        table = tomllib.load(file).get("tool", {}).get("wdh", {}).get("coverage-targets")
    if not isinstance(table, dict) or not table:
        raise SystemExit(f"{pyproject}: no [tool.wdh.coverage-targets] table")
    return {str(package): float(target) for package, target in table.items()}


def package_percent(cov: coverage.Coverage, package: str) -> float | None:
    """Coverage of one package's files in percent, or None when none was measured."""
    try:
        return float(cov.report(include=[f"*/{package}/*"], file=io.StringIO()))
    except NoDataError:
        return None


def gate(data_file: Path, pyproject: Path, xml: Path | None = None) -> list[str]:
    """Print the reports; return one line per package below (or missing) its target."""
    targets = load_targets(pyproject)
    if not data_file.is_file():
        return [f"no coverage data at {data_file}: run pytest with --cov first"]
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(pyproject))
    cov.load()
    try:
        cov.report(show_missing=True, skip_covered=True, file=sys.stdout)
    except NoDataError:
        return [f"{data_file} holds no data for the measured packages"]
    if xml is not None:
        cov.xml_report(outfile=str(xml))
        print(f"coverage XML written to {xml}")
    print("\ncoverage per package:")
    failures = []
    for package, target in targets.items():
        percent = package_percent(cov, package)
        if percent is None:
            print(f"  {package:<20}  not measured  (target {target:.0f} %)  FAIL")
            failures.append(f"{package} was not measured (target {target:.0f} %)")
        elif percent < target:
            print(f"  {package:<20} {percent:5.1f} %  (target {target:.0f} %)  FAIL")
            failures.append(f"{package} {percent:.1f} % is below its target {target:.0f} %")
        else:
            print(f"  {package:<20} {percent:5.1f} %  (target {target:.0f} %)  ok")
    source = cov.get_option("run:source")
    for package in source if isinstance(source, list) else []:
        if package not in targets and (percent := package_percent(cov, package)) is not None:
            print(f"  {package:<20} {percent:5.1f} %  (no target)")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-file", type=Path, default=Path(".coverage"))
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--xml", type=Path, default=None, help="also write a Cobertura XML")
    args = parser.parse_args(argv)
    failures = gate(args.data_file, args.pyproject, args.xml)
    for failure in failures:
        print(f"coverage gate: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
