"""Presence by location: corpus firms registered in a region (province / prefecture / county) and the links they make.

A firm counts for a region when its province (for a province), its city (for a prefecture or county-level city), its
county or one of its known plants (``extra.sites``, from an import's 生产基地 column) names the region or one of its
sub-regions. Its links are its confidently mapped links (:class:`LinkMatch`)
or, when it has none, the catalogue links its product segments name exactly — either way only segments with a revenue
share of at least ``min_share`` (a 0.1% side line such as a retailer's 汽车配件 makes no link present).
The listing tables give a firm's registered seat, not its plants: a province-level reading is the safe one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.regions import RegionBook
from matcher.records import Enterprise, Region, RegionLevel
from matcher.text import normalize_text

logger = logging.getLogger(__name__)

MIN_SHARE = 0.05
MIN_LINK_SCORE = 0.8


def _names(region: Region) -> set[str]:
    return {normalize_text(n) for n in (region.name, *region.aliases)}


def _scope(region: Region, book: RegionBook | None) -> list[Region]:
    out, stack = [region], [region.id]
    while book is not None and stack:
        for child in book.children(stack.pop()):
            if child not in out:
                out.append(child)
                stack.append(child.id)
    return out


def firm_links(firm: Enterprise, catalogue: Catalogue, min_share: float = MIN_SHARE) -> list[str]:
    """The links a firm makes: its mapped links, else the links its main product segments name exactly."""
    mapped = [
        m.link_id
        for m in firm.links
        if m.score >= MIN_LINK_SCORE and (m.share is None or m.share >= min_share) and m.link_id in catalogue.links
    ]
    if mapped:
        return list(dict.fromkeys(mapped))
    out = []
    for p in firm.products:
        if (p.share is None or p.share >= min_share) and catalogue.has_link(p.name):
            out.append(catalogue.link(p.name).id)
    return list(dict.fromkeys(out))


def located_in(firm: Enterprise, region: Region, book: RegionBook | None = None) -> bool:
    """Whether the firm's registered seat, or one of its known plants (``extra.sites``), lies in the region or in
    one of its sub-regions."""
    return _located(firm, [(r, _names(r)) for r in _scope(region, book)])


def _located(firm: Enterprise, scope: list[tuple[Region, set[str]]]) -> bool:
    sites = [normalize_text(str(x)) for x in firm.extra.get("sites") or ()]
    seat = {normalize_text(x) for x in (firm.city, firm.county) if x}
    for r, names in scope:
        if r.level == RegionLevel.PROVINCE:
            if firm.province and normalize_text(firm.province) in names | {normalize_text(r.province)}:
                return True
        elif seat & names:
            return True
        if any(len(n) >= 2 and n in site for n in names for site in sites):
            return True
    return False


def located_presence(
    region: Region, firms: Iterable[Enterprise], catalogue: Catalogue, book: RegionBook | None = None
) -> dict[str, list[str]]:
    """Link id → names of the corpus firms located in the region that make it."""
    out: dict[str, list[str]] = {}
    scope = [(r, _names(r)) for r in _scope(region, book)]
    for firm in firms:
        if firm.fictional or not _located(firm, scope):
            continue
        for lid in firm_links(firm, catalogue):
            out.setdefault(lid, []).append(firm.name)
    return out


def located_lookup(
    firms_in_province: Callable[[str], Iterable[Enterprise]], catalogue: Catalogue, book: RegionBook | None = None
) -> Callable[[Region], dict[str, list[str]]]:
    """:func:`located_presence` for any region of ``book``, each province's firms fetched once and each region
    computed once — what a diagnosis needs when it consults the sub-regions of the region it diagnoses."""
    firms: dict[str, list[Enterprise]] = {}
    done: dict[str, dict[str, list[str]]] = {}

    def located(region: Region) -> dict[str, list[str]]:
        if region.id not in done:
            if region.province not in firms:
                firms[region.province] = list(firms_in_province(region.province))
            done[region.id] = located_presence(region, firms[region.province], catalogue, book)
        return done[region.id]

    return located
