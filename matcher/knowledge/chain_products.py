"""Segments that name a whole chain rather than one of its links (有机硅制品, 锂电池系列): evidence of making the
chain's products for a chain-level need."""

from __future__ import annotations

import re

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.industries import sells_not_makes
from matcher.knowledge.mapping import TRADE_PHRASE
from matcher.records import Enterprise
from matcher.text import normalize_text

__all__ = ["chain_named_products"]


#: Words after a chain's name that leave the phrase naming the chain's products as a whole (有机硅**制品**, 有机硅
#: **深加工**, 锂电池**系列**).
_CHAIN_TAIL = re.compile(r"(?:深加工|新材料|材料|制品|产品|系列|业务|板块|分部|行业|产业|业)+$")  # 番茄业


def chain_named_products(
    catalogue: Catalogue, enterprise: Enterprise, chain_id: str, min_share: float
) -> list[tuple[str, float | None]]:
    """The firm's segments that name the chain itself (有机硅制品 37% for 有机硅产业链) with at least ``min_share``
    of revenue (or no share reported), best first: evidence of making the chain's products when no segment names
    one link. Trade phrases (有机硅销售) and firms of non-maker industries never count."""
    if sells_not_makes(enterprise.sw_industry):
        return []
    chain = catalogue.chains[chain_id]
    names = {normalize_text(re.sub(r"(?:产业链|产业|链)$", "", n)) for n in (chain.name, *chain.aliases)}
    names.discard("")
    out = []
    for p in enterprise.products:
        key = normalize_text(p.name)
        if TRADE_PHRASE.search(key) or (p.share is not None and p.share < min_share):
            continue
        if key in names or _CHAIN_TAIL.sub("", key) in names:
            out.append((p.name, p.share))
    return sorted(out, key=lambda x: -(x[1] or 0.0))
