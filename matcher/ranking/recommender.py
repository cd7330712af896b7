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
from matcher.knowledge.chain_products import chain_named_products
from matcher.knowledge.gaps import LocatedFn, diagnose, residents_in_scope
from matcher.knowledge.geo import province_short
from matcher.knowledge.located import located_lookup
from matcher.knowledge.mapping import MAKER_SCORE, LinkMapper
from matcher.knowledge.regions import RegionBook
from matcher.ranking.candidates import CandidateSources, SourceDepth
from matcher.ranking.corpus import FittedCorpus, PreparedUpdate
from matcher.ranking.diversity import Diversity
from matcher.ranking.explain import Explanations
from matcher.ranking.presence import Presence
from matcher.ranking.query import NeedQuery, build_query, master_links_of
from matcher.ranking.recommendation import Candidate, Filters, Recommendation, RecommendRequest
from matcher.ranking.scoring import (
    EVIDENCE_BAR,
    EXPANSION_BAR,
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
        if link_id is None and chain_id is not None and req.text.strip():
            link_id = self._link_named(req.text, chain_id)  # "煤制烯烃" in the 现代煤化工 chain is that link's need
        scope = residents_in_scope(region, book) if region is not None else []
        residents = [r for r, _ in scope]
        gap: Gap | None = None
        extra_links: dict[str, float] = {}
        if region is not None and chain_id and region.id != "adhoc":
            # a need named at this level keeps the gap's context even when the gap is a sub-region's own
            gm = diagnose(region, self.catalogue, chain=chain_id, book=book, include_delegated=True,
                          located=self.located_for(book, req.tenant))  # fmt: skip
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
        cands, below, expansions, leads = self._rank(q, mask, region, aiding_provs, req.k,
                                                     present if keep_present else {})  # fmt: skip
        note = None
        if len(cands) < req.k and (below or expansions):
            note = f"仅找到 {len(cands)} 家有依据的候选（另有 {below} 家证据不足，未列出）"
            if expansions:
                note += f"；另附 {len(expansions)} 家可由上下游或相近业务延伸进入的延伸候选"
            if leads:
                note += f"；另附 {len(leads)} 条仅文本相似的线索，待核实"
        return Recommendation(
            below_evidence_bar=below,
            note=note,
            expansions=expansions,
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
        gm = diagnose(reg, self.catalogue, chain=chain, book=book, located=self.located_for(book, tenant))
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
        """The firm makes one of ``links``: a confident, non-trade mapping from ≥ MIN_MAKER_SHARE of revenue (or shares unknown)."""
        return any(
            m.link_id in links and m.score >= MAKER_SCORE and m.method != "trade" and (m.share is None or m.share >= MIN_MAKER_SHARE)
            for m in self.enterprises_[i].links
        )

    def industry_share(self, q: NeedQuery, pool: list[int]) -> np.ndarray | None:
        """Per pooled row, the share of the firm's industry peers making the need's link (None without a link or a
        product space)."""
        space = self.__dict__.get("space_")
        if space is None or not q.link_id or getattr(space, "industry_share_", None) is None:
            return None
        j = space.link_pos_.get(q.link_id)
        if j is None or not space.industry_share_.shape[0]:
            return np.zeros(len(pool))
        codes = self.industry_code_[np.asarray(pool, dtype=np.int64)]
        return np.where(codes >= 0, space.industry_share_[np.maximum(codes, 0), j], 0.0)

    def _chain_products(self, i: int, chain_id: str) -> list[tuple[str, float | None]]:
        """The firm's segments naming the chain itself (:func:`~matcher.knowledge.chain_products.chain_named_products`)."""
        return chain_named_products(self.catalogue, self.enterprises_[i], chain_id, MIN_MAKER_SHARE)

    def located_for(self, book: RegionBook | None, tenant: str | None = None) -> LocatedFn:
        """Corpus firms located in a region, per link (:func:`~matcher.knowledge.located.located_presence`), read
        from the fitted corpus — so a need's gap context sees the same presence as ``chainmatch gaps`` does over
        the store (准油股份 in 克拉玛依 makes 油田技术服务 present there). Firms grouped by province once per corpus
        state; a tenant sees the shared firms and its own."""
        key = (id(self.enterprises_), self.n_)
        memo = self.__dict__.get("_by_province")
        if memo is None or memo[0] != key:
            groups: dict[str, list] = {}
            for e in self.enterprises_:
                if e.province and not e.fictional:
                    groups.setdefault(province_short(e.province) or e.province, []).append(e)
            memo = (key, groups)
            self.__dict__["_by_province"] = memo
        groups = memo[1]

        def firms_in(province: str) -> list:
            return [e for e in groups.get(province_short(province) or province, []) if e.tenant in (None, tenant)]

        return located_lookup(firms_in, self.catalogue, book)

    def _producing_links(self, chain_id: str, links: set[str]) -> set[str]:
        """``links`` without the chain's supporting links — equipment (GB/T 34/35) and services — unless the
        chain itself is an equipment chain: asked for "石化", an officer means refiners and chemical makers, not the
        drilling-equipment or oilfield-service firms that also serve the chain (ask for those links by name)."""

        def supporting(lid: str) -> bool:
            codes = self.catalogue.links[lid].gbt
            return bool(codes) and all(c[:2] in ("34", "35") or c == "1120" or c[:1] >= "5" for c in codes)

        chain = self.catalogue.chains[chain_id]
        equipment = any(w in chain.name for w in ("装备", "设备", "机械"))  # 风电装备产业链: its machines are its products
        if equipment or sum(supporting(lid) for lid in chain.own_link_ids) * 2 >= len(chain.own_link_ids):
            return links
        kept = {lid for lid in links if not supporting(lid)}
        return kept or links

    def _trades(self, i: int, link_id: str) -> bool:
        """The firm's match on the link is a trade line (its own words: 铝棒贸易)."""
        return any(m.link_id == link_id and m.method == "trade" for m in self.enterprises_[i].links)

    def _maps_confidently(self, i: int) -> bool:
        """The firm's own products map confidently (≥ 0.8, not as trade) to some catalogue link."""
        return any(m.score >= MAKER_SCORE and m.method != "trade" for m in self.enterprises_[i].links)

    def _link_named(self, text: str, chain_id: str) -> str | None:
        """The chain's link the whole free text names (a confident, non-trade mapping of the text as one phrase),
        else None: a need like "煤制烯烃" is that link's need, a project description is not."""
        members = set(self.catalogue.chains[chain_id].link_ids)
        phrase = normalize_text(text)
        if not 2 <= len(phrase) <= 12:
            return None
        best = next(iter(self.mapper.map_product(phrase)), None)
        if best is not None and best.link_id in members and best.score >= 0.9 and best.method != "trade":
            return best.link_id
        return None

    def _links_in_text(self, text: str, chain_id: str | None) -> list[str]:
        """Links the officer's words name: confident mappings (≥ MAKER_SCORE) of its phrases — a loose token match
        ("正极补锂添加剂" ~ 饲料添加剂 by 添加剂) names no link."""
        found: list[str] = []
        for phrase in _phrases(text):
            for m in self.mapper.map_product(phrase)[:2]:
                if m.score < MAKER_SCORE:
                    continue
                if chain_id is None or m.link_id in self.catalogue.chains[chain_id].link_ids:
                    found.append(m.link_id)
        return list(dict.fromkeys(found))

    def _rank(
        self, q: NeedQuery, mask: np.ndarray, region: Region | None, aiding: set[str], k: int,
        present: dict[int, str] | None = None,
    ) -> tuple[list[Candidate], int, list[Candidate], list[Candidate]]:
        """The top ``k`` candidates that clear the evidence bar, how many pooled candidates cleared nothing, and —
        when fewer than ``k`` clear it — the expansion candidates (:data:`scoring.EXPANSION_BAR`: could enter the
        link from next to it, marked 延伸候选) and the unverified leads (:func:`scoring.text_hint`, marked 待核实),
        each ranked apart and never mixed into the candidates."""
        pool, F, lists = self._pool(q, mask, region, aiding, local=present or ())
        if not pool:
            return [], 0, [], []
        if not self.evidence_bar:
            return self._ranked(pool, F, lists, q, region, aiding, k, present), 0, [], []
        known = np.array([any(p.share is not None for p in self.enterprises_[i].products) for i in pool], dtype=bool)
        # A chain-level need reads making a link from the links it aims at (below), not from link_fit or text
        # agreement, which also score the chain's equipment and service firms ("锂电池" ~ "锂电池智能装备")
        chain_level = q.link_id is None and q.chain_id is not None
        drop = "link_fit" if chain_level else "master" if q.link_id is not None else ""
        bar = {f: t for f, t in EVIDENCE_BAR.items() if f != drop}
        mapped = np.array([self._maps_confidently(i) for i in pool], dtype=bool)
        ok = evidence_bar(F, bar, shares_known=known, portfolio_known=mapped, text={} if chain_level else None,
                          industry_share=self.industry_share(q, pool))  # fmt: skip
        if q.link_id is not None:  # a firm that says it trades the link (铝棒贸易 47%) is no maker of it, whatever else
            ok &= ~np.array([self._trades(i, q.link_id) for i in pool], dtype=bool)
        if chain_level:  # a chain-level need: confidently making one of the links it aims at —
            # the region's gaps in the chain (a link already made there needs no newcomer), else the chain's own links
            chain = self.catalogue.chains[q.chain_id]
            aimed = {lid for lid, w in q.target_links.items() if w >= 0.5} & set(chain.own_link_ids)
            chain_own = {lid: 1.0 for lid in self._producing_links(q.chain_id, set(chain.own_link_ids))}
            own = {lid: 1.0 for lid in self._producing_links(q.chain_id, aimed)} if aimed else chain_own
            ok |= np.array([self._makes_any(i, own) for i in pool], dtype=bool)
            if present:  # a local firm making any of the chain's products is the first to grow (增资扩产)
                ok |= np.array([i in present and self._makes_any(i, chain_own) for i in pool], dtype=bool)
            # a segment naming the chain itself (有机硅制品 37%) is making the chain's products
            ok |= np.array([bool(self._chain_products(i, q.chain_id)) for i in pool], dtype=bool)
        sub = [i for i, keep in zip(pool, ok, strict=True) if keep]
        out = self._ranked(sub, F[ok], lists, q, region, aiding, k, present) if sub else []
        if q.link_id is not None:
            expand = evidence_bar(F, EXPANSION_BAR, text={}, vertical_forward=self.vertical_share(q, pool, F, onsite=False)) & ~ok
        elif q.chain_id is not None:  # a chain-level need: a firm expanding in the chain elsewhere (#19 signals)
            expand = evidence_bar(F, {"sig_chain": EXPANSION_BAR["sig_chain"]}, text={}) & ~ok
        else:
            expand = np.zeros(len(pool), dtype=bool)  # fmt: skip
        hint = text_hint(F) & ~ok & ~expand
        below = int((~ok & ~expand).sum())
        keys = self._dedupe_keys()
        taken = {key for c in out for key in keys[self.id_to_idx_[c.enterprise_id]]}
        args = (pool, F, lists, q, region, aiding)
        expansions = self._apart(*args, k - len(out), present, expand, taken, "expansion")
        taken |= {key for c in expansions for key in keys[self.id_to_idx_[c.enterprise_id]]}
        leads = self._apart(*args, k - len(out) - len(expansions), present, hint, taken, "lead")
        return out, below, expansions, leads

    def _apart(
        self, pool: list[int], F: np.ndarray, lists, q: NeedQuery, region: Region | None, aiding: set[str], k: int,
        present: dict[int, str] | None, rows_ok: np.ndarray, taken: set, kind: str,
    ) -> list[Candidate]:
        """Rank the pooled rows of ``rows_ok`` apart (not already listed under one of the ``taken`` keys)."""
        if k <= 0 or not rows_ok.any():
            return []
        keys = self._dedupe_keys()
        rows = [j for j, h in enumerate(rows_ok) if h and not taken & set(keys[pool[j]])]
        if not rows:
            return []
        return self._ranked([pool[j] for j in rows], F[rows], lists, q, region, aiding, k, present, apart=kind)

    def _ranked(
        self, pool: list[int], F: np.ndarray, lists, q: NeedQuery, region: Region | None, aiding: set[str], k: int,
        present: dict[int, str] | None, apart: str | None = None,
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
        local = np.array([i in present for i in pool], dtype=bool) if present and not apart else None
        if local is not None and local.any():  # a need that keeps firms on site (强链, no stated type): the
            # region's own makers come first — growing them (增资扩产) is the officer's first move — best score first
            lift = np.where(local, float(scores.max() - scores.min()) + 1.0, 0.0)
            order = self._diversify(idx, scores + lift, k)
        else:
            order = self._diversify(idx, scores, k)
        list_sets = {s: set(lst) for s, lst in lists.items()}
        out = []
        for rank, j in enumerate(order, start=1):
            i = pool[j]
            feats = {f: round(float(F[j, c]), 4) for c, f in enumerate(FEATURES)}
            srcs = [s for s, st in list_sets.items() if i in st]
            c = self._explain(rank, i, float(scores[j]), feats, contrib[j], q, region, aiding, srcs,
                              presence=(present or {}).get(i))  # fmt: skip
            if apart == "lead":
                c.evidence_strength, c.strength_rule = "weak", "仅文本相似，未找到产品或关联依据"
                c.reasons.insert(0, "线索待核实：仅文本相似，未找到生产该环节产品或关联业务的依据")
            elif apart == "expansion":
                c.evidence_strength, c.strength_rule = "weak", f"未见该环节产品占收入 {MIN_MAKER_SHARE:.0%} 以上：上下游或相近业务延伸候选"
                c.reasons.insert(0, f"延伸候选：未见该环节产品占收入 {MIN_MAKER_SHARE:.0%} 以上，依据是上下游或相近业务（可延伸进入）")
            out.append(c)
        return out


def _phrases(text: str) -> list[str]:
    import re

    parts = re.split(r"[，,、;；。/()（）\s]+|及|和|与", normalize_text(text))
    return [p for p in parts if 2 <= len(p) <= 20][:20]
