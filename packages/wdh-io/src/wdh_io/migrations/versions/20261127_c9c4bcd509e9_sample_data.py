"""sample_data: the target table of the sample job.

Revision ID: c9c4bcd509e9
Revises: d3f37894989b
Create Date: 2026-11-27 04:51:00+00:00

``record_id`` is the primary key the loader upserts on. The table carries no
``execution_id``: which run wrote a row is the audit tables' business, so the sample job
can reload the same records idempotently.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "c9c4bcd509e9"
down_revision: str | Sequence[str] | None = "d3f37894989b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create sample_data."""
    op.create_table(
        "sample_data",
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("transaction_date", sa.Date(), nullable=False),
        sa.Column("region", sa.String(50), nullable=True),
        sa.Column(
            "loaded_at",
            postgresql.TIMESTAMP(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_sample_data")),
    )


def downgrade() -> None:
    """Drop sample_data."""
    op.drop_table("sample_data")
