"""The error budget of a streamed load, judged on the whole file before COMMIT.

A load streams chunk by chunk inside one transaction; after each chunk it records how
many input rows the chunk had and how many of them were rejected. Before COMMIT,
:meth:`RejectionBudget.check` fails the load when the rejected fraction of the whole
input is over the domain's ``error_threshold`` -- the same rule as
``wdh_domain``'s ``PipelineConfig.error_threshold`` (a fraction; over means strictly
greater), applied to the file rather than to one chunk, so a bad last chunk counts as
much as a bad first one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wdh_io.errors import DataValidationError

__all__ = ["ErrorBudgetExceededError", "RejectionBudget"]


class ErrorBudgetExceededError(DataValidationError):
    """More of the input was rejected than the error threshold allows.

    ``rate`` and ``threshold`` are fractions; ``rows`` and ``rejected`` input rows.
    """

    def __init__(
        self, *, rate: float, threshold: float, rows: int, rejected: int, table: str | None
    ) -> None:
        self.rate = rate
        self.threshold = threshold
        self.rows = rows
        self.rejected = rejected
        super().__init__(
            f"[ERROR_THRESHOLD_EXCEEDED] rejected row rate {rate:.2%} ({rejected:,} of "
            f"{rows:,} input rows) exceeds error_threshold {threshold:.2%}; nothing was "
            "committed",
            table=table,
        )


@dataclass(slots=True)
class RejectionBudget:
    """Counts input and rejected rows across chunks; judges them against *threshold*.

    Example::

        budget = RejectionBudget(threshold=0.01, table="sample_data")
        with loader.transaction() as tx:
            for chunk in stream_csv(path):
                valid, rejected = validate(chunk)
                tx.load_dataframe(valid, "sample_data")
                write_rejected_rows(tx.connection, rejected, ...)
                budget.record(rows=len(chunk), rejected=len(chunk) - len(valid))
            budget.check()  # raises inside the block: the transaction rolls back
    """

    threshold: float
    table: str | None = None
    rows: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        threshold: object = self.threshold
        if not (isinstance(threshold, int | float) and math.isfinite(threshold)) or not (
            0.0 <= threshold <= 1.0
        ):
            raise ValueError(f"threshold must be a fraction between 0 and 1, got {threshold!r}")

    def record(self, *, rows: int, rejected: int) -> None:
        """Add a chunk of *rows* input rows, *rejected* of which were rejected."""
        if rows < 0 or not 0 <= rejected <= rows:
            raise ValueError(
                f"a chunk has 0 <= rejected <= rows, got rows={rows}, rejected={rejected}"
            )
        self.rows += rows
        self.rejected += rejected

    @property
    def rate(self) -> float:
        """The rejected fraction of the rows recorded so far (0 with no rows)."""
        return self.rejected / self.rows if self.rows else 0.0

    @property
    def exceeded(self) -> bool:
        """Whether the rate so far is over the threshold."""
        return self.rate > self.threshold

    def check(self) -> None:
        """Raise :class:`ErrorBudgetExceededError` when the rate is over the threshold."""
        if self.exceeded:
            raise ErrorBudgetExceededError(
                rate=self.rate,
                threshold=self.threshold,
                rows=self.rows,
                rejected=self.rejected,
                table=self.table,
            )
