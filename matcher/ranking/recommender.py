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

import bisect
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from matcher.errors import InvalidRequestError, NotFittedError
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gaps import diagnose, residents_in_scope
from matcher.knowledge.geo import distance_km, province_short
from matcher.knowledge.mapping import LinkMapper
from matcher.knowledge.regions import RegionBook
from matcher.ranking.profile_text import profile_text
from matcher.ranking.query import NeedQuery, build_query, master_links_of
from matcher.ranking.recommendation import Candidate, Filters, Recommendation, RecommendRequest
from matcher.ranking.scoring import FEATURES, ScoringWeights, evidence_strength, minmax, rrf, weighted_scores
from matcher.records import Enterprise, Gap, Region, RegionLevel
from matcher.text import normalize_company_name, normalize_text, tokenize

logger = logging.getLogger(__name__)

SIZE_BRACKETS = {"大": (1000, math.inf), "中": (300, 1000), "小": (0, 300)}


@dataclass
class SourceDepth:
    """How many candidates each source contributes before fusion."""

    dense: int = 200
    lexical: int = 200
    graph: int = 300



@dataclass
class PreparedUpdate:
    """An update computed by :meth:`Recommender.prepare_update`, ready to swap in with ``apply_update``."""

    enterprises: list[Enterprise]
    vectors: np.ndarray
    id_to_idx: dict[str, int]
    upsert_tokens: list[list[str]]  # lexical tokens of the upserted profiles
    arrays: dict[str, Any]
    upsert_ids: list[str]
    upsert_vectors: np.ndarray
    removed: list[str]
    replace_rows: list[int] = field(default_factory=list)  # rows of ``vectors`` written at the swap
    replace_vectors: np.ndarray | None = None

