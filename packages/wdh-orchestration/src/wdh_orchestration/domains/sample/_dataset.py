"""Where the sample rows come from and where they go."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path
from typing import Final

__all__ = [
    "SAMPLE_DOMAIN",
    "SAMPLE_KEYS",
    "SAMPLE_REQUIRED_COLUMNS",
    "SAMPLE_SCHEMA",
    "SAMPLE_TABLE",
    "sample_csv_path",
]

SAMPLE_DOMAIN: Final = "sample"
"""Domain name written to ``data_quality_metrics.domain`` and shown in row errors."""

SAMPLE_SCHEMA: Final = "public"
SAMPLE_TABLE: Final = "sample_data"
SAMPLE_KEYS: Final[tuple[str, ...]] = ("record_id",)
"""Primary key of ``sample_data``: the loader upserts on it, so reloading a file is idempotent."""

SAMPLE_REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "record_id",
    "customer_name",
    "amount",
    "transaction_date",
)
"""Columns a sample file must have; ``email`` and ``region`` may be absent."""


def sample_csv_path() -> Path:
    """Absolute path of the sample CSV shipped inside this package (20 rows, 3 invalid).

    It is package data, so the sample job finds it from any working directory.
    """
    resource = files("wdh_orchestration.domains.sample").joinpath("data", "sample_data.csv")
    # Installed from a wheel or the workspace, the package lives on the file system,
    # so the path stays valid after the context manager exits.
    with as_file(resource) as path:
        return Path(path).resolve()
