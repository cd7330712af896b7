"""Lines of business: links a 招商 officer treats as one project (the catalogue's ``family``).

双壁波纹管, 钢带增强波纹管 and 钢丝网骨架管 are made on the PE管材 line from the same resin for the same buyers; 热电联产
is a 燃煤电厂 that also sells heat. A region's gap list names such a family once. An umbrella link (汽车零部件, whose
``covers`` are 汽车玻璃, 驱动电机 …) is no gap of its own beside the specific links it covers.
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
    _fold_umbrellas(rows, catalogue, present)


def _fold_umbrellas(rows: list[Gap], catalogue: Catalogue, present: Mapping[str, list[str]]) -> None:
    """An umbrella row (汽车零部件) beside a listed or present link it covers (汽车玻璃) is a variant of that link."""
    listed = {g.link_id: g for g in rows if g.variant_of is None}
    for g in rows:
        covers = catalogue.links[g.link_id].covers
        if not covers or g.variant_of is not None:
            continue
        named = [lid for lid in covers if lid in listed or lid in present]
        if named:
            g.variant_of = named[0]
            names = "、".join(catalogue.links[lid].name for lid in named[:4])
            g.evidence.insert(0, f"上位类：本表已按具体环节列出（{names}），不单列")
