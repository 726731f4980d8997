"""``Domain``: everything the platform needs to know about a data domain, declared once.

From one declaration the platform builds the domain's validation pipeline, its source
and table assets, their asset checks, its job and its landing sensor (``build_domain``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import Connection

__all__ = ["CheckOutcome", "Domain", "DomainCheck", "LoadedFile", "Partitioning"]

Partitioning = Literal["per_file", "none"]
"""``per_file``: one dynamic partition per landed file (its name); ``none``: unpartitioned."""


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """What one materialization of a domain's table did; what checks look at.

    The file's rows are streamed, not kept: a check reads the loaded rows from the table
    through its connection (the load's own transaction, where they are visible).
    ``rows_unchanged``: valid rows whose table row already held the same data (not
    written)."""

    domain: Domain
    path: str
    rows_read: int
    rows_valid: int
    rows_failed: int
    rows_inserted: int
    rows_updated: int
    rows_unchanged: int

    @property
    def failure_rate(self) -> float:
        """Failed rows over rows read (0.0 for an empty file)."""
        return self.rows_failed / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A check's verdict: passed or not, a one-line description and the measured value
    (stored in ``data_quality_metrics`` as ``check.<name>.value``)."""

    passed: bool
    description: str
    value: float | None = None


@dataclass(frozen=True, slots=True)
class DomainCheck:
    """A domain's own asset check, evaluated in the load's transaction after the rows are
    written (so *evaluate* sees them; it must only read). ``blocking``: a failed check
    rolls the load back and fails the run; otherwise it is reported and the rows stay."""

    name: str
    description: str
    evaluate: Callable[[Connection, LoadedFile], CheckOutcome]
    blocking: bool = False


@dataclass(frozen=True, slots=True)
class Domain:
    """One data domain: what a valid row is, where rows land, how files arrive.

    Attributes:
        name: the domain's name (``data_quality_metrics.domain``, asset group, job
            ``<name>_pipeline_job``, run tag ``domain``).
        model: pydantic model of one valid row; its required fields are the columns a
            file must have, and it validates every row.
        table: target table (it must exist: create it with an Alembic revision).
        keys: the table's upsert keys; reloading a file updates rows, never duplicates.
        file_pattern: glob of the domain's files in the landing directory.
        schema: the table's schema.
        max_failure_rate: the share of invalid rows a file may have and still load (its
            valid rows); above it nothing is loaded and the run fails.
        partitioning: ``per_file`` (one partition per landed file) or ``none``.
        default_file: the file a run reads when it names none and has no partition (the
            sample ships one); ``None``: such a run fails with a message saying so.
        encoding: text encoding of the files; ``None`` detects it (UTF-8, BOM, GB18030).
        checks: the domain's own checks, besides the platform's three.
        description: shown on the table asset in the UI.
    """

    name: str
    model: type[BaseModel]
    table: str
    keys: tuple[str, ...]
    file_pattern: str
    schema: str = "public"
    max_failure_rate: float = 0.25
    partitioning: Partitioning = "per_file"
    default_file: Path | None = None
    encoding: str | None = None
    checks: tuple[DomainCheck, ...] = field(default=())
    description: str = ""

    def __post_init__(self) -> None:
        if not self.keys:
            msg = f"domain {self.name!r}: keys must name at least one column"
            raise ValueError(msg)
        if not 0.0 <= self.max_failure_rate <= 1.0:
            msg = f"domain {self.name!r}: max_failure_rate must be between 0 and 1"
            raise ValueError(msg)
        missing = [key for key in self.keys if key not in self.model.model_fields]
        if missing:
            msg = f"domain {self.name!r}: keys {missing} are not fields of {self.model.__name__}"
            raise ValueError(msg)

    @property
    def job_name(self) -> str:
        """``<name>_pipeline_job``."""
        return f"{self.name}_pipeline_job"

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The model's required fields: the columns every file must have."""
        return tuple(name for name, f in self.model.model_fields.items() if f.is_required())