class Recommender:
    """Ranks enterprises for a region's chain gaps.

    Args:
        catalogue: the chain catalogue.
        embedder: any object with ``id``, ``dim``, ``encode_queries`` and ``encode_passages`` (models.embedders).
        weights: weights of the default scorer.
        sources: which candidate sources are on (ablations): subset of {"dense", "lexical", "graph"}.
        depth: candidates per source.
        index_factory: FAISS factory for the vector index ("auto" = Flat for small corpora, HNSW above).
        diversity: MMR trade-off λ (1.0 = relevance only) and group dedupe on/off.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        embedder,
        weights: ScoringWeights | None = None,
        sources: Sequence[str] = ("dense", "lexical", "graph"),
        depth: SourceDepth | None = None,
        index_factory: str = "auto",
        mmr_lambda: float = 0.85,
        group_dedupe: bool = True,
        reranker=None,
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
        self.mapper = LinkMapper(catalogue)

    # ------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        enterprises: Sequence[Enterprise],
        vectors: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
        cache=None,
    ) -> Recommender:
        """Map links (where missing), embed profiles (unless ``vectors`` given) and build the indexes."""
        from index.lexical import LexicalIndex
        from index.vector import VectorIndex

        t0 = time.perf_counter()
        ents = list(enterprises)
        if not ents:
            raise InvalidRequestError("enterprises", 0, "cannot fit on an empty corpus")
        for e in ents:
            if not e.links:
                e.links = self.mapper.map(e)
        self.enterprises_ = ents
        self.id_to_idx_ = {e.id: i for i, e in enumerate(ents)}
        if vectors is None:
            vectors = self._embed_passages(ents, progress, cache)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ents), self.embedder.dim):
            raise InvalidRequestError("vectors", vectors.shape, f"expected ({len(ents)}, {self.embedder.dim})")
        self.vectors_ = vectors
        self.vindex_ = VectorIndex(self.embedder.dim, factory=self.index_factory)
        self.vindex_.add([e.id for e in ents], vectors)
        self.lindex_ = LexicalIndex()
        self.lindex_.build([e.id for e in ents], [self._doc_tokens(e) for e in ents])
        self._build_arrays()
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()  # shared by shallow copies (ablations)
        self._qlock = threading.Lock()
        logger.info("recommender fitted on %d enterprises in %.1fs", len(ents), time.perf_counter() - t0)
        return self

    def _embed_passages(self, ents: Sequence[Enterprise], progress, cache) -> np.ndarray:
        texts = [profile_text(e, self.catalogue) for e in ents]
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        todo = list(range(len(texts)))
        if cache is not None:
            found = cache.get_many(self.embedder.id, texts)
            todo = []
            for i, v in enumerate(found):
                if v is None:
                    todo.append(i)
                else:
                    out[i] = v
        batch = 64
        for start in range(0, len(todo), batch):
            idx = todo[start : start + batch]
            vecs = self.embedder.encode_passages([texts[i] for i in idx])
            out[idx] = vecs
            if cache is not None:
                cache.put_many(self.embedder.id, [texts[i] for i in idx], vecs)
            if progress:
                progress(min(start + batch, len(todo)), len(todo))
        return out

    def update(
        self, upserts: Sequence[Enterprise], removals: Sequence[str] = (), cache=None
    ) -> None:
        """Replace / add / remove enterprises without a rebuild.

        Changed profiles are re-mapped and re-embedded (the cache makes unchanged text free); the vector and
        lexical indexes are updated in place; the per-firm arrays are patched at the changed positions (an
        update with removals recomputes them, linear in the corpus, no model). Same as
        ``apply_update(prepare_update(...))``.
        """
        self.apply_update(self.prepare_update(upserts, removals, cache))

    def prepare_update(
        self, upserts: Sequence[Enterprise], removals: Sequence[str] = (), cache=None
    ) -> PreparedUpdate:
        """The costly part of :meth:`update` (mapping, embedding, tokens, per-firm arrays), computed into new
        objects without touching the fitted state: searches can run meanwhile. Prepare and apply one update at
        a time (each prepared update builds on the state it saw)."""
        self._check_fitted()
        gone = {r for r in removals if r in self.id_to_idx_}
        ups = list({e.id: e for e in upserts}.values())  # a firm upserted twice in one batch: the last wins
        for e in ups:
            e.links = self.mapper.map(e)
        vecs = self._embed_passages(ups, None, cache) if ups else np.zeros((0, self.embedder.dim), np.float32)
        if not gone:
            return self._prepare_upserts(ups, vecs)
        ents = list(self.enterprises_)
        vectors = self.vectors_
        keep = [i for i, e in enumerate(ents) if e.id not in gone]
        ents = [ents[i] for i in keep]
        vectors = vectors[keep]
        pos = {e.id: i for i, e in enumerate(ents)}
        new_rows = []
        for e, v in zip(ups, vecs, strict=True):
            if e.id in pos:
                ents[pos[e.id]] = e
                vectors[pos[e.id]] = v
            else:
                pos[e.id] = len(ents)
                ents.append(e)
                new_rows.append(v)
        if new_rows:
            vectors = np.vstack([vectors, np.asarray(new_rows, dtype=np.float32)])
        # only the changed profiles are tokenised again (jieba over the whole corpus took seconds per upsert)
        changed = {e.id for e in ups}
        unchanged = {e.id: self.id_to_idx_[e.id] for e in ents if e.id not in changed and e.id in self.id_to_idx_}
        return PreparedUpdate(
            enterprises=ents, vectors=np.ascontiguousarray(vectors, dtype=np.float32), id_to_idx=pos,
            arrays=self._arrays(ents, unchanged), upsert_ids=[e.id for e in ups], upsert_vectors=vecs,
            upsert_tokens=[self._doc_tokens(e) for e in ups], removed=sorted(gone),
        )  # fmt: skip

    def _prepare_upserts(self, ups: list[Enterprise], vecs: np.ndarray) -> PreparedUpdate:
        """Upserts without removals: positions do not move, so the corpus lists and arrays are copied at C
        speed and patched at the changed positions only (O(changed) Python work; the full path is O(corpus)).
        New vectors go into spare rows of a capacity buffer; replaced rows are written at the swap."""
        ents = list(self.enterprises_)
        pos = dict(self.id_to_idx_)
        n_old = len(ents)
        changed: list[int] = []
        replace_rows: list[int] = []
        replace_idx: list[int] = []
        append_idx: list[int] = []
        for j, e in enumerate(ups):
            i = pos.get(e.id)
            if i is None:
                i = pos[e.id] = len(ents)
                ents.append(e)
                append_idx.append(j)
            else:
                ents[i] = e
                replace_rows.append(i)
                replace_idx.append(j)
            changed.append(i)
        vectors = self._grown_vectors(vecs[append_idx]) if append_idx else self.vectors_
        return PreparedUpdate(
            enterprises=ents, vectors=vectors, id_to_idx=pos, arrays=self._patched_arrays(ents, changed, n_old),
            upsert_ids=[e.id for e in ups], upsert_vectors=vecs, upsert_tokens=[self._doc_tokens(e) for e in ups],
            removed=[], replace_rows=replace_rows, replace_vectors=vecs[replace_idx] if replace_idx else None,
        )  # fmt: skip

    def _grown_vectors(self, extra: np.ndarray) -> np.ndarray:
        """The current vectors plus ``extra`` rows, as a view of a buffer with spare capacity: the new rows are
        written past the rows searches read, so the live array is untouched and an append copies nothing
        until the buffer is full (then it doubles)."""
        cur = self.vectors_
        n, m = len(cur), len(extra)
        buf = self.__dict__.get("_vector_buffer")
        if buf is None or cur.base is not buf or n + m > len(buf) or not np.shares_memory(cur[:1], buf[:1]):
            buf = np.empty((max(2 * (n + m), 1024), cur.shape[1]), dtype=np.float32)
            buf[:n] = cur
            self.__dict__["_vector_buffer"] = buf
        buf[n : n + m] = extra
        return buf[: n + m]

    def _patched_arrays(self, ents: list[Enterprise], changed: list[int], n_old: int) -> dict[str, Any]:
        """:meth:`_arrays` for ``ents`` where only the firms at ``changed`` positions differ from the fitted
        ones (replaced below ``n_old``, appended above); equal to a full :meth:`_arrays` (tests check)."""
        n, grow = len(ents), len(ents) - n_old
        lists = {
            name: list(getattr(self, name)) + [None] * grow
            for name in ("province_", "group_", "norm_name_", "industry_tokens_", "tenant_", "posted_links_")
        }
        emp = np.concatenate([self.employees_, np.full(grow, np.nan)])
        listed = np.concatenate([self.listed_, np.zeros(grow, dtype=bool)])
        codes = dict(self.tenant_codes_)
        tenant_code = np.concatenate([self.tenant_code_, np.zeros(grow, dtype=np.int32)])
        postings, by_name = dict(self.postings_), dict(self.by_norm_name_)
        own_p: set[str] = set()
        own_n: set[str] = set()

        def posting(lid: str) -> list:
            if lid not in own_p:  # copy-on-write: the live lists are being searched
                own_p.add(lid)
                postings[lid] = list(postings.get(lid, ()))
            return postings[lid]

        def named(name: str) -> list[int]:
            if name not in own_n:
                own_n.add(name)
                by_name[name] = list(by_name.get(name, ()))
            return by_name[name]

        by_industry: dict[str, frozenset[str]] = {}
        for i in changed:
            if i < n_old:  # drop what the replaced profile was posted under
                for lid in self.posted_links_[i]:
                    lst = posting(lid)
                    lst[:] = [p for p in lst if p[0] != i]
                named(self.norm_name_[i]).remove(i)
            e = ents[i]
            feats = self._firm_features(e, by_industry)
            for name, value in zip(("province_", "group_", "norm_name_", "industry_tokens_"), feats, strict=True):
                lists[name][i] = value
            emp[i] = e.employees if e.employees else np.nan
            listed[i] = e.listed
            lists["tenant_"][i] = e.tenant
            if e.tenant is not None and e.tenant not in codes:
                codes[e.tenant] = len(codes) + 1
            tenant_code[i] = codes[e.tenant] if e.tenant is not None else 0
            lists["posted_links_"][i] = tuple(m.link_id for m in e.links)
            for m in e.links:
                bisect.insort(posting(m.link_id), (i, m.score, m.share or 0.0))
            bisect.insort(named(feats[2]), i)
        for lid in own_p:
            if not postings[lid]:
                del postings[lid]
        for name in own_n:
            if not by_name[name]:
                del by_name[name]
        return {
            **lists, "employees_": emp, "listed_": listed, "capacity_": _capacity(emp, listed),
            "tenant_codes_": codes, "tenant_code_": tenant_code, "postings_": postings, "by_norm_name_": by_name,
            "n_": n,
        }  # fmt: skip

    def apply_update(self, prepared: PreparedUpdate) -> None:
        """Swap a :meth:`prepare_update` result in: the vector and lexical indexes' upserts / removals and new
        references (milliseconds; run it under the lock that keeps searches out)."""
        if prepared.removed:
            self.vindex_.remove(prepared.removed)
        if prepared.upsert_ids:
            self.vindex_.upsert(prepared.upsert_ids, prepared.upsert_vectors)
        # the lexical index changes in place: only the changed documents' postings (sub-millisecond)
        self.lindex_.remove(prepared.removed)
        self.lindex_.upsert(prepared.upsert_ids, prepared.upsert_tokens)
        self.enterprises_ = prepared.enterprises
        self.vectors_ = prepared.vectors
        if prepared.replace_rows:
            self.vectors_[prepared.replace_rows] = prepared.replace_vectors
        self.id_to_idx_ = prepared.id_to_idx
        for name, value in prepared.arrays.items():
            setattr(self, name, value)
        logger.info(
            "recommender updated: %d upserted, %d removed", len(prepared.upsert_ids), len(prepared.removed)
        )

    def _doc_tokens(self, e: Enterprise) -> list[str]:
        parts = [e.name, *e.aliases, *(p.name for p in e.products), e.sw_industry or "", e.scope[:300]]
        return tokenize(" ".join(p for p in parts if p))

    def _build_arrays(self) -> None:
        for name, value in self._arrays(self.enterprises_).items():
            setattr(self, name, value)

    def _arrays(self, ents: list[Enterprise], reuse: dict[str, int] | None = None) -> dict[str, Any]:
        """Per-firm arrays the scorer reads, by attribute name (computed, not assigned).

        ``reuse`` maps the id of an unchanged firm to its row in the fitted arrays: its name, group, province
        and industry features are taken from there instead of normalised again (an update touches a few firms).
        """
        n = len(ents)
        reuse = reuse or {}
        emp = np.array([e.employees if e.employees else np.nan for e in ents], dtype=np.float64)
        listed = np.array([e.listed for e in ents], dtype=bool)
        out: dict[str, Any] = {"employees_": emp, "listed_": listed, "capacity_": _capacity(emp, listed)}
        out["tenant_"] = [e.tenant for e in ents]
        by_industry: dict[str, frozenset[str]] = {}  # a few hundred distinct industries: tokenise each once
        province, group, norm_name, industry = [], [], [], []
        for e in ents:
            old = reuse.get(e.id)
            if old is not None:
                feats = (self.province_[old], self.group_[old], self.norm_name_[old], self.industry_tokens_[old])
            else:
                feats = self._firm_features(e, by_industry)
            province.append(feats[0])
            group.append(feats[1])
            norm_name.append(feats[2])
            industry.append(feats[3])
        out.update(province_=province, group_=group, norm_name_=norm_name, industry_tokens_=industry)
        by_norm_name: dict[str, list[int]] = {}
        for i, name in enumerate(norm_name):
            by_norm_name.setdefault(name, []).append(i)
        out["by_norm_name_"] = by_norm_name
        # tenants as small integer codes (0 = shared corpus) so a request's visibility mask is one numpy op
        codes: dict[str, int] = {}
        for t in out["tenant_"]:
            if t is not None and t not in codes:
                codes[t] = len(codes) + 1
        out["tenant_codes_"] = codes
        out["tenant_code_"] = np.array([codes[t] if t is not None else 0 for t in out["tenant_"]], dtype=np.int32)
        postings: dict[str, list[tuple[int, float, float]]] = {}
        for i, e in enumerate(ents):
            for m in e.links:
                postings.setdefault(m.link_id, []).append((i, m.score, m.share or 0.0))
        out["postings_"] = postings
        out["posted_links_"] = [tuple(m.link_id for m in e.links) for e in ents]
        out["n_"] = n
        return out

    @staticmethod
    def _firm_features(e: Enterprise, by_industry: dict[str, frozenset[str]]) -> tuple[Any, str, str, frozenset]:
        """(province, group, normalised name, industry tokens) of one firm; ``by_industry`` memoises tokens."""
        key = e.sw_industry or ""
        if key not in by_industry:
            by_industry[key] = frozenset(tokenize(key))
        return (
            province_short(e.province),
            normalize_company_name(e.parent_group or e.name),
            normalize_company_name(e.name, strip_region=True),
            by_industry[key],
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "enterprises_"):
            raise NotFittedError("Recommender.fit() (or load) must run before recommend()")

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
            gm = diagnose(region, self.catalogue, chain=chain_id, book=book)
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
        aiding_provs = {p for p in (province_short(a) for a in (aiding or (region.aiding if region else []))) if p}
        mask, excluded = self._mask(req.filters, req.tenant, residents, aiding_provs)
        if return_pool:
            pool, F, _ = self._pool(q, mask, region, aiding_provs)
            return [self.enterprises_[i].id for i in pool], F  # type: ignore[return-value]
        cands = self._rank(q, mask, region, aiding_provs, req.k)
        return Recommendation(
            region_id=region.id if region else None,
            region_name=region.name if region else None,
            chain_id=chain_id,
            link_id=link_id,
            gap=gap,
            query_text=q.text,
            scorer="reranker" if self.reranker is not None else "default",
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

    def _links_in_text(self, text: str, chain_id: str | None) -> list[str]:
        found: list[str] = []
        for phrase in _phrases(text):
            for m in self.mapper.map_product(phrase)[:2]:
                if chain_id is None or m.link_id in self.catalogue.chains[chain_id].link_ids:
                    found.append(m.link_id)
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------------------------------ ranking
    def _mask(self, f: Filters, tenant: str | None, residents, aiding: set[str]) -> tuple[np.ndarray, int]:
        n = self.n_
        mask = np.ones(n, dtype=bool)
        if self.tenant_codes_:  # private rows exist: the shared corpus (code 0) plus the caller's own
            code = self.tenant_codes_.get(tenant, -1) if tenant is not None else -1
            mask &= (self.tenant_code_ == 0) | (self.tenant_code_ == code)
        if f.provinces:
            allowed = {province_short(p) or p for p in f.provinces}
            mask &= np.array([p in allowed for p in self.province_], dtype=bool)
        if f.aiding_only:
            mask &= np.array([p in aiding for p in self.province_], dtype=bool)
        if f.size:
            emp = np.nan_to_num(self.employees_, nan=-1)
            ok = np.zeros(n, dtype=bool)
            for s in f.size:
                lo, hi = SIZE_BRACKETS[s]
                ok |= (emp >= lo) & (emp < hi)
            mask &= ok
        if f.listed_only:
            mask &= self.listed_
        for eid in f.exclude_ids:
            i = self.id_to_idx_.get(eid)
            if i is not None:
                mask[i] = False
        excluded = 0
        if residents:
            rows = {self.id_to_idx_[r.enterprise_id] for r in residents if r.enterprise_id in self.id_to_idx_}
            for r in residents:
                rows.update(self.by_norm_name_.get(normalize_company_name(r.name, strip_region=True), ()))
            for i in rows:
                if mask[i]:
                    excluded += 1
                mask[i] = False
        return mask, excluded

    def _pool(
        self, q: NeedQuery, mask: np.ndarray, region: Region | None, aiding: set[str]
    ) -> tuple[list[int], np.ndarray, dict[str, list[int]]]:
        """Candidates of all sources (corpus positions), their feature matrix (ordered as FEATURES), the lists."""
        allowed_frac = float(mask.mean()) if mask.size else 0.0
        if allowed_frac == 0.0:
            return [], np.zeros((0, len(FEATURES)), np.float32), {}
        allow_ids = None if allowed_frac > 0.98 else [self.enterprises_[i].id for i in np.flatnonzero(mask)]
        lists: dict[str, list[int]] = {}
        qv = None
        if "dense" in self.sources or self.weights.dense > 0 or self.reranker is not None:
            qv = self._query_vector(q.text or " ")
        if "dense" in self.sources:
            hits = self.vindex_.search(qv[None, :], self.depth.dense + 20, allow=allow_ids)[0]
            lists["dense"] = [i for i in (self.id_to_idx_[h[0]] for h in hits) if mask[i]][: self.depth.dense]
        bm25_scores: dict[int, float] = {}
        if q.tokens and ("lexical" in self.sources or self.weights.bm25 > 0 or self.reranker is not None):
            hits = self.lindex_.search(q.tokens, self.depth.lexical + 20, allow=allow_ids)
            ranked = [(self.id_to_idx_[h[0]], h[1]) for h in hits if mask[self.id_to_idx_[h[0]]]]
            ranked = ranked[: self.depth.lexical]
            bm25_scores = dict(ranked)
            if "lexical" in self.sources:
                lists["lexical"] = [i for i, _ in ranked]
        link_fit: dict[int, float] = {}
        share: dict[int, float] = {}
        for lid, w in q.target_links.items():
            for i, s, sh in self.postings_.get(lid, ()):
                v = w * s
                if v > link_fit.get(i, 0.0):
                    link_fit[i] = v
                if w >= 0.99:
                    share[i] = max(share.get(i, 0.0), sh)
        if "graph" in self.sources:
            graph = [i for i in link_fit if mask[i] and link_fit[i] >= 0.45]
            graph.sort(key=lambda i: (-link_fit[i], -share.get(i, 0.0), -self.capacity_[i]))
            lists["graph"] = graph[: self.depth.graph]
        pool = list(dict.fromkeys(i for lst in lists.values() for i in lst))
        if not pool:
            return [], np.zeros((0, len(FEATURES)), np.float32), lists
        pos = {i: j for j, i in enumerate(pool)}
        n = len(pool)
        fused = rrf([[pos[i] for i in lst] for lst in lists.values()], n)
        F = np.zeros((n, len(FEATURES)), dtype=np.float32)
        col = {f: j for j, f in enumerate(FEATURES)}
        idx = np.array(pool)
        if qv is not None:
            F[:, col["dense"]] = minmax(self.vectors_[idx] @ qv)
        if bm25_scores:
            best = max(bm25_scores.values()) or 1.0
            F[:, col["bm25"]] = [bm25_scores.get(i, 0.0) / best for i in pool]
        F[:, col["link_fit"]] = [min(link_fit.get(i, 0.0), 1.0) for i in pool]
        F[:, col["share"]] = [math.sqrt(min(share.get(i, 0.0), 1.0)) for i in pool]
        F[:, col["master"]] = [self._master_relation(i, q)[0] for i in pool]
        F[:, col["capacity"]] = self.capacity_[idx]
        F[:, col["aiding"]] = [1.0 if self.province_[i] in aiding else 0.0 for i in pool]
        rprov = region.province if region is not None else None
        F[:, col["proximity"]] = [_proximity(self.province_[i], rprov) for i in pool]
        ind_terms = self._industry_terms(q)
        F[:, col["industry"]] = [1.0 if self.industry_tokens_[i] & ind_terms else 0.0 for i in pool]
        F[:, col["rrf"]] = fused / (max(len(lists), 1) / 61.0)
        return pool, F, lists

    def _rank(
        self, q: NeedQuery, mask: np.ndarray, region: Region | None, aiding: set[str], k: int
    ) -> list[Candidate]:
        pool, F, lists = self._pool(q, mask, region, aiding)
        if not pool:
            return []
        idx = np.array(pool)
        if self.reranker is not None:
            scores = self.reranker.predict(F)
            contrib = self.reranker.contributions(F)
        else:
            scores, contrib = weighted_scores(F, self.weights)
        order = self._diversify(idx, scores, k)
        list_sets = {s: set(lst) for s, lst in lists.items()}
        out = []
        for rank, j in enumerate(order, start=1):
            i = pool[j]
            feats = {f: round(float(F[j, c]), 4) for c, f in enumerate(FEATURES)}
            srcs = [s for s, st in list_sets.items() if i in st]
            out.append(self._explain(rank, i, float(scores[j]), feats, contrib[j], q, region, aiding, srcs))
        return out

    def prefetch_needs(self, needs: Sequence[tuple[str | None, str | None]], free_text: str = "") -> None:
        """Embed the queries of several (chain, link) needs in one batch (a whole region's gaps at once)."""
        if "dense" not in self.sources and self.weights.dense <= 0 and self.reranker is None:
            return
        texts = [build_query(self.catalogue, c, lk, None, free_text).text or " " for c, lk in needs]
        cache = self.__dict__.setdefault("_qcache", OrderedDict())
        lock = self.__dict__.setdefault("_qlock", threading.Lock())
        with lock:
            todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if not todo:
            return
        vecs = self.embedder.encode_queries(todo).astype(np.float32)
        with lock:
            for t, v in zip(todo, vecs):
                cache[t] = v
            while len(cache) > 2048:
                cache.popitem(last=False)

    def _query_vector(self, text: str) -> np.ndarray:
        """The need's embedding, from a small LRU cache (repeated needs and ablations cost nothing)."""
        cache = self.__dict__.setdefault("_qcache", OrderedDict())
        lock = self.__dict__.setdefault("_qlock", threading.Lock())
        with lock:
            v = cache.get(text)
            if v is not None:
                cache.move_to_end(text)
                return v
        v = self.embedder.encode_queries([text])[0].astype(np.float32)
        with lock:
            cache[text] = v
            if len(cache) > 2048:
                cache.popitem(last=False)
        return v

    def _industry_terms(self, q: NeedQuery) -> set[str]:
        terms: set[str] = set()
        if q.chain_id:
            terms |= set(tokenize(self.catalogue.chains[q.chain_id].name))
        if q.link_id:
            link = self.catalogue.links[q.link_id]
            for t in (link.name, *link.aliases):
                terms |= set(tokenize(t))
        return {t for t in terms if len(t) >= 2 and t not in {"产业", "产业链", "制造"}}

    def _master_relation(self, i: int, q: NeedQuery) -> tuple[float, str | None]:
        if not q.master_links:
            return 0.0, None
        # only links relevant to the need count: the gap link, its neighbours, or links named in the need
        relations = self._master_relations(q)
        best: tuple[int, str] | None = None
        for m in self.enterprises_[i].links:
            hit = relations.get(m.link_id)
            if hit is not None and q.target_links.get(m.link_id, 0.0) >= 0.5 and (best is None or hit < best):
                best = hit
        return (1.0, best[1]) if best is not None else (0.0, None)

    def _master_relations(self, q: NeedQuery) -> dict[str, tuple[int, str]]:
        """Link → (precedence, reason) of every link that can serve the region's 链主 for this need, once per
        query: the first relation in (链主 link, downstream before upstream) order wins, as a scan would."""
        memo = q.__dict__.get("_master_relations")
        if memo is not None:
            return memo
        relations: dict[str, tuple[int, str]] = {}
        order = 0
        for ml in q.master_links:
            names = "、".join(q.master_names.get(ml, []))
            for e in self.catalogue.customers(ml, q.chain_id):
                reason = f"可承接链主{names}的{e.flow or self.catalogue.links[ml].name}（下游配套）"
                relations.setdefault(e.target, (order, reason))
                order += 1
            for e in self.catalogue.suppliers(ml, q.chain_id):
                reason = f"可为链主{names}供应{e.flow or self.catalogue.links[e.source].name}（上游配套）"
                relations.setdefault(e.source, (order, reason))
                order += 1
        q.__dict__["_master_relations"] = relations
        return relations

    def _diversify(self, idx: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
        """Group dedupe (one firm per group) then MMR over profile vectors; returns positions into idx."""
        order = list(np.argsort(-scores, kind="stable"))
        if self.group_dedupe:
            seen: set[str] = set()
            kept = []
            for j in order:
                g = self.group_[idx[j]]
                if g in seen:
                    continue
                seen.add(g)
                kept.append(j)
            order = kept
        if self.mmr_lambda >= 1.0 or len(order) <= 1:
            return order[:k]
        pool = order[: max(3 * k, 30)]
        vecs = self.vectors_[idx[pool]]
        rel = minmax(scores[pool].astype(np.float32))
        chosen: list[int] = []
        max_sim = np.full(len(pool), -1.0, dtype=np.float32)
        available = np.ones(len(pool), dtype=bool)
        for _ in range(min(k, len(pool))):
            mmr = self.mmr_lambda * rel - (1 - self.mmr_lambda) * np.where(max_sim < 0, 0, max_sim)
            mmr[~available] = -np.inf
            p = int(np.argmax(mmr))
            chosen.append(pool[p])
            available[p] = False
            max_sim = np.maximum(max_sim, vecs @ vecs[p])
        return chosen

    def _explain(
        self, rank: int, i: int, score: float, feats: dict[str, float], contrib: np.ndarray, q: NeedQuery,
        region: Region | None, aiding: set[str], sources: list[str],
    ) -> Candidate:
        e = self.enterprises_[i]
        target = q.link_id
        matches = [m for m in e.links if m.link_id == target] if target else []
        if not matches:
            matches = sorted(
                (m for m in e.links if m.link_id in q.target_links),
                key=lambda m: -q.target_links[m.link_id] * m.score,
            )[:2]
        link_id = matches[0].link_id if matches else target
        products = [(m.evidence, m.share) for m in matches if m.evidence][:3]
        rel_score, relation = self._master_relation(i, q)
        strength, rule = evidence_strength(feats, matches[0].method if matches else None)
        prov = self.province_[i]
        aid = f"{prov}为{region.name if region else '该地区'}的产业援疆结对省份" if prov in aiding else None
        reasons = []
        if link_id:
            lname = self.catalogue.links[link_id].name
            if products:
                ps = "、".join(f"{p}（{s:.0%}）" if s else p for p, s in products)
                reasons.append(f"可填补「{lname}」环节：主营{ps}")
            else:
                reasons.append(f"与「{lname}」环节文本相似")
        if relation:
            reasons.append(relation)
        if aid:
            reasons.append(aid)
        if e.listed:
            reasons.append(f"上市公司（{e.stock_code}）")
        if e.employees:
            reasons.append(f"员工约{e.employees}人")
        return Candidate(
            rank=rank,
            enterprise_id=e.id,
            name=e.name,
            province=e.province,
            city=e.city,
            score=round(score, 4),
            link_id=link_id,
            link_name=self.catalogue.links[link_id].name if link_id else None,
            matched_products=products,
            chain_master_relation=relation,
            aiding=aid,
            evidence_strength=strength,
            strength_rule=rule,
            features=feats,
            contributions={f: round(float(c), 4) for f, c in zip(FEATURES, contrib)},
            reasons=reasons,
            sources=sources,
        )


def _capacity(emp: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Capacity = percentile of employees within the corpus (unknown → 0.3), plus 0.1 for a listed firm."""
    known = np.sort(emp[~np.isnan(emp)])
    if known.size:
        pct = np.searchsorted(known, np.nan_to_num(emp), side="right") / known.size
    else:
        pct = np.zeros(len(emp))
    pct = np.where(np.isnan(emp), 0.3, pct)
    return np.clip(0.9 * pct + 0.1 * listed, 0, 1).astype(np.float32)


@lru_cache(maxsize=4096)
def _proximity(prov: str | None, region_prov: str | None) -> float:
    d = distance_km(prov, region_prov)
    return 0.0 if d is None else max(0.0, 1.0 - d / 4000.0)


def _phrases(text: str) -> list[str]:
    import re

    parts = re.split(r"[，,、;；。/()（）\s]+|及|和|与", normalize_text(text))
    return [p for p in parts if 2 <= len(p) <= 20][:20]
