"""The recommender: gap-aware hybrid ranking of enterprises with explanations and diversity.

Pipeline for one need (see the README's "How ranking works"):

1. query building (:mod:`matcher.ranking.query`): gap link, aliases, products, neighbouring links, the 链主's flows;
2. candidates from three sources — dense (vector index), lexical (BM25 over jieba tokens) and the chain graph
   (enterprises mapped to the gap link or its neighbours) — fused by reciprocal rank;
3. features per candidate (:mod:`matcher.ranking.scoring`), residents of the region excluded, hard filters applied;
4. scoring: the transparent weighted sum, or the learned reranker when one is loaded;
5. diversity: group-level dedupe (one firm per group) and MMR over the profile vectors;
6. an explanation for every candidate.

Usage::

    rec = Recommender(catalogue, embedder).fit(enterprises)
    result = rec.recommend(RecommendRequest(region="玛纳斯县", chain="aluminium", link="aluminium_rod"), book)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from matcher.errors import InvalidRequestError
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gaps import diagnose, residents_in_scope
from matcher.knowledge.geo import province_short
from matcher.knowledge.mapping import LinkMapper
from matcher.knowledge.regions import RegionBook
from matcher.ranking.candidates import CandidateSources, SourceDepth
from matcher.ranking.corpus import FittedCorpus, PreparedUpdate
from matcher.ranking.diversity import Diversity
from matcher.ranking.explain import Explanations
from matcher.ranking.presence import Presence
from matcher.ranking.query import NeedQuery, build_query, master_links_of
from matcher.ranking.recommendation import Candidate, Filters, Recommendation, RecommendRequest
from matcher.ranking.scoring import (
    FEATURES,
    MIN_MAKER_SHARE,
    BlendWeights,
    ScoringWeights,
    blend_scores,
    evidence_bar,
    text_hint,
    weighted_scores,
)
from matcher.records import Gap, Region, RegionLevel
from matcher.text import normalize_text

logger = logging.getLogger(__name__)

__all__ = ["PreparedUpdate", "Recommender", "SourceDepth"]





class Recommender(FittedCorpus, CandidateSources, Presence, Diversity, Explanations):
    """Ranks enterprises for a region's chain gaps.

    Args:
        catalogue: the chain catalogue.
        embedder: any object with ``id``, ``dim``, ``encode_queries`` and ``encode_passages`` (models.embedders).
        weights: weights of the default scorer.
        sources: which candidate sources are on (ablations): subset of {"dense", "lexical", "graph", "tfidf",
            "related"}.
        scorer: "blend" (the default chosen by the grouped-CV protocol, :class:`BlendWeights`) or "weighted"
            (the transparent weighted sum of :class:`ScoringWeights`, for ablations).
        blend: parameters of the blend scorer.
        ltr: a :class:`~matcher.ranking.ltr.LearnedRanker` whose score the blend adds with weight ``blend.ltr``.
        evidence_bar: list only candidates with some evidence for the need (:data:`scoring.EVIDENCE_BAR`); when
            fewer than ``k`` clear it the list is shorter and says so instead of being padded.
        depth: candidates per source.
        index_factory: FAISS factory for the vector index ("auto" = Flat for small corpora, HNSW above).
        diversity: MMR trade-off λ (1.0 = relevance only) and group dedupe on/off.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        embedder,
        weights: ScoringWeights | None = None,
        sources: Sequence[str] = ("dense", "lexical", "graph", "tfidf", "related"),
        depth: SourceDepth | None = None,
        index_factory: str = "auto",
        mmr_lambda: float = 0.85,
        group_dedupe: bool = True,
        reranker=None,
        scorer: str = "blend",
        blend: BlendWeights | None = None,
        ltr=None,
        evidence_bar: bool = True,
    ) -> None:
        self.catalogue = catalogue
        self.embedder = embedder
        self.weights = weights or ScoringWeights()
        self.sources = tuple(sources)
        self.depth = depth or SourceDepth()
        self.index_factory = index_factory
        self.mmr_lambda = mmr_lambda
        self.group_dedupe = group_dedupe
        self.reranker = reranker
        if scorer not in ("blend", "weighted"):
            raise InvalidRequestError("scorer", scorer, "expected 'blend' or 'weighted'")
        self.scorer = scorer
        self.blend = blend or BlendWeights()
        self.ltr = ltr
        self.evidence_bar = evidence_bar
        self.mapper = LinkMapper(catalogue)
        self.signals = None  # a matcher.ranking.signals_features.SignalBook: fills the sig_* features

    # ------------------------------------------------------------------------------------ requests
    def resolve_region(self, req: RecommendRequest, book: RegionBook | None) -> Region | None:
        """The known region, or an ad hoc one from province / prefecture / park names (no residents)."""
        if req.region:
            if book is None:
                raise InvalidRequestError("region", req.region, "no region book loaded")
            return book.get(req.region, req.tenant)
        names = [n for n in (req.park, req.prefecture, req.province) if n]
        if not names:
            return None
        province = province_short(req.province) if req.province else None
        if book is not None:  # a named prefecture/park may be a known region after all
            for n in names:
                try:
                    return book.get(n, req.tenant)
                except KeyError:
                    continue
        level = RegionLevel.PARK if req.park else RegionLevel.PREFECTURE if req.prefecture else RegionLevel.PROVINCE
        return Region(id="adhoc", name=names[0], level=level, province=province or (req.province or ""))

    def candidate_features(
        self, req: RecommendRequest, book: RegionBook | None = None, aiding: Sequence[str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Every candidate of the three sources for a need with its feature row (for training the reranker)."""
        return self.recommend(req, book, aiding, return_pool=True)  # type: ignore[return-value]

    def recommend(
        self,
        req: RecommendRequest,
        book: RegionBook | None = None,
        aiding: Sequence[str] | None = None,
        return_pool: bool = False,
    ) -> Recommendation:
        """Rank candidates for one need.

        Raises:
            UnknownRegionError, UnknownChainError, UnknownLinkError: unknown names.
            InvalidRequestError: an empty need (no chain, link or text) or a link outside the chain.
        """
        self._check_fitted()
        t0 = time.perf_counter()
        region = self.resolve_region(req, book)
        chain_id = self.catalogue.chain(req.chain).id if req.chain else None
        link_id = None
        if req.link:
            link_id = self.catalogue.link(req.link).id
            if chain_id is None:
                chains = self.catalogue.chains_of(link_id)
                chain_id = chains[0] if chains else None
            elif link_id not in self.catalogue.chains[chain_id].link_ids:
                raise InvalidRequestError("link", req.link, f"link is not part of chain '{chain_id}'")
        if chain_id is None and link_id is None and not req.text.strip():
            raise InvalidRequestError("text", req.text, "a need needs a chain, a link or a free-text description")
        scope = residents_in_scope(region, book) if region is not None else []
        residents = [r for r, _ in scope]
        gap: Gap | None = None
        extra_links: dict[str, float] = {}
        if region is not None and chain_id and region.id != "adhoc":
            # a need named at this level keeps the gap's context even when the gap is a sub-region's own
            gm = diagnose(region, self.catalogue, chain=chain_id, book=book, include_delegated=True)
            if link_id:
                gap = next((g for g in gm.gaps if g.link_id == link_id), None)
            else:  # chain-level need: aim at the region's gaps in that chain, weighted by priority
                top = max((g.priority for g in gm.gaps), default=1.0) or 1.0
                extra_links = {g.link_id: 0.5 + 0.5 * g.priority / top for g in gm.gaps}
        if req.text.strip():
            for m in self._links_in_text(req.text, chain_id):
                extra_links[m] = max(extra_links.get(m, 0.0), 1.0 if link_id is None else 0.5)
        q = build_query(
            self.catalogue, chain_id, link_id, gap, req.text, master_links_of(None, residents), extra_links
        )
        if req.gap_type is not None:
            q.gap_type = req.gap_type
        q.as_of = req.as_of
        aiding_provs = {p for p in (province_short(a) for a in (aiding or (region.aiding if region else []))) if p}
        keep_present = self.keeps_present(q.gap_type)
        mask, excluded = self._mask(req.filters, req.tenant, [] if keep_present else residents, aiding_provs)
        present = self._present_rows(region, residents, book)
        if present and not keep_present:  # 补链 / 延链: a firm (or group) already on site is not a newcomer
            rows = np.fromiter(present, dtype=np.int64)
            excluded += int(mask[rows].sum())
            mask[rows] = False
        if req.filters.recent_expansion:
            mask &= self._recent_expanders(req.as_of)
        if return_pool:
            pool, F, _ = self._pool(q, mask, region, aiding_provs)
            return [self.enterprises_[i].id for i in pool], F  # type: ignore[return-value]
        cands, below, leads = self._rank(q, mask, region, aiding_provs, req.k, present if keep_present else {})
        note = None
        if len(cands) < req.k and below:
            note = f"仅找到 {len(cands)} 家有依据的候选（另有 {below} 家证据不足，未列出）"
            if leads:
                note += f"；另附 {len(leads)} 条仅文本相似的线索，待核实"
        return Recommendation(
            below_evidence_bar=below,
            note=note,
            leads=leads,
            region_id=region.id if region else None,
            region_name=region.name if region else None,
            chain_id=chain_id,
            link_id=link_id,
            gap=gap,
            query_text=q.text,
            scorer="reranker" if self.reranker is not None else self.scorer,
            candidates=cands,
            excluded_residents=excluded,
            took_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    def recommend_region(
        self, region: str, book: RegionBook, k: int = 10, max_gaps: int = 10, tenant: str | None = None,
        filters: Filters | None = None, chain: str | None = None,
    ) -> list[Recommendation]:
        """Diagnose a region's gaps and return a shortlist for each of its top ``max_gaps`` gaps."""
        reg = book.get(region, tenant)
        gm = diagnose(reg, self.catalogue, chain=chain, book=book)
        self.prefetch_needs([(g.chain_id, g.link_id) for g in gm.gaps[:max_gaps]])
        out = []
        for g in gm.gaps[:max_gaps]:
            req = RecommendRequest(
                region=reg.id, chain=g.chain_id, link=g.link_id, gap_type=g.type, k=k, tenant=tenant,
                filters=filters or Filters(),
            )
            out.append(self.recommend(req, book))
        return out

    def _makes_any(self, i: int, links: dict[str, float]) -> bool:
        """The firm makes one of ``links``: a confident, non-trade mapping from ≥ 5% of revenue (or shares unknown)."""
        return any(
            m.link_id in links and m.score >= 0.8 and m.method != "trade" and (m.share is None or m.share >= MIN_MAKER_SHARE)
            for m in self.enterprises_[i].links
        )

    def _links_in_text(self, text: str, chain_id: str | None) -> list[str]:
        found: list[str] = []
        for phrase in _phrases(text):
            for m in self.mapper.map_product(phrase)[:2]:
                if chain_id is None or m.link_id in self.catalogue.chains[chain_id].link_ids:
                    found.append(m.link_id)
        return list(dict.fromkeys(found))

    def _rank(
        self, q: NeedQuery, mask: np.ndarray, region: Region | None, aiding: set[str], k: int,
        present: dict[int, str] | None = None,
    ) -> tuple[list[Candidate], int, list[Candidate]]:
        """The top ``k`` candidates that clear the evidence bar, how many pooled candidates did not, and the
        unverified leads: when fewer than ``k`` clear it, pooled firms with one strong text signal only
        (:func:`scoring.text_hint`), ranked apart and marked 待核实 — never mixed into the candidates."""
        pool, F, lists = self._pool(q, mask, region, aiding)
        if not pool:
            return [], 0, []
        if not self.evidence_bar:
            return self._ranked(pool, F, lists, q, region, aiding, k, present), 0, []
        known = np.array([any(p.share is not None for p in self.enterprises_[i].products) for i in pool], dtype=bool)
        ok = evidence_bar(F, shares_known=known)
        if q.link_id is None and q.chain_id:  # a chain-level need: confidently making one of the chain's own links
            own = {lid: 1.0 for lid in self.catalogue.chains[q.chain_id].own_link_ids}
            ok |= np.array([self._makes_any(i, own) for i in pool], dtype=bool)
        below = int((~ok).sum())
        sub = [i for i, keep in zip(pool, ok) if keep]
        out = self._ranked(sub, F[ok], lists, q, region, aiding, k, present) if sub else []
        leads: list[Candidate] = []
        hint = text_hint(F) & ~ok
        if len(out) < k and hint.any():
            keys = self._dedupe_keys()
            taken = {key for c in out for key in keys[self.id_to_idx_[c.enterprise_id]]}
            rows = [j for j, h in enumerate(hint) if h and not taken & set(keys[pool[j]])]
            if rows:
                leads = self._ranked([pool[j] for j in rows], F[rows], lists, q, region, aiding, k - len(out),
                                     present, lead=True)  # fmt: skip
        return out, below, leads

    def _ranked(
        self, pool: list[int], F: np.ndarray, lists, q: NeedQuery, region: Region | None, aiding: set[str], k: int,
        present: dict[int, str] | None, lead: bool = False,
    ) -> list[Candidate]:
        """Score, diversify and explain the top ``k`` of ``pool`` (rows of ``F``)."""
        idx = np.array(pool)
        if self.reranker is not None:
            scores = self.reranker.predict(F)
            contrib = self.reranker.contributions(F)
        elif self.scorer == "blend":
            learned = self.ltr.model_scores(F) if self.ltr is not None and self.blend.ltr else None
            scores, contrib = blend_scores(F, self.blend, learned)
        else:
            scores, contrib = weighted_scores(F, self.weights)
        order = self._diversify(idx, scores, k)
        list_sets = {s: set(lst) for s, lst in lists.items()}
        out = []
        for rank, j in enumerate(order, start=1):
            i = pool[j]
            feats = {f: round(float(F[j, c]), 4) for c, f in enumerate(FEATURES)}
            srcs = [s for s, st in list_sets.items() if i in st]
            c = self._explain(rank, i, float(scores[j]), feats, contrib[j], q, region, aiding, srcs,
                              presence=(present or {}).get(i))  # fmt: skip
            if lead:
                c.evidence_strength, c.strength_rule = "weak", "仅文本相似，未找到产品或关联依据"
                c.reasons.insert(0, "线索待核实：仅文本相似，未找到生产该环节产品或关联业务的依据")
            out.append(c)
        return out


def _phrases(text: str) -> list[str]:
    import re

    parts = re.split(r"[，,、;；。/()（）\s]+|及|和|与", normalize_text(text))
    return [p for p in parts if 2 <= len(p) <= 20][:20]
