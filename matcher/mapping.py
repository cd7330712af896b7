"""Product → chain-link mapping: every enterprise gets (link id, score, method, evidence).

v0: exact alias match on product names (to be extended with jieba token overlap, GB/T codes and embeddings).
"""

from __future__ import annotations

from matcher.catalogue import Catalogue
from matcher.records import Enterprise, LinkMatch
from matcher.text import normalize_text


class LinkMapper:
    """Maps an enterprise's products, business scope and industry codes onto catalogue links."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._alias: dict[str, str] = {}
        for link in catalogue.links.values():
            for term in link.terms:
                self._alias.setdefault(normalize_text(term), link.id)

    def map(self, enterprise: Enterprise) -> list[LinkMatch]:
        """Links of one enterprise, best first."""
        best: dict[str, LinkMatch] = {}
        for p in enterprise.products:
            lid = self._alias.get(normalize_text(p.name))
            if lid and (lid not in best or (p.share or 0) > (best[lid].share or 0)):
                best[lid] = LinkMatch(link_id=lid, score=1.0, method="alias", evidence=p.name, share=p.share)
        return sorted(best.values(), key=lambda m: (-m.score, -(m.share or 0)))
