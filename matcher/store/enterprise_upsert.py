"""Helpers of :meth:`matcher.store.store.Store.upsert_enterprises`: the summary, the stored rows an upsert may
match, the field-level merge with them, and the import-row hashes (``source_hash``) that let a re-import skip
unchanged rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from matcher.records import Enterprise
from matcher.store.database import _chunks
from matcher.store.db_models import EnterpriseRow
from matcher.store.identity import branch_of, former_keys, merge_profiles

__all__ = ["UpsertSummary", "existing_rows", "merge_stored", "source_hash_for", "stamp_source_hashes"]


@dataclass
class UpsertSummary:
    """What :meth:`Store.upsert_enterprises` did.

    Counts are per stored row: input items that resolve to the same row (same credit code, name + province or
    id) are merged, the later one winning. ``ids`` gives the stored id of every input item, in input order.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_ids: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    change_seqs: list[int] = field(default_factory=list)  # the change-feed entries this upsert appended

    merged: int = 0  # stored rows whose profile was merged with one from another source
    conflicts: dict[str, int] = field(default_factory=dict)  # field -> rows where two sources disagreed

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def note_conflicts(self, fields: list[str]) -> None:
        for f in fields:
            self.conflicts[f] = self.conflicts.get(f, 0) + 1

    def merge_report(self) -> str:
        """One line: new, merged, conflicting fields."""
        conf = ", ".join(f"{f} ×{n}" for f, n in sorted(self.conflicts.items(), key=lambda x: -x[1])) or "none"
        return (f"new {self.inserted}, updated {self.updated} (merged across sources {self.merged}), "
                f"unchanged {self.unchanged}; conflicting fields kept from the more trusted source: {conf}")  # fmt: skip


def existing_rows(session: Session, items: list[Enterprise], tenant: str | None) -> dict[str, dict[str, Any]]:
    """Rows of the scope that any item could match (by credit code, stock code, name or id): id -> key columns."""
    e = EnterpriseRow
    cols = (e.id, e.tenant, e.name, e.credit_code, e.stock_code, e.normalized_name, e.province, e.content_hash,
            e.source_hash)  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    keys: list[tuple[Any, list[str]]] = [
        (e.credit_code, sorted({i.credit_code for i in items if i.credit_code})),
        (e.stock_code, sorted({i.stock_code for i in items if i.stock_code})),
        (e.normalized_name, sorted({i.normalized_name for i in items} | {a for i in items for a in former_keys(i)})),
        (e.id, sorted({i.id for i in items})),
    ]
    for column, values in keys:
        for chunk in _chunks(values):
            # the scope is filtered here, not in SQL: with "tenant IS NULL" in the WHERE clause SQLite may pick
            # the (unselective) tenant index over the key's index and scan the whole table per chunk
            for row in session.execute(select(*cols).where(column.in_(chunk))):
                if row.tenant != tenant or row.id in found:
                    continue
                found[row.id] = {
                    "credit_code": row.credit_code,
                    "stored_credit_code": row.credit_code,
                    "stock_code": row.stock_code,
                    "branch": branch_of(row.name),
                    "normalized_name": row.normalized_name,
                    "province": row.province,
                    "content_hash": row.content_hash,
                    "source_hash": row.source_hash,
                }
    return found


def merge_stored(
    session: Session, final: dict[str, Enterprise], state: dict[str, dict[str, Any]], summary: UpsertSummary
) -> None:
    """Merge each incoming profile with the stored one it updates (field by field, :func:`merge_profiles`), so
    an import never replaces a known value with an empty or less trusted one."""
    rows = [rid for rid in final if not state[rid].get("new")]
    for chunk in _chunks(rows):
        for rid, profile in session.execute(
            select(EnterpriseRow.id, EnterpriseRow.profile).where(EnterpriseRow.id.in_(chunk))
        ):
            stored = Enterprise.model_validate(profile)
            incoming = final[rid]
            merged, lost = merge_profiles(stored, incoming)
            changed = merged.model_dump(exclude={"updated_at"}) != stored.model_dump(exclude={"updated_at"})
            if changed and stored.source != incoming.source:
                summary.merged += 1
                summary.note_conflicts(lost)
            final[rid] = merged


def _identity(e: Enterprise) -> tuple[Any, ...]:
    return e.name, e.normalized_name, e.province, e.credit_code, e.stock_code


def source_hash_for(
    final: dict[str, Enterprise], inputs: dict[str, list[tuple[Enterprise, str | None]]]
) -> dict[str, str | None]:
    """The ``source_hash`` each written row gets: the hash of the one import row that wrote it, when that row alone
    made the row and the stored identity (name, normalised name, province, codes) is the row's own; else None
    (a re-import then rebuilds it, as before)."""
    out: dict[str, str | None] = {}
    for rid, e in final.items():
        given = inputs.get(rid, [])
        if len(given) == 1 and given[0][1] and _identity(given[0][0]) == _identity(e):
            out[rid] = given[0][1]
        else:
            out[rid] = None
    return out


def stamp_source_hashes(session: Session, stamps: Sequence[tuple[str, str | None]]) -> None:
    """Set ``source_hash`` of unchanged rows (content as stored, so no change-log entry and no re-embedding)."""
    table = EnterpriseRow.__table__
    stmt = table.update().where(table.c.id == bindparam("_id")).values(source_hash=bindparam("_h"))
    for chunk in _chunks(list(stamps), 5000):
        session.execute(stmt, [{"_id": rid, "_h": h} for rid, h in chunk])
