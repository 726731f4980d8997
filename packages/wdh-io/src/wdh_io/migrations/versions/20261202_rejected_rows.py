"""rejected_rows: the rows a run rejected, kept with their raw values for diagnosis and replay.

Revision ID: 20261202_rejected_rows
Revises: c9c4bcd509e9
Create Date: 2026-12-02 14:00:00+00:00

One row per error: a rejected input row with two faulty fields has two rows here, both
carrying the row's raw values. ``input_row`` is the 0-based position of the row in the
run's input, ``file_line`` the 1-based line of the file where the record starts (they
differ by more than the header once a quoted field spans lines). A replay marks rows
resolved by setting ``resolved_by_execution_id`` and ``resolved_at`` together (CHECK
``ck_rejected_rows_resolution_pair``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "20261202_rejected_rows"
down_revision: str | Sequence[str] | None = "c9c4bcd509e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create rejected_rows with its foreign keys, checks and indexes."""
    op.create_table(
        "rejected_rows",
        sa.Column("rejected_row_id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("execution_id", sa.String(100), nullable=False),
        sa.Column("domain", sa.String(100), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("input_row", sa.BigInteger(), nullable=False),
        sa.Column("file_line", sa.BigInteger(), nullable=True),
        sa.Column("field", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(100), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("raw_values", postgresql.JSONB(), nullable=False),
        sa.Column(
            "rejected_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("resolved_by_execution_id", sa.String(100), nullable=True),
        sa.Column("resolved_at", postgresql.TIMESTAMP(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("rejected_row_id", name=op.f("pk_rejected_rows")),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_executions.execution_id"],
            name=op.f("fk_rejected_rows_execution_id_pipeline_executions"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_execution_id"],
            ["pipeline_executions.execution_id"],
            name=op.f("fk_rejected_rows_resolved_by_execution_id_pipeline_executions"),
        ),
        sa.CheckConstraint("input_row >= 0", name=op.f("ck_rejected_rows_input_row_not_negative")),
        sa.CheckConstraint("file_line >= 1", name=op.f("ck_rejected_rows_file_line_positive")),
        sa.CheckConstraint(
            "(resolved_by_execution_id IS NULL) = (resolved_at IS NULL)",
            name=op.f("ck_rejected_rows_resolution_pair"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(raw_values) = 'object'",
            name=op.f("ck_rejected_rows_raw_values_object"),
        ),
    )
    # Listing a run's rows in input order, and the foreign key's lookups.
    op.create_index(
        op.f("ix_rejected_rows_execution_id_input_row"),
        "rejected_rows",
        ["execution_id", "input_row"],
    )
    op.create_index(
        op.f("ix_rejected_rows_resolved_by_execution_id"),
        "rejected_rows",
        ["resolved_by_execution_id"],
    )


def downgrade() -> None:
    """Drop rejected_rows (its indexes and constraints go with it)."""
    op.drop_index(op.f("ix_rejected_rows_resolved_by_execution_id"), table_name="rejected_rows")
    op.drop_index(op.f("ix_rejected_rows_execution_id_input_row"), table_name="rejected_rows")
    op.drop_table("rejected_rows")
