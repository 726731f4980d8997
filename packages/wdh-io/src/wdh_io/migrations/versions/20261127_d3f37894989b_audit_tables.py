"""Audit tables: pipeline_executions and data_quality_metrics.

Revision ID: d3f37894989b
Revises:
Create Date: 2026-11-27 04:50:00+00:00

Story 1.7 schema, with time stamps as ``timestamptz`` (an instant, whatever the session
time zone), a CHECK on ``status``, named indexes on status, started_at and
pipeline_name, a named foreign key, and one metric value per (run, domain, name).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "d3f37894989b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create pipeline_executions and data_quality_metrics with their indexes."""
    op.create_table(
        "pipeline_executions",
        sa.Column("execution_id", sa.String(100), nullable=False),
        sa.Column("pipeline_name", sa.String(100), nullable=False),
        sa.Column(
            "started_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("completed_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("input_file_path", sa.Text(), nullable=True),
        sa.Column("rows_input", sa.Integer(), nullable=True),
        sa.Column("rows_output", sa.Integer(), nullable=True),
        sa.Column("rows_failed", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_pipeline_executions")),
        sa.CheckConstraint(
            "status IN ('running', 'success', 'failed')", name=op.f("ck_pipeline_executions_status")
        ),
    )
    op.create_index(op.f("ix_pipeline_executions_status"), "pipeline_executions", ["status"])
    op.create_index(
        op.f("ix_pipeline_executions_started_at"), "pipeline_executions", ["started_at"]
    )
    op.create_index(
        op.f("ix_pipeline_executions_pipeline_name"), "pipeline_executions", ["pipeline_name"]
    )

    op.create_table(
        "data_quality_metrics",
        sa.Column("metric_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(100), nullable=False),
        sa.Column("domain", sa.String(100), nullable=False),
        sa.Column("metric_name", sa.String(100), nullable=False),
        sa.Column("metric_value", sa.Numeric(), nullable=True),
        sa.Column(
            "recorded_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("metric_id", name=op.f("pk_data_quality_metrics")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_executions.execution_id"],
            name=op.f("fk_data_quality_metrics_execution_id_pipeline_executions"),
        ),
        # Leads with execution_id, so it also serves the foreign key's lookups.
        sa.UniqueConstraint(
            "execution_id",
            "domain",
            "metric_name",
            name=op.f("uq_data_quality_metrics_execution_id_domain_metric_name"),
        ),
    )


def downgrade() -> None:
    """Drop both tables (metrics first: they reference the executions)."""
    op.drop_table("data_quality_metrics")
    op.drop_index(op.f("ix_pipeline_executions_pipeline_name"), table_name="pipeline_executions")
    op.drop_index(op.f("ix_pipeline_executions_started_at"), table_name="pipeline_executions")
    op.drop_index(op.f("ix_pipeline_executions_status"), table_name="pipeline_executions")
    op.drop_table("pipeline_executions")
