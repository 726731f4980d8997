<%doc>
  The revision id is readable and never hex: "<UTC yyyymmdd_HHMMSS>_<message slug>", at
  most 32 characters (alembic_version.version_num). Alembic's own random hex id (kept in
  the file name) trips the secret scanners' entropy check about half the time.
</%doc><%
    import re as _re
    _slug = _re.sub(r"[^a-z0-9]+", "_", (message or "").lower()).strip("_") or "revision"
    readable_id = (
        up_revision if "_" in up_revision  # set by env.py's hook (autogenerate)
        else (create_date.strftime("%Y%m%d_%H%M%S") + "_" + _slug)[:32].rstrip("_")
    )
%>"""${message}

Revision ID: ${readable_id}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Write names explicitly, wrapped in ``op.f()`` (they follow
``wdh_io.schema.NAMING_CONVENTION``); do not import ``wdh_io.schema`` (a revision is
frozen, the model moves on), but update it to match; make ``downgrade()`` undo exactly
what ``upgrade()`` did. Then: ``uv run ruff check --fix . && uv run ruff format .``
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(readable_id)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
