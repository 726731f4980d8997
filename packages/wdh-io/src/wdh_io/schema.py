"""The warehouse schema as one SQLAlchemy ``MetaData``: the model the migrations must match.

The Alembic revisions under ``wdh_io/migrations/versions`` are the source of truth for
the database; this module describes the same tables for the code that queries them
(the audit recorder) and for the drift test, which compares a freshly migrated
database against :data:`metadata` with Alembic's autogenerate. A change to a table
therefore needs both a new revision and an edit here, or the drift test fails.

Constraint and index names come from :data:`NAMING_CONVENTION`, so every object has a
predictable name that a later migration can drop or alter.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TIMESTAMP

__all__ = [
    "EXECUTION_STATUSES",
    "NAMING_CONVENTION",
    "ExecutionStatus",
    "data_quality_metrics",
    "metadata",
    "pipeline_executions",
    "rejected_rows",
    "sample_data",
]

NAMING_CONVENTION: Final[dict[str, str]] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: A value of ``pipeline_executions.status``: ``running`` until the run completes.
ExecutionStatus = Literal["running", "success", "failed"]

#: The values ``pipeline_executions.status`` may take. The CHECK constraint
#: ``ck_pipeline_executions_status`` below is built from this tuple; the audit revision
#: spells out the same list (revisions are frozen history), and a test compares the
#: constraint of a migrated database with it.
EXECUTION_STATUSES: Final[tuple[ExecutionStatus, ...]] = get_args(ExecutionStatus)

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sql_list(values: tuple[str, ...]) -> str:
    """``'a', 'b'``: SQL string literals (quotes doubled) for an ``IN (…)`` list."""
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


_TIMESTAMPTZ = TIMESTAMP(timezone=True)

pipeline_executions = Table(
    "pipeline_executions",
    metadata,
    Column("execution_id", String(100), primary_key=True),
    Column("pipeline_name", String(100), nullable=False),
    Column("started_at", _TIMESTAMPTZ, nullable=False, server_default=func.now()),
    Column("completed_at", _TIMESTAMPTZ, nullable=True),
    Column("status", String(20), nullable=False),
    Column("input_file_path", Text, nullable=True),
    Column("rows_input", Integer, nullable=True),
    Column("rows_output", Integer, nullable=True),
    Column("rows_failed", Integer, nullable=True),
    # BIGINT, not the specification's INT: a run left "running" for 25 days would
    # overflow a 32-bit millisecond count and make the final audit update fail.
    Column("duration_ms", BigInteger, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("created_at", _TIMESTAMPTZ, nullable=False, server_default=func.now()),
    CheckConstraint(f"status IN ({_sql_list(EXECUTION_STATUSES)})", name="status"),
    Index(None, "status"),
    Index(None, "started_at"),
    Index(None, "pipeline_name"),
)

data_quality_metrics = Table(
    "data_quality_metrics",
    metadata,
    Column("metric_id", Integer, primary_key=True, autoincrement=True),
    Column(
        "execution_id",
        String(100),
        ForeignKey(pipeline_executions.c.execution_id),
        nullable=False,
    ),
    Column("domain", String(100), nullable=False),
    Column("metric_name", String(100), nullable=False),
    Column("metric_value", Numeric, nullable=True),
    Column("recorded_at", _TIMESTAMPTZ, nullable=False, server_default=func.now()),
    # One value per (run, domain, metric): recording a metric again replaces it, so a
    # retried step cannot double-count.
    UniqueConstraint("execution_id", "domain", "metric_name"),
)

sample_data = Table(
    "sample_data",
    metadata,
    Column("record_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_name", String(100), nullable=False),
    Column("email", String(255), nullable=True),
    Column("amount", Numeric(18, 2), nullable=False),
    Column("transaction_date", Date, nullable=False),
    Column("region", String(50), nullable=True),
    Column("loaded_at", _TIMESTAMPTZ, nullable=False, server_default=func.now()),
)

rejected_rows = Table(
    "rejected_rows",
    metadata,
    Column("rejected_row_id", BigInteger, Identity(always=False), primary_key=True),
    Column(
        "execution_id",
        String(100),
        ForeignKey(pipeline_executions.c.execution_id),
        nullable=False,
    ),
    Column("domain", String(100), nullable=False),
    Column("source_file", Text, nullable=True),
    # 0-based position of the row in the run's input; file_line is the 1-based line of
    # the file where its record starts (more than input_row + 2 once a quoted field
    # spans lines).
    Column("input_row", BigInteger, nullable=False),
    Column("file_line", BigInteger, nullable=True),
    Column("field", Text, nullable=True),
    Column("error_code", String(100), nullable=False),
    Column("message", Text, nullable=False),
    # The row as it was read, encoded by wdh_io.quarantine (tagged values for what JSON
    # cannot carry exactly: NaN, Decimal, dates...).
    Column("raw_values", JSONB, nullable=False),
    Column("rejected_at", _TIMESTAMPTZ, nullable=False, server_default=func.now()),
    Column(
        "resolved_by_execution_id",
        String(100),
        ForeignKey(pipeline_executions.c.execution_id),
        nullable=True,
    ),
    Column("resolved_at", _TIMESTAMPTZ, nullable=True),
    CheckConstraint("input_row >= 0", name="input_row_not_negative"),
    CheckConstraint("file_line >= 1", name="file_line_positive"),
    # Resolved means both: which run resolved the row, and when.
    CheckConstraint(
        "(resolved_by_execution_id IS NULL) = (resolved_at IS NULL)", name="resolution_pair"
    ),
    CheckConstraint("jsonb_typeof(raw_values) = 'object'", name="raw_values_object"),
    Index(None, "execution_id", "input_row"),
    Index(None, "resolved_by_execution_id"),
)
