"""A deal case as the matcher request a promotion officer could have written before the deal.

Only what the officer knew is used: the place (an ad hoc region: province / prefecture / park, no residents), the
chain (resolved against the catalogue by name or alias, else by the chain name written inside it, else
through the product link), the product link (mapped
onto a catalogue link by the LinkMapper) and the masked project text.
"""

from __future__ import annotations

import re

from evaluation.cases import CaseQuery
from matcher.errors import ChainMatchError
from matcher.knowledge.catalogue import Catalogue
from matcher.ranking.recommendation import RecommendRequest
from matcher.ranking.recommender import Recommender

__all__ = ["case_request"]


def case_request(q: CaseQuery, catalogue: Catalogue, rec: Recommender, k: int) -> RecommendRequest:
    """The matcher request a promotion officer could have written for this case."""
    chain_id = None
    for part in re.split(r"[/、,，]", q.chain or ""):
        part = part.strip()
        if not part:
            continue
        try:
            chain_id = catalogue.chain(part).id
            break
        except ChainMatchError:
            continue
    if chain_id is None and q.chain:  # "锂电池正极材料" is no chain's exact name, but it names the 锂电池 chain
        named = catalogue.chain_in_text(q.chain)
        chain_id = named.id if named else None
    link_id = None
    for phrase in [q.product_link, *re.split(r"[/、,，]", q.product_link or "")]:
        matches = rec.mapper.map_product(phrase) if phrase else []
        if matches:
            link_id = matches[0].link_id
            break
    if link_id and chain_id and link_id not in catalogue.chains[chain_id].link_ids:
        chains = catalogue.chains_of(link_id)
        chain_id = chains[0] if chains else chain_id
    gap = {"补链": "补链", "延链": "延链", "强链": "强链"}.get(q.gap_type or "")
    text = " ".join(p for p in (q.product_link, q.project) if p)
    return RecommendRequest(
        province=q.region_province or None,
        prefecture=q.region_prefecture or None,
        park=q.region_county_or_park or None,
        chain=chain_id,
        link=link_id,
        gap_type=gap,
        text=text[:4000],
        k=min(max(k, 1), 200),
    )
