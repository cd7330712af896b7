"""The reverse direction: for one enterprise, rank the regions and parks whose gaps it fits best.

Every region's diagnosed gaps are embedded into their own vector index (:class:`GapIndex`), rebuilt for a region
whenever that region changes (:meth:`GapIndex.update_region`). A fit's score combines:

- link_fit 0.40: the enterprise is mapped to the gap link (1.0) or to a neighbouring link (0.5);
- dense 0.25: similarity of the enterprise profile and the gap text;
- priority 0.15: the gap's own priority (adjacency to residents, 链主, stated needs);
- master 0.10: the gap is an input or outlet of a resident 链主;
- aiding 0.10: the enterprise's home province aids that region (产业援疆).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from matcher.knowledge.aiding import aiding_for
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.geo import province_short
from matcher.knowledge.regions import RegionBook
from matcher.ranking.profile_text import profile_text
from matcher.records import Enterprise, Gap

logger = logging.getLogger(__name__)

FIT_WEIGHTS = {"link_fit": 0.40, "dense": 0.25, "priority": 0.15, "master": 0.10, "aiding": 0.10}


@dataclass
class RegionFit:
    region_id: str
    region_name: str
    gap: Gap
    score: float
    parts: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "region_id": self.region_id,
            "region_name": self.region_name,
            "chain_id": self.gap.chain_id,
            "chain_name": self.gap.chain_name,
            "link_id": self.gap.link_id,
            "link_name": self.gap.link_name,
            "gap_type": self.gap.type.value,
            "score": round(self.score, 4),
            "parts": self.parts,
            "reasons": self.reasons,
        }


def gap_text(region_name: str, gap: Gap, catalogue: Catalogue) -> str:
    """The text embedded for one gap: link, aliases, products, chain and region."""
    link = catalogue.links[gap.link_id]
    terms = "、".join([*link.aliases[:5], *link.products[:5]])
    return f"{link.name}；{terms}；{gap.chain_name}；{region_name}{gap.type.action}"


class GapIndex:
    """All regions' gaps in one vector index, kept current per region."""

    def __init__(self, catalogue: Catalogue, embedder) -> None:
        self.catalogue = catalogue
        self.embedder = embedder
        self._gaps: dict[str, list[Gap]] = {}
        self._names: dict[str, str] = {}
        self._aiding: dict[str, set[str]] = {}
        self._vecs: dict[str, np.ndarray] = {}

    def build(self, book: RegionBook, only: set[str] | None = None) -> GapIndex:
        """Diagnose every region of ``book`` (or the ids in ``only``) and embed all their gaps in one batch."""
        texts: list[str] = []
        spans: list[tuple[str, int, int]] = []
        for region in book:
            if only is not None and region.id not in only:
                continue
            self._set_region(region.id, book)
            gaps = self._gaps[region.id]
            spans.append((region.id, len(texts), len(texts) + len(gaps)))
            texts += [gap_text(region.name, g, self.catalogue) for g in gaps]
        vecs = self.embedder.encode_queries(texts) if texts else np.zeros((0, self.embedder.dim), np.float32)
        for rid, a, b in spans:
            self._vecs[rid] = np.asarray(vecs[a:b], dtype=np.float32).reshape(b - a, self.embedder.dim)
        logger.info("gap index: %d regions, %d gaps", len(self._gaps), sum(len(g) for g in self._gaps.values()))
        return self

    def update_region(self, region_id: str, book: RegionBook) -> None:
        """(Re)diagnose one region and re-embed its gaps; a region no longer in the book is dropped."""
        if region_id not in book.regions:
            for d in (self._gaps, self._names, self._aiding, self._vecs):
                d.pop(region_id, None)
            return
        region = book.regions[region_id]
        gaps = self._set_region(region_id, book)
        if gaps:
            self._vecs[region_id] = self.embedder.encode_queries([gap_text(region.name, g, self.catalogue) for g in gaps])
        else:
            self._vecs[region_id] = np.zeros((0, self.embedder.dim), dtype=np.float32)

    def _set_region(self, region_id: str, book: RegionBook) -> list[Gap]:
        region = book.regions[region_id]
        gaps = diagnose(region, self.catalogue, book=book).gaps if (region.target_chains or region.residents) else []
        self._gaps[region_id] = gaps
        self._names[region_id] = region.name
        self._aiding[region_id] = {p for p in (province_short(a) for a in aiding_for(region, book)) if p}
        return gaps

    def __len__(self) -> int:
        return sum(len(g) for g in self._gaps.values())

    def fit(
        self,
        enterprise: Enterprise,
        k: int = 10,
        per_region: int = 2,
        exclude: set[str] | frozenset[str] = frozenset(),
        also: Sequence[GapIndex] = (),
    ) -> list[RegionFit]:
        """Regions and gaps an enterprise fits best (at most ``per_region`` gaps per region).

        ``exclude`` drops regions of this index (e.g. shared regions a tenant overrides with its own version);
        ``also`` adds other indexes' regions (a tenant's private regions), ranked together with one embedding.
        """
        ev = self.embedder.encode_queries([profile_text(enterprise, self.catalogue)])[0]
        fits = self._fits(enterprise, ev, exclude)
        for other in also:
            fits += other._fits(enterprise, ev, frozenset())
        fits.sort(key=lambda f: -f.score)
        out: list[RegionFit] = []
        count: dict[str, int] = {}
        for f in fits:
            if count.get(f.region_id, 0) >= per_region:
                continue
            count[f.region_id] = count.get(f.region_id, 0) + 1
            out.append(f)
            if len(out) >= k:
                break
        return out

    def _fits(self, enterprise: Enterprise, ev: np.ndarray, exclude: set[str] | frozenset[str]) -> list[RegionFit]:
        """Every gap of this index scored for the enterprise (embedding ``ev``), unsorted."""
        mine = {m.link_id: m for m in enterprise.links}
        prov = province_short(enterprise.province)
        fits: list[RegionFit] = []
        for rid, gaps in self._gaps.items():
            if not gaps or rid in exclude:
                continue
            sims = self._vecs[rid] @ ev
            for g, sim in zip(gaps, sims):
                if g.link_id in mine:
                    lf = mine[g.link_id].score
                elif self.catalogue.neighbours(g.link_id, g.chain_id) & set(mine):
                    lf = 0.5
                else:
                    lf = 0.0
                parts = {
                    "link_fit": round(min(lf, 1.0), 3),
                    "dense": round(float(max(sim, 0.0)), 3),
                    "priority": round(g.priority, 3),
                    "master": g.priority_parts.get("chain_master", 0.0) if lf > 0 else 0.0,
                    "aiding": 1.0 if prov and prov in self._aiding.get(rid, set()) else 0.0,
                }
                score = sum(FIT_WEIGHTS[p] * v for p, v in parts.items())
                reasons = []
                if lf >= 0.99:
                    ev_txt = mine[g.link_id].evidence
                    reasons.append(f"主营「{ev_txt}」可填补{self._names[rid]}{g.chain_name}的「{g.link_name}」{g.type.value}")
                elif lf > 0:
                    reasons.append(f"产品与{g.link_name}相邻，可上下游配套")
                reasons += g.evidence[:2]
                if parts["aiding"]:
                    reasons.append(f"{prov}为{self._names[rid]}的产业援疆结对省份")
                fits.append(RegionFit(rid, self._names[rid], g, score, parts, reasons))
        return fits
