"""enterprises and regions

Revision ID: 0001
Revises:
Create Date: 2024-11-23

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "enterprises",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("name", sa.String(400), nullable=False),
        sa.Column("normalized_name", sa.String(400), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=True),
        sa.Column("province", sa.String(64), nullable=True),
        sa.Column("city", sa.String(64), nullable=True),
        sa.Column("stock_code", sa.String(32), nullable=True),
        sa.Column("aliases", sa.Text(), nullable=False, server_default=""),
        sa.Column("profile", _JSON, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("embedded_hash", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enterprises_name_province", "enterprises", ["normalized_name", "province"])
    op.create_index("ix_enterprises_credit_code", "enterprises", ["credit_code"])
    op.create_index("ix_enterprises_tenant", "enterprises", ["tenant"])
    op.create_index("ix_enterprises_stock_code", "enterprises", ["stock_code"])
    op.create_index(
        "uq_enterprises_tenant_credit_code", "enterprises", ["tenant", "credit_code"], unique=True
    )
    op.create_index(
        "uq_enterprises_shared_credit_code",
        "enterprises",
        ["credit_code"],
        unique=True,
        sqlite_where=sa.text("tenant IS NULL"),
        postgresql_where=sa.text("tenant IS NULL"),
    )

    op.create_table(
        "regions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=True),
        sa.Column("profile", _JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_regions_id", "regions", ["id"])
    op.create_index("ix_regions_tenant", "regions", ["tenant"])


def downgrade() -> None:
    op.drop_table("regions")
    op.drop_table("enterprises")
