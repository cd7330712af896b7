"""SQLAlchemy 2.x table models of the store (schema owned by the Alembic revisions in ``matcher/migrations``).

Rows with ``tenant IS NULL`` are the shared corpus; a tenant's private rows carry its name. Each row keeps the full
pydantic profile as JSON (``profile``) next to the few columns the store filters and deduplicates on.

The models describe the schema for queries; they never create it (``Base.metadata.create_all`` is not used) — the
migrations do, so a later revision can add tables (leads, feedback, api keys) without touching existing data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "EnterpriseChangeRow", "EnterpriseRow", "RegionRow", "JSON_TYPE"]

JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every store table."""


class EnterpriseRow(Base):
    """One enterprise profile (shared or tenant-private)."""

    __tablename__ = "enterprises"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str] = mapped_column(String(400))
    normalized_name: Mapped[str] = mapped_column(String(400))
    credit_code: Mapped[str | None] = mapped_column(String(18), nullable=True)
    province: Mapped[str | None] = mapped_column(String(64), nullable=True)
    city: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stock_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    aliases: Mapped[str] = mapped_column(Text, default="")  # "|a|b|": normalised aliases for look-ups by LIKE
    profile: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    content_hash: Mapped[str] = mapped_column(String(64))
    embedded_hash: Mapped[str | None] = mapped_column(
        String(200), nullable=True
    )  # "{model_id}:{content_hash}"
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # hash of the import row (raw cells, columns, source, mapper) that last wrote this profile as it stands; NULL
    # after any other write. A re-import skips a row whose hash is stored (revision 0006)
    source_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)

    __table_args__ = (
        Index("ix_enterprises_name_province", "normalized_name", "province"),
        Index("ix_enterprises_source_hash", "source_hash"),
        Index("ix_enterprises_credit_code", "credit_code"),
        Index("ix_enterprises_tenant", "tenant"),
        Index("ix_enterprises_stock_code", "stock_code"),
        Index("ix_enterprises_name", "name"),
        # a partition's rows shortest first (name search: matcher/store/name_search.py)
        Index("ix_enterprises_partition_length", "tenant", func.length(normalized_name), "id"),
        # 统一社会信用代码 unique per tenant; the shared corpus (tenant NULL) needs its own partial index because
        # NULLs never collide in a plain unique index.
        Index("uq_enterprises_tenant_credit_code", "tenant", "credit_code", unique=True),
        Index(
            "uq_enterprises_shared_credit_code",
            "credit_code",
            unique=True,
            sqlite_where=text("tenant IS NULL"),
            postgresql_where=text("tenant IS NULL"),
        ),
    )


class RegionRow(Base):
    """One region / park profile. ``key`` is ``id`` for shared rows and ``{tenant}:{id}`` for a tenant's own."""

    __tablename__ = "regions"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    id: Mapped[str] = mapped_column(String(128))
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_regions_id", "id"),
        Index("ix_regions_tenant", "tenant"),
    )


class EnterpriseChangeRow(Base):
    """One committed change of an enterprise row, in commit order: the feed other processes follow.

    A server keeps its in-memory index current with its own API writes directly; writes from other processes
    (a CLI import, another server process) reach it through this log (``Store.changes_since``). ``origin``
    names the writing process (None for the CLI) so a server can skip its own entries.
    """

    __tablename__ = "enterprise_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    enterprise_id: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    op: Mapped[str] = mapped_column(String(8))  # "upsert" | "delete"
    origin: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_enterprise_changes_at", "at"),)
