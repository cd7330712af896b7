"""Recycling routes: a firm that makes a primary link's commodity from scrap belongs to the recycling link.

再生铝 makes 铝锭 as 电解铝 does; a recycler's 铝锭 is 再生铝 (catalogue ``recycles``: the recycling link names the
primary link whose commodity it makes).
"""

from __future__ import annotations

from dataclasses import dataclass

from matcher.knowledge.catalogue import Catalogue
from matcher.records import Enterprise, LinkMatch
from matcher.text import normalize_text

__all__ = ["Route", "recycling_routes", "reroute_recycled"]


@dataclass(frozen=True)
class Route:
    """A recycling link (``link_id``) and the primary link it recycles, with their normalised terms: the recycler's
    own (再生铝, 废铝回收) and the primary's that only the primary route uses (电解铝, 原铝, 重熔用铝锭 — not 铝锭, which
    再生铝锭 contains)."""

    link_id: str
    primary: str
    terms: tuple[str, ...]
    specific: tuple[str, ...]


def recycling_routes(catalogue: Catalogue) -> list[Route]:
    """The catalogue's recycling routes (links naming a primary link they recycle), terms normalised once."""
    out = []
    for lk in catalogue.links.values():
        if lk.recycles in catalogue.links:
            theirs = tuple(normalize_text(t) for t in lk.terms)
            primary = (normalize_text(t) for t in catalogue.links[lk.recycles].terms)
            out.append(Route(lk.id, lk.recycles, theirs, tuple(n for n in primary if not any(n in r for r in theirs))))
    return out


def reroute_recycled(enterprise: Enterprise, best: dict[str, LinkMatch], routes: list[Route]) -> list[LinkMatch]:
    """A firm whose name or business scope names a recycling route (再生铝, 废铝回收, a 资源再生 company), or
    whose scrap line is larger than its primary one, makes the primary link's commodity from scrap: its 铝锭 is
    再生铝, not 电解铝. Its match on the primary link is removed from ``best`` (link id → match) and returned on the
    recycling link, keeping evidence and share, for the caller to offer — unless its products or scope name the
    primary route itself (a smelter that also recycles)."""
    moved: list[LinkMatch] = []
    text = normalize_text(f"{enterprise.name} {enterprise.scope}")
    products = [normalize_text(p.name) for p in enterprise.products]
    for route in routes:
        primary = best.get(route.primary)
        if primary is None:
            continue
        rec = best.get(route.link_id)
        says = "再生" in normalize_text(enterprise.name) or any(t in text for t in route.terms)
        larger = rec is not None and (rec.share or 0.0) >= (primary.share or 0.0) > 0.0
        if not (says or larger):
            continue  # its name or scope names the recycling route, or scrap is its larger line
        if any(t in text or any(t in p for p in products) for t in route.specific):
            continue  # it names the primary route itself (电解铝, 原铝): a smelter that also recycles
        del best[route.primary]
        moved.append(primary.model_copy(update={"link_id": route.link_id}))
    return moved
