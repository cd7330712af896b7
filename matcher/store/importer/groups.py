"""Groups from credit codes: a row naming its parent's 统一社会信用代码 (``extra.parent_credit_code``) gets the
parent's group as its ``parent_group`` — from a row of the same file read before it, else from the store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from matcher.records import Enterprise
from matcher.store.db_models import EnterpriseRow

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = ["GroupResolver"]


class GroupResolver:
    """Fills ``parent_group`` of imported rows from their parent's credit code, batch by batch."""

    def __init__(self, store: Store, tenant: str | None) -> None:
        self.store, self.tenant = store, tenant
        self.groups: dict[str, str] = {}  # credit code -> group name (the firm's parent_group, else its name)

    def resolve(self, batch: list[Enterprise]) -> int:
        """Set ``parent_group`` where only the parent's code is known; returns how many rows were resolved."""
        for e in batch:
            if e.credit_code:
                self.groups.setdefault(e.credit_code, e.parent_group or e.name)
        wanted = {e.extra["parent_credit_code"] for e in batch
                  if e.extra.get("parent_credit_code") and not e.parent_group}  # fmt: skip
        missing = sorted(wanted - self.groups.keys())
        if missing:
            e = EnterpriseRow
            with self.store._reader() as session:
                rows = session.execute(
                    select(e.credit_code, e.name, e.profile["parent_group"].as_string(), e.tenant).where(
                        e.credit_code.in_(missing)
                    )
                ).all()
            for code, name, group, tenant in sorted(rows, key=lambda r: r[3] != self.tenant):  # own rows first
                if tenant in (None, self.tenant):
                    self.groups.setdefault(code, group or name)
        done = 0
        for e in batch:
            code = e.extra.get("parent_credit_code")
            if code and not e.parent_group and code in self.groups:
                e.parent_group = self.groups[code]
                done += 1
        return done
