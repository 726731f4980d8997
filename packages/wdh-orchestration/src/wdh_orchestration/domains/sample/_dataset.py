"""The CSV shipped with the sample domain."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["sample_csv_path"]


def sample_csv_path() -> Path:
    """Absolute path of the sample CSV shipped inside this package (20 rows, 3 invalid).

    It is package data, so the sample job finds it from any working directory.
    """
    resource = files("wdh_orchestration.domains.sample").joinpath("data", "sample_data.csv")
    # Installed from a wheel or the workspace, the package lives on the file system,
    # so the path stays valid after the context manager exits.
    with as_file(resource) as path:
        return Path(path).resolve()
