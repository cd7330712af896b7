"""expansion signals (a firm's investment events with their sources)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(JSONB(), "postgresql")
    op.create_table(
        "signals",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("enterprise_id", sa.String(200), nullable=True),
        sa.Column("firm", sa.String(400), nullable=False),
        sa.Column("group_name", sa.String(400), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("product", sa.Text(), nullable=False),
        sa.Column("link_id", sa.String(128), nullable=True),
        sa.Column("province", sa.String(64), nullable=True),
        sa.Column("region", sa.String(200), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("sources", json_type, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_signals_enterprise", "signals", ["enterprise_id", "day"])
    op.create_index("ix_signals_tenant", "signals", ["tenant"])
    op.create_index("ix_signals_group", "signals", ["group_name"])


def downgrade() -> None:
    op.drop_table("signals")
