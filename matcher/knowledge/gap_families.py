"""Lines of business: links a 招商 officer treats as one project (the catalogue's ``family``).

双壁波纹管, 钢带增强波纹管 and 钢丝网骨架管 are made on the PE管材 line from the same resin for the same buyers; 热电联产
is a 燃煤电厂 that also sells heat. A region's gap list names such a family once.
"""

from __future__ import annotations

from collections.abc import Mapping

from matcher.knowledge.catalogue import Catalogue
from matcher.records import Gap

__all__ = ["fold_families"]


def fold_families(rows: list[Gap], catalogue: Catalogue, present: Mapping[str, list[str]]) -> None:
    """Mark rows of one line of business (the catalogue's ``family``: 双壁波纹管 beside PE管材, 热电联产 beside
    燃煤发电) as variants: of a present link of the family (同类环节本地区已有), or of the family's first row, which
    names them (同类品种). The concise view leaves variants out; the full list keeps them, marked."""
    holders: dict[str, str] = {}  # family → a present link of it
    for lid in present:
        fam = catalogue.links[lid].family
        if fam and fam not in holders:
            holders[fam] = lid
    head: dict[str, Gap] = {}
    for g in rows:
        fam = catalogue.links[g.link_id].family
        if not fam:
            continue
        if fam in holders:
            lid = holders[fam]
            g.variant_of = lid
            g.evidence.insert(0, f"同类环节本地区已有：{catalogue.links[lid].name}（{'、'.join(present[lid][:3])}），可由其扩能或延伸，不单列")
        elif fam in head:
            g.variant_of = head[fam].link_id
            g.evidence.insert(0, f"与{head[fam].link_name}属同一类项目（同类品种），合并在该行")
            head[fam].evidence.append(f"同类品种（可同一项目引进）：{g.link_name}")
        else:
            head[fam] = g
