"""Recycling routes: a firm that makes a primary link's commodity from scrap belongs to the recycling link.

再生铝 makes 铝锭 as 电解铝 does; a recycler's 铝锭 is 再生铝 (catalogue ``recycles``: the recycling link names the
primary link whose commodity it makes).
"""

from __future__ import annotations

from matcher.knowledge.catalogue import Catalogue
from matcher.records import Enterprise, Link, LinkMatch
from matcher.text import normalize_text

__all__ = ["recycling_links", "reroute_recycled"]


def recycling_links(catalogue: Catalogue) -> list[Link]:
    """The links that name a primary link they recycle."""
    return [lk for lk in catalogue.links.values() if lk.recycles in catalogue.links]


def _specific(catalogue: Catalogue, recycler: Link) -> list[str]:
    """The primary link's terms that only the primary route uses (电解铝, 原铝, 重熔用铝锭 — not 铝锭, which
    再生铝锭 contains)."""
    theirs = [normalize_text(t) for t in recycler.terms]
    return [n for t in catalogue.links[recycler.recycles].terms if not any((n := normalize_text(t)) in r for r in theirs)]


def reroute_recycled(
    enterprise: Enterprise, best: dict[str, LinkMatch], recyclers: list[Link], catalogue: Catalogue
) -> list[LinkMatch]:
    """A firm whose name or business scope names a recycling route (再生铝, 废铝回收, a 资源再生 company), or
    whose scrap line is larger than its primary one, makes the primary link's commodity from scrap: its 铝锭 is
    再生铝, not 电解铝. Its match on the primary link is removed from ``best`` (link id → match) and returned on the
    recycling link, keeping evidence and share, for the caller to offer — unless its products or scope name the
    primary route itself (a smelter that also recycles)."""
    moved: list[LinkMatch] = []
    text = normalize_text(f"{enterprise.name} {enterprise.scope}")
    products = [normalize_text(p.name) for p in enterprise.products]
    for link in recyclers:
        primary = best.get(link.recycles)
        if primary is None:
            continue
        rec = best.get(link.id)
        says = "再生" in normalize_text(enterprise.name) or any(normalize_text(t) in text for t in link.terms)
        larger = rec is not None and (rec.share or 0.0) >= (primary.share or 0.0) > 0.0
        if not (says or larger):
            continue  # its name or scope names the recycling route, or scrap is its larger line
        if any(t in text or any(t in p for p in products) for t in _specific(catalogue, link)):
            continue  # it names the primary route itself (电解铝, 原铝): a smelter that also recycles
        del best[link.recycles]
        moved.append(primary.model_copy(update={"link_id": link.id}))
    return moved
