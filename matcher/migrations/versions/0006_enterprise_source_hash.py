"""enterprises.source_hash: the import row that last wrote a profile (re-imports skip unchanged rows)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # nullable, no default: existing rows get NULL (never skipped) until an import writes or confirms them
    op.add_column("enterprises", sa.Column("source_hash", sa.String(32), nullable=True))  # no table copy
    op.create_index("ix_enterprises_source_hash", "enterprises", ["source_hash"])


def downgrade() -> None:
    op.drop_index("ix_enterprises_source_hash", table_name="enterprises")
    # plain ALTER (SQLite >= 3.35, PostgreSQL): a batch table copy would lose 0005's expression index
    op.execute("ALTER TABLE enterprises DROP COLUMN source_hash")
