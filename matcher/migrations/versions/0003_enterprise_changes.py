"""enterprise change log (the feed other processes follow)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "enterprise_changes",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("enterprise_id", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("origin", sa.String(64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enterprise_changes_at", "enterprise_changes", ["at"])


def downgrade() -> None:
    op.drop_table("enterprise_changes")
