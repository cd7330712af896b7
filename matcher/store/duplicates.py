"""Duplicate firms in the store: find rows that are one real firm, and merge them into one record.

The store's identity rule (:mod:`matcher.store.identity`) keeps one record per firm at write time; rows written
before a rule existed (or by an older version) can still be duplicates. Two rows of one tenant scope are one firm
when they share a 统一社会信用代码, a stock code (a renamed shell keeps its code), a normalised name and province
with no conflicting code or branch (:func:`~matcher.store.identity.same_firm`), or when one's former name (曾用名,
kept in its aliases) is the other's name in the same province.

:func:`merge_duplicates` folds each group into its most trusted row (field-level merge with provenance, the
other names kept as aliases), repoints leads and signals to it and deletes the rest — one transaction per group,
logged in the change feed so the indexes follow.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select, update

from matcher.records import Enterprise
from matcher.store.db_models import EnterpriseRow
from matcher.store.identity import _aliases_key, _profile_json, branch_of, merge_profiles, same_firm, source_rank
from matcher.store.lead_store import LeadRow
from matcher.store.name_index import index_names, unindex_names
from matcher.store.signals import SignalRow

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = ["DuplicateGroup", "MergeOutcome", "find_duplicates", "merge_duplicates"]

logger = logging.getLogger(__name__)


@dataclass
class DuplicateGroup:
    """Rows of one tenant scope that are one firm: ``ids[0]`` is the row that survives a merge."""

    tenant: str | None
    reason: str  # credit_code / stock_code / name (what joined them)
    ids: list[str]
    names: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "reason": self.reason, "ids": self.ids, "names": self.names}

    def format(self) -> str:
        scope = f"[{self.tenant}] " if self.tenant else ""
        pairs = "、".join(f"{n} ({i})" for i, n in zip(self.ids, self.names, strict=True))
        return f"{scope}{pairs} — same {self.reason}"


@dataclass
class MergeOutcome:
    """What :func:`merge_duplicates` did."""

    groups: int = 0
    removed_ids: list[str] = field(default_factory=list)
    kept_ids: list[str] = field(default_factory=list)
    conflicting_fields: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"groups": self.groups, "removed": len(self.removed_ids), "kept_ids": self.kept_ids,
                "removed_ids": self.removed_ids, "conflicting_fields": self.conflicting_fields}  # fmt: skip


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.why: dict[str, str] = {}

    def find(self, x: str) -> str:
        while self.parent.get(x, x) != x:
            x = self.parent[x]
        return x

    def join(self, a: str, b: str, why: str) -> None:
        self.parent.setdefault(a, a)
        self.parent.setdefault(b, b)
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.why.setdefault(ra, why)


def _keyed_ids(store: Store, *columns: Any) -> list[list[str]]:
    """Ids of rows sharing every value of ``columns`` (non-null) within one tenant, per shared value."""
    e = EnterpriseRow
    with store._reader() as session:
        dup = (
            select(e.tenant, *columns)
            .where(*(c.is_not(None) for c in columns))
            .group_by(e.tenant, *columns)
            .having(func.count() > 1)
            .subquery()
        )
        cond = [func.coalesce(e.tenant, "") == func.coalesce(dup.c.tenant, "")]
        cond += [c == dup.c[c.key] for c in columns]
        rows = session.execute(select(e.id, e.tenant, *columns).join(dup, and_(*cond)).order_by(e.id)).all()
    groups: dict[tuple[Any, ...], list[str]] = {}
    for r in rows:
        groups.setdefault(tuple(r[1:]), []).append(r.id)
    return list(groups.values())


def _former_name_pairs(store: Store) -> list[list[str]]:
    """Pairs [row, row] where one row's former or short name (its ``aliases`` keys) is the other's normalised name
    in the same tenant scope and province: a renamed firm stored under its old and its new name."""
    e = EnterpriseRow
    by_name: dict[tuple[Any, ...], list[str]] = {}
    named: list[tuple[str, tuple[Any, Any], str]] = []
    with store._reader() as session:
        for rid, tenant, province, norm, aliases in session.execute(
            select(e.id, e.tenant, e.province, e.normalized_name, e.aliases).execution_options(yield_per=10_000)
        ):
            by_name.setdefault((tenant, province, norm), []).append(rid)
            if aliases:
                named.append((rid, (tenant, province), aliases))
    pairs = []
    for rid, (tenant, province), aliases in named:
        for key in aliases.strip("|").split("|"):
            pairs += [[other, rid] for other in by_name.get((tenant, province, key), ()) if other != rid]
    return pairs


def _profiles(store: Store, ids: list[str]) -> dict[str, Enterprise]:
    out: dict[str, Enterprise] = {}
    with store._reader() as session:
        for i in range(0, len(ids), 500):
            for rid, profile in session.execute(
                select(EnterpriseRow.id, EnterpriseRow.profile).where(EnterpriseRow.id.in_(ids[i : i + 500]))
            ):
                out[rid] = Enterprise.model_validate(profile)
    return out


def _keeper_order(e: Enterprise, renamed: set[str]) -> tuple[Any, ...]:
    """The surviving row: a real firm over an example, the most trusted source, the record under the current name
    (the one listing the other's name as a former name), then the oldest-looking id."""
    return (e.fictional, -source_rank(e.source), e.id not in renamed, len(e.id), e.id)


def _conflicting_codes(a: Enterprise, b: Enterprise) -> bool:
    return bool(
        (a.credit_code and b.credit_code and a.credit_code != b.credit_code)
        or (a.stock_code and b.stock_code and a.stock_code != b.stock_code)
        or branch_of(a.name) != branch_of(b.name)
    )


def find_duplicates(store: Store) -> list[DuplicateGroup]:
    """Every group of rows (per tenant scope) that the identity rule says are one firm, largest first."""
    e = EnterpriseRow
    union = _Union()
    candidates = {
        "credit_code": _keyed_ids(store, e.credit_code),
        "stock_code": _keyed_ids(store, e.stock_code),
        "name": _keyed_ids(store, e.normalized_name, e.province),
        "former_name": _former_name_pairs(store),
    }
    renamed = {pair[1] for pair in candidates["former_name"]}
    ids = sorted({i for groups in candidates.values() for g in groups for i in g})
    profiles = _profiles(store, ids)
    for why, groups in candidates.items():
        for g in groups:
            members = [profiles[i] for i in g if i in profiles]
            for a_i, a in enumerate(members):
                for b in members[a_i + 1 :]:
                    if why == "name" and not same_firm(a, b):
                        continue  # a branch, or conflicting codes: two firms that share a name
                    if why != "name" and _conflicting_codes(a, b):
                        continue
                    union.join(a.id, b.id, why)
    by_root: dict[str, list[Enterprise]] = {}
    for i in ids:
        if i in union.parent:
            by_root.setdefault(union.find(i), []).append(profiles[i])
    out = []
    for root, members in by_root.items():
        members.sort(key=lambda m: _keeper_order(m, renamed))
        out.append(DuplicateGroup(members[0].tenant, union.why.get(root, "name"),
                                  [m.id for m in members], [m.name for m in members]))  # fmt: skip
    out.sort(key=lambda g: (-len(g.ids), g.ids[0]))
    return out


def _merged(members: list[Enterprise], outcome: MergeOutcome) -> Enterprise:
    keeper = members[0]
    merged = keeper
    for other in members[1:]:
        merged, lost = merge_profiles(other, merged)  # the keeper's values win between equally trusted sources
        for f in lost:
            outcome.conflicting_fields[f] = outcome.conflicting_fields.get(f, 0) + 1
    names = [n for m in members for n in (m.name, *m.aliases)]
    aliases = [n for n in dict.fromkeys([*merged.aliases, *names]) if n and n != merged.name]
    return merged.model_copy(update={"id": keeper.id, "tenant": keeper.tenant, "aliases": aliases})


def merge_duplicates(
    store: Store, groups: list[DuplicateGroup], progress: Callable[[int, int], None] | None = None
) -> MergeOutcome:
    """Merge each group into its first row, one transaction per group (a stop keeps the groups finished).

    Leads and signals of a removed row move to the surviving row; the change feed records the update and the
    deletions so a running server and ``doctor`` see them."""
    outcome = MergeOutcome()
    for n, group in enumerate(groups, 1):
        profiles = _profiles(store, group.ids)
        members = [profiles[i] for i in group.ids if i in profiles]
        if len(members) < 2:
            continue
        merged = _merged(members, outcome)
        drop = [m.id for m in members[1:]]
        now = datetime.now(timezone.utc)
        profile, digest = _profile_json(merged)
        with store.transaction() as session:
            stored = dict(session.execute(select(EnterpriseRow.id, EnterpriseRow.normalized_name)
                                          .where(EnterpriseRow.id.in_([merged.id, *drop]))).all())  # fmt: skip
            unindex_names(session, stored)  # the name index follows in the same transaction
            session.execute(delete(EnterpriseRow).where(EnterpriseRow.id.in_(drop)))
            session.execute(
                update(EnterpriseRow)
                .where(EnterpriseRow.id == merged.id)
                .values(name=merged.name, normalized_name=merged.normalized_name, credit_code=merged.credit_code,
                        province=merged.province, city=merged.city, stock_code=merged.stock_code,
                        aliases=_aliases_key(merged), profile=profile, content_hash=digest, embedded_hash=None,
                        updated_at=now)  # fmt: skip
            )
            index_names(session, [{"id": merged.id, "tenant": merged.tenant, "name": merged.name,
                                   "normalized_name": merged.normalized_name, "aliases": _aliases_key(merged)}])
            session.execute(update(LeadRow).where(LeadRow.enterprise_id.in_(drop)).values(enterprise_id=merged.id))
            session.execute(
                update(SignalRow).where(SignalRow.enterprise_id.in_(drop)).values(enterprise_id=merged.id)
            )
            store._log_changes(session, drop, group.tenant, "delete", now)
            store._log_changes(session, [merged.id], group.tenant, "upsert", now)
        outcome.groups += 1
        outcome.kept_ids.append(merged.id)
        outcome.removed_ids += drop
        logger.info("merged %s into %s (%s)", drop, merged.id, group.reason)
        if progress is not None:
            progress(n, len(groups))
    return outcome


def link_former_names(store: Store, items: list[Enterprise]) -> int:
    """Before a corpus import: give each incoming profile whose name is a stored (shared) firm's former name — or
    another incoming profile's — that firm's name as an alias, so the store's identity rule (a former name of one
    is the other's name) joins them whichever was written first. Returns how many profiles were linked."""
    from matcher.text import normalize_company_name

    known: dict[tuple[Any, str], str] = {}
    e = EnterpriseRow
    with store._reader() as session:
        rows = session.execute(select(e.name, e.province, e.aliases).where(e.tenant.is_(None), e.aliases != ""))
        for name, province, aliases in rows:
            for key in aliases.strip("|").split("|"):
                known.setdefault((province, key), name)
    for item in items:
        for alias in item.aliases:
            known.setdefault((item.province, normalize_company_name(alias)), item.name)
    linked = 0
    for item in items:
        other = known.get((item.province, normalize_company_name(item.name)))
        if other and other != item.name and other not in item.aliases:
            item.aliases.append(other)
            linked += 1
    return linked
