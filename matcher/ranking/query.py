"""Query building: from a gap (or a free-text need) to a dense query text, lexical terms and target links.

The dense text carries the link's name, aliases and typical products, the chain, what the region's 链主 supplies
or consumes across the chain's edges, and the officer's free text; the lexical terms are jieba tokens of the
link's surface forms plus the free text; target links weight the gap link 1.0, its direct neighbours 0.5 and the
rest of the chain 0.2 (used by the graph source and the link-fit feature).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from matcher.knowledge.catalogue import Catalogue
from matcher.records import Gap, GapType, Region
from matcher.text import clean_text, tokenize, words_version

NEIGHBOUR_WEIGHT = 0.5
CHAIN_WEIGHT = 0.2


@dataclass
class NeedQuery:
    """Everything the candidate sources and features need to know about one need."""

    text: str
    tokens: list[str]
    chain_id: str | None = None
    link_id: str | None = None
    gap_type: GapType | None = None
    target_links: dict[str, float] = field(default_factory=dict)
    master_links: set[str] = field(default_factory=set)  # region 链主 links adjacent to the gap link
    master_names: dict[str, list[str]] = field(default_factory=dict)  # 链主 link -> resident names
    flows: list[str] = field(default_factory=list)  # what flows between the gap link and the 链主
    as_of: date | None = None  # signals dated before this count (None: today)


def master_links_of(region: Region | None, residents: list | None = None) -> dict[str, list[str]]:
    """Link id → names of the region's 链主 residents holding it."""
    out: dict[str, list[str]] = {}
    for r in residents if residents is not None else (region.residents if region else []):
        if r.chain_master:
            for lid in r.links:
                out.setdefault(lid, []).append(r.name)
    return out


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    """jieba tokens of a phrase, memoised (catalogue names, aliases and need texts never change) until the
    tokenizer's dictionary grows."""
    return _phrase_tokens(phrase, words_version())


@lru_cache(maxsize=8192)
def _phrase_tokens(phrase: str, version: int) -> tuple[str, ...]:
    return tuple(tokenize(phrase))


def build_query(
    catalogue: Catalogue,
    chain_id: str | None,
    link_id: str | None,
    gap: Gap | None = None,
    free_text: str = "",
    masters: dict[str, list[str]] | None = None,
    extra_links: dict[str, float] | None = None,
) -> NeedQuery:
    """Build the query for one need.

    Args:
        catalogue: the chain catalogue.
        chain_id: the chain of the need (None for a pure free-text need).
        link_id: the gap link (None when only the chain or free text is known).
        gap: the diagnosed gap, if any (its type is carried along).
        free_text: the officer's words (product, project description); normalised here.
        masters: region 链主 links → names (from :func:`master_links_of`).
        extra_links: links recognised in the free text (link id → weight), e.g. by the LinkMapper.
    """
    masters = masters or {}
    free = clean_text(free_text)
    parts: list[str] = []
    lex: list[str] = []
    targets: dict[str, float] = {}
    flows: list[str] = []
    master_links: set[str] = set()
    if link_id is not None:
        link = catalogue.links[link_id]
        parts.append(link.name)
        surface = [*link.aliases[:6], *link.products[:6]]
        if surface:
            parts.append("、".join(surface))
        lex += [link.name, *link.aliases, *link.products]
        targets[link_id] = 1.0
        for nb in sorted(catalogue.neighbours(link_id, chain_id)):  # a set: its order would vary run to run
            targets.setdefault(nb, NEIGHBOUR_WEIGHT)
        for e in catalogue.suppliers(link_id, chain_id):
            if e.source in masters:
                master_links.add(e.source)
                flows.append(e.flow)
        for e in catalogue.customers(link_id, chain_id):
            if e.target in masters:
                master_links.add(e.target)
                flows.append(e.flow)
    for lid, w in (extra_links or {}).items():
        if targets.get(lid, 0.0) < w:
            targets[lid] = w
            if link_id is None:
                lex += [catalogue.links[lid].name, *catalogue.links[lid].aliases]
    if chain_id is not None:
        chain = catalogue.chains[chain_id]
        parts.append(chain.name)
        for lid in chain.link_ids:
            targets.setdefault(lid, CHAIN_WEIGHT)
        if link_id is None:
            lex.append(chain.name)
    if free:
        parts.append(free)
        lex.append(free)
    tokens: list[str] = []
    for phrase in lex:
        tokens.extend(phrase_tokens(phrase))
    text = "；".join(p for p in parts if p)
    return NeedQuery(
        text=text[:400],
        tokens=tokens,
        chain_id=chain_id,
        link_id=link_id,
        gap_type=gap.type if gap else None,
        target_links=targets,
        master_links=master_links,
        master_names={lid: masters[lid] for lid in master_links},
        flows=[f for f in flows if f],
    )
