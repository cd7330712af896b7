"""name search index: grams of names and aliases (FTS5 on SQLite, GIN on PostgreSQL), partition-by-length index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from matcher.store.name_index import SEARCH_TABLE, create_name_index, rebuild_name_index

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    create_name_index(conn)
    # a partition's rows shortest first: frequent terms are found in its first rows, and scans stop at the limit
    op.create_index(
        "ix_enterprises_partition_length",
        "enterprises",
        ["tenant", sa.text("length(normalized_name)"), "id"],
    )
    op.create_index("ix_enterprises_name", "enterprises", ["name"])
    rebuild_name_index(conn)


def downgrade() -> None:
    op.drop_index("ix_enterprises_name", table_name="enterprises")
    op.drop_index("ix_enterprises_partition_length", table_name="enterprises")
    op.get_bind().exec_driver_sql(f"DROP TABLE {SEARCH_TABLE}")
