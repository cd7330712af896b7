"""Candidate sources of the recommender (dense, lexical, chain graph) and the features of each candidate."""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from matcher.knowledge.geo import distance_km, province_short
from matcher.ranking.query import NeedQuery, build_query, phrase_tokens
from matcher.ranking.recommendation import Filters
from matcher.ranking.scoring import FEATURES, ONSITE_FLOWS, UTILITY_FLOWS, minmax, rrf
from matcher.ranking.signals_features import SIGNAL_FEATURES, SignalNeed
from matcher.records import Region
from matcher.text import clean_text, normalize_company_name

logger = logging.getLogger(__name__)

__all__ = ["SIZE_BRACKETS", "CandidateSources", "SourceDepth"]

SIZE_BRACKETS = {"大": (1000, math.inf), "中": (300, 1000), "小": (0, 300)}


@dataclass
class SourceDepth:
    """How many candidates each source contributes before fusion."""

    dense: int = 200
    lexical: int = 200
    graph: int = 300
    tfidf: int = 200
    related: int = 100


class CandidateSources:
    """Candidates and their features for :class:`~matcher.ranking.recommender.Recommender`: hard filters, the
    dense / lexical / chain-graph sources fused by reciprocal rank, and the feature matrix (ordered as FEATURES).

    A mixin over the fitted corpus arrays (:class:`~matcher.ranking.corpus.FittedCorpus`).
    """

    # ------------------------------------------------------------------------------------ ranking
    def _mask(self, f: Filters, tenant: str | None, residents, aiding: set[str]) -> tuple[np.ndarray, int]:
        n = self.n_
        mask = np.ones(n, dtype=bool)
        # a real shared corpus is loaded (not only the embedded demo): fictional examples never compete with it
        if n and ((~self.authored_) & (self.tenant_code_ == 0)).any():
            mask &= ~self.fictional_
        if self.tenant_codes_:  # private rows exist: the shared corpus (code 0) plus the caller's own
            code = self.tenant_codes_.get(tenant, -1) if tenant is not None else -1
            mask &= (self.tenant_code_ == 0) | (self.tenant_code_ == code)
        if f.provinces:
            mask &= self._province_mask({province_short(p) or p for p in f.provinces})
        if f.aiding_only:
            mask &= self._province_mask(set(aiding))
        if f.size:
            emp = np.nan_to_num(self.employees_, nan=-1)
            ok = np.zeros(n, dtype=bool)
            for s in f.size:
                lo, hi = SIZE_BRACKETS[s]
                ok |= (emp >= lo) & (emp < hi)
            mask &= ok
        if f.listed_only:
            mask &= self.listed_
        if not f.include_delisted:
            mask &= ~self.delisted_
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

    def _province_mask(self, allowed: set) -> np.ndarray:
        """Firms whose province is in ``allowed``: province codes are computed once per fitted array."""
        cached = getattr(self, "_province_codes", None)
        if cached is None or cached[0] is not self.province_:
            names: dict = {}
            codes = np.fromiter((names.setdefault(p, len(names)) for p in self.province_), np.int64,
                                len(self.province_))
            cached = self._province_codes = (self.province_, names, codes)
        names, codes = cached[1], cached[2]
        wanted = np.array([names[p] for p in allowed if p in names], dtype=np.int64)
        return np.isin(codes, wanted)

    def _id_array(self) -> np.ndarray:
        """Firm ids as a numpy object array (one per fitted enterprise list)."""
        cached = getattr(self, "_ids_cache", None)
        if cached is None or cached[0] is not self.enterprises_:
            ids = np.array([e.id for e in self.enterprises_], dtype=object)
            cached = self._ids_cache = (self.enterprises_, ids)
        return cached[1]

    def _csr(self, lid: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """A link's postings as arrays (rows, score, share), cached while its posting list is unchanged."""
        plist = self.postings_.get(lid)
        if not plist:
            return None
        cache = getattr(self, "_csr_cache", None)
        if cache is None:
            cache = self._csr_cache = {}
        hit = cache.get(lid)
        if hit is None or hit[0] is not plist:
            rows = np.fromiter((p[0] for p in plist), np.int64, len(plist))
            score = np.fromiter((p[1] for p in plist), np.float64, len(plist))
            sh = np.fromiter((p[2] for p in plist), np.float64, len(plist))
            hit = cache[lid] = (plist, (rows, score, sh))
        return hit[1]

    def _link_fit(self, target_links: dict[str, float]) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Per firm: the best weighted link score, the best share on a main target link (w ≥ 0.99), and the
        firms with link fit ≥ 0.45 ordered by (fit, share, capacity) desc, ties in order of first posting."""
        n = self.n_
        link_fit, share = np.zeros(n), np.zeros(n)
        rows_all, first_all = [], []
        offset = 0
        for lid, w in target_links.items():
            arrays = self._csr(lid)
            if arrays is None:
                continue
            rows, score, sh = arrays
            v = w * score
            np.maximum.at(link_fit, rows, v)
            if w >= 0.99:
                np.maximum.at(share, rows, sh)
            pos = v > 0.0
            rows_all.append(rows[pos])
            first_all.append(np.flatnonzero(pos) + offset)
            offset += len(rows)
        if not rows_all:
            return link_fit, share, []
        rows_cat, first_cat = np.concatenate(rows_all), np.concatenate(first_all)
        seen, where = np.unique(rows_cat, return_index=True)  # first occurrence of each firm
        keep = link_fit[seen] >= 0.45
        cand, first = seen[keep], first_cat[where[keep]]
        order = np.lexsort((first, -self.capacity_[cand], -share[cand], -link_fit[cand]))
        return link_fit, share, cand[order].tolist()

    def _chain_named_rows(self, chain_id: str) -> list[int]:
        """Firms with a segment naming the chain itself (番茄业, 有机硅制品), largest share first; cached per corpus
        state. Their products map to no single link, so the link postings never pool them."""
        key = (id(self.enterprises_), self.n_)
        memo = self.__dict__.get("_chain_named")
        if memo is None or memo[0] != key:
            memo = self.__dict__["_chain_named"] = (key, {})
        rows = memo[1].get(chain_id)
        if rows is None:
            found = [(i, named[0][1] or 0.0) for i in range(self.n_) if (named := self._chain_products(i, chain_id))]
            rows = memo[1][chain_id] = [i for i, _ in sorted(found, key=lambda x: -x[1])]
        return rows

    def _pool(
        self, q: NeedQuery, mask: np.ndarray, region: Region | None, aiding: set[str],
        local: Collection[int] = (),
    ) -> tuple[list[int], np.ndarray, dict[str, list[int]]]:
        """Candidates of all sources (corpus positions), their feature matrix (ordered as FEATURES), the lists.
        ``local``: firms already on site that a need keeping them pools whatever their text (金力永磁 for 赣州·稀土)
        when they have a posting on one of the need's target links."""
        allowed_frac = float(mask.mean()) if mask.size else 0.0
        if allowed_frac == 0.0:
            return [], np.zeros((0, len(FEATURES)), np.float32), {}
        allow_ids = None if allowed_frac > 0.98 else self._id_array()[mask].tolist()
        lists: dict[str, list[int]] = {}
        qv = None
        if "dense" in self.sources or self._wants("dense"):
            qv = self._query_vector(q.text or " ")
        if "dense" in self.sources:
            hits = self.vindex_.search(qv[None, :], self.depth.dense + 20, allow=allow_ids)[0]
            lists["dense"] = [i for i in (self.id_to_idx_[h[0]] for h in hits) if mask[i]][: self.depth.dense]
        bm25_scores: dict[int, float] = {}
        if q.tokens and ("lexical" in self.sources or self._wants("bm25")):
            hits = self.lindex_.search(q.tokens, self.depth.lexical + 20, allow=allow_ids)
            ranked = [(self.id_to_idx_[h[0]], h[1]) for h in hits if mask[self.id_to_idx_[h[0]]]]
            ranked = ranked[: self.depth.lexical]
            bm25_scores = dict(ranked)
            if "lexical" in self.sources:
                lists["lexical"] = [i for i, _ in ranked]
        tf_all = None
        tf = self.__dict__.get("tfidf_")
        if tf is not None and q.text and self._wants("tfidf"):
            tf_all = tf.caller_scores(clean_text(q.text).lower(), self.id_to_idx_, self.n_)
            if "tfidf" in self.sources:
                lists["tfidf"] = _top_rows(np.where(mask, tf_all, 0.0), self.depth.tfidf)
        related = self._related_scores(q, mask) if self._wants("related", "ind_related", "vertical") else {}
        if "related" in self.sources and related:
            ranked_rel = sorted(related, key=lambda i: (-related[i][0], -self.capacity_[i], i))
            lists["related"] = [i for i in ranked_rel if related[i][0] >= 0.1][: self.depth.related]
        link_fit, share, graph_order = self._link_fit(q.target_links)
        if "graph" in self.sources:
            graph = [i for i in graph_order if mask[i]][: self.depth.graph]
            if q.link_id is None and q.chain_id:  # a chain-level need: firms whose segments name the chain itself
                seen = set(graph)
                graph += [i for i in self._chain_named_rows(q.chain_id) if mask[i] and i not in seen]
            lists["graph"] = graph
        self._signal_source(q, mask, lists)
        if local:
            lists["local"] = [i for i in sorted(local) if mask[i] and link_fit[i] > 0.0]
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
        F[:, col["link_fit"]] = np.minimum(link_fit[idx], 1.0)
        F[:, col["share"]] = np.sqrt(np.minimum(share[idx], 1.0))
        F[:, col["master"]] = [self._master_relation(i, q)[0] for i in pool]
        F[:, col["capacity"]] = self.capacity_[idx]
        F[:, col["aiding"]] = [1.0 if self.province_[i] in aiding else 0.0 for i in pool]
        rprov = region.province if region is not None else None
        F[:, col["proximity"]] = [_proximity(self.province_[i], rprov) for i in pool]
        ind_terms = self._industry_terms(q)
        F[:, col["industry"]] = [1.0 if self.industry_tokens_[i] & ind_terms else 0.0 for i in pool]
        F[:, col["rrf"]] = fused / (max(len(lists), 1) / 61.0)
        if tf_all is not None:
            F[:, col["tfidf"]] = tf_all[idx]
        if q.link_id and self.__dict__.get("space_") is not None and self._wants("related", "ind_related", "vertical"):
            rel = related
            F[:, col["related"]] = [rel[i][0] if i in rel else self._density(i, q.link_id)[0] for i in pool]
            codes = self.industry_code_[idx]
            ri = self.space_.RI_
            j = self.space_.link_pos_.get(q.link_id)
            if j is not None and ri.size:
                F[:, col["ind_related"]] = np.where(codes >= 0, ri[np.maximum(codes, 0), j], 0.0)
            nb = self._vertical_links(q)
            F[:, col["vertical"]] = [self._vertical(i, nb) for i in pool]
        self._signal_columns(F, col, pool, q, region)
        return pool, F, lists

    def _wants(self, *features: str) -> bool:
        """Whether a request needs these features: a source or a weight uses them, a learned model reads every
        feature, or ``all_features`` is set (training pools, evaluation)."""
        if self.reranker is not None or getattr(self, "all_features", False):
            return True
        if getattr(self, "scorer", "weighted") == "blend" and set(features) & {"tfidf", "dense", "bm25"}:
            return True
        blend = getattr(self, "blend", None) if getattr(self, "scorer", "weighted") == "blend" else None
        return any(
            f in self.sources or getattr(self.weights, f, 0.0) > 0 or (blend is not None and getattr(blend, f, 0.0) > 0)
            for f in features
        )

    def _related_scores(self, q: NeedQuery, mask: np.ndarray) -> dict[int, tuple[float, str | None]]:
        """Relatedness density to the gap link of every allowed firm making one of its most related links."""
        space = self.__dict__.get("space_")
        if not q.link_id or space is None:
            return {}
        rel = list(space.related_links(q.link_id))[:RELATED_LINKS]
        touched = {i for lid in rel for i, s, _ in self.postings_.get(lid, ()) if s >= space.min_score and mask[i]}
        out: dict[int, tuple[float, str | None]] = {}
        for i in touched:
            d, best = self._density(i, q.link_id)
            out[i] = (d, best.link_id if best is not None else None)
        return out

    def _density(self, i: int, link_id: str):
        return self.space_.density([(m.link_id, m.score, m.share) for m in self.enterprises_[i].links], link_id)

    def _vertical_links(self, q: NeedQuery) -> frozenset[str]:
        memo = q.__dict__.get("_vertical_links")
        if memo is None:
            memo = frozenset(self.catalogue.neighbours(q.link_id, q.chain_id)) if q.link_id else frozenset()
            q.__dict__["_vertical_links"] = memo
        return memo

    def _joined_links(self, q: NeedQuery, onsite: bool) -> frozenset[str]:
        """The links next to the gap link (either way): joined by an on-site flow (:data:`ONSITE_FLOWS` — a smelter
        casting 铝棒 from its 铝水, a wafer maker pulling its own 硅棒), or by any material flow (utilities such as
        power left out: a power company is not a polysilicon entrant)."""
        key = "_onsite_links" if onsite else "_material_links"
        memo = q.__dict__.get(key)
        if memo is None:
            edges = self.catalogue.suppliers(q.link_id, q.chain_id) + self.catalogue.customers(q.link_id, q.chain_id) if q.link_id else []

            def keep(flow: str) -> bool:
                return any(u in flow for u in ONSITE_FLOWS) if onsite else not any(u in flow for u in UTILITY_FLOWS)

            memo = frozenset((e.source if e.target == q.link_id else e.target) for e in edges if keep(e.flow))
            q.__dict__[key] = memo
        return memo

    def vertical_share(self, q: NeedQuery, pool: list[int], F: np.ndarray, onsite: bool) -> np.ndarray:
        """Per pooled row, the firm's revenue share in the links :meth:`_joined_links` names (0 where the
        ``vertical`` feature is 0: the share can only be smaller)."""
        out = np.zeros(len(pool))
        col = F[:, FEATURES.index("vertical")]
        links = self._joined_links(q, onsite)
        for j, i in enumerate(pool):
            if col[j] > 0 and links:
                out[j] = self._vertical(i, links)
        return out

    def _vertical(self, i: int, links: frozenset[str]) -> float:
        """Revenue share of the firm in the given (neighbouring) links, unknown shares counted 0.1, capped at 1."""
        if not links:
            return 0.0
        tot = sum(m.share if m.share else 0.1 for m in self.enterprises_[i].links if m.link_id in links and m.score >= 0.8)
        return min(1.0, tot)

    def _recent_expanders(self, as_of: date | None, days: int = 730) -> np.ndarray:
        """Corpus rows whose firm (or group) has an expansion event in the ``days`` before ``as_of``."""
        book = getattr(self, "signals", None)
        out = np.zeros(self.n_, dtype=bool)
        if book is None:
            return out
        end = as_of or date.today()
        start = end - timedelta(days=days)
        active_firms, active_groups = book.active(start, end)
        for fid in active_firms:
            i = self.id_to_idx_.get(fid)
            if i is not None:
                out[i] = True
        if active_groups:
            for i, e in enumerate(self.enterprises_):
                if e.parent_group in active_groups:
                    out[i] = True
        return out

    def _signal_source(self, q: NeedQuery, mask: np.ndarray, lists: dict[str, list[int]]) -> None:
        """With a signal book loaded: firms that expanded on the need's links before as_of join the pool."""
        book = getattr(self, "signals", None)
        if book is None or not (q.target_links or q.chain_id) or not self._wants(*SIGNAL_FEATURES):
            return  # signals weigh 0 in the shipped blend: they then change no one's place, not even the pool
        links = dict(q.target_links)
        if q.chain_id and q.chain_id in self.catalogue.chains:  # the chain's other links count a little
            for lid in self.catalogue.chains[q.chain_id].link_ids:
                links.setdefault(lid, 0.3)
        found = (self.id_to_idx_.get(f) for f in book.candidates(links, q.as_of or date.today()))
        lists["signals"] = [i for i in found if i is not None and mask[i]]

    def _signal_columns(self, F: np.ndarray, col: dict[str, int], pool: list[int], q: NeedQuery, region) -> None:
        """The sig_* columns from the recommender's signal book (none loaded: left at 0)."""
        book = getattr(self, "signals", None)
        if book is None:
            return
        need = SignalNeed(q.chain_id, q.link_id, region.province if region is not None else None,
                          q.as_of or date.today())  # fmt: skip
        firms = [(self.enterprises_[i].id, self.enterprises_[i].parent_group) for i in pool]
        F[:, [col[f] for f in SIGNAL_FEATURES]] = book.features(firms, need)

    def prefetch_needs(self, needs: Sequence[tuple[str | None, str | None]], free_text: str = "") -> None:
        """Embed the queries of several (chain, link) needs in one batch (a whole region's gaps at once)."""
        if "dense" not in self.sources and not self._wants("dense"):
            return
        texts = [build_query(self.catalogue, c, lk, None, free_text).text or " " for c, lk in needs]
        cache = self.__dict__.setdefault("_qcache", OrderedDict())
        lock = self.__dict__.setdefault("_qlock", threading.Lock())
        with lock:
            todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if not todo:
            return
        vecs = self._encode_queries(todo)
        with lock:
            for t, v in zip(todo, vecs, strict=True):
                cache[t] = v
            while len(cache) > 2048:
                cache.popitem(last=False)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors of ``texts``: from the persistent embedding cache (``query_cache``, set by the engine)
        where a process already embedded them, else from the model (and then cached for the next process)."""
        store = self.__dict__.get("query_cache")
        if store is None:
            return self.embedder.encode_queries(texts).astype(np.float32)
        space = f"{self.embedder.id}:query"
        found = store.get_many(space, texts)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            vecs = self.embedder.encode_queries([texts[i] for i in todo]).astype(np.float32)
            store.put_many(space, [texts[i] for i in todo], vecs)
            for i, v in zip(todo, vecs, strict=True):
                found[i] = v
        return np.stack(found).astype(np.float32)

    def _query_vector(self, text: str) -> np.ndarray:
        """The need's embedding, from a small LRU cache (repeated needs and ablations cost nothing)."""
        cache = self.__dict__.setdefault("_qcache", OrderedDict())
        lock = self.__dict__.setdefault("_qlock", threading.Lock())
        with lock:
            v = cache.get(text)
            if v is not None:
                cache.move_to_end(text)
                return v
        v = self._encode_queries([text])[0]
        with lock:
            cache[text] = v
            if len(cache) > 2048:
                cache.popitem(last=False)
        return v

    def _industry_terms(self, q: NeedQuery) -> set[str]:
        terms: set[str] = set()
        if q.chain_id:
            terms |= set(phrase_tokens(self.catalogue.chains[q.chain_id].name))
        if q.link_id:
            link = self.catalogue.links[q.link_id]
            for t in (link.name, *link.aliases):
                terms |= set(phrase_tokens(t))
        return {t for t in terms if len(t) >= 2 and t not in {"产业", "产业链", "制造"}}

    def _master_relation(self, i: int, q: NeedQuery) -> tuple[float, str | None]:
        if not q.master_links:
            return 0.0, None
        # only links relevant to the need count: the gap link, its neighbours, or links named in the need
        relations = self._master_relations(q)
        best: tuple[int, str] | None = None
        for m in self.enterprises_[i].links:
            if m.score < 0.8 or m.method == "trade" or (m.share is not None and m.share < 0.05):
                continue  # a weak name match, a trader or a sliver of revenue never claims a 链主 relation
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


RELATED_LINKS = 20  # most related links whose makers are scored as expansion candidates


def _top_rows(scores: np.ndarray, k: int) -> list[int]:
    """Rows of the ``k`` highest positive scores, best first (ties by row)."""
    k = min(k, int((scores > 0).sum()))
    if k <= 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k]
    return [int(i) for i in top[np.lexsort((top, -scores[top]))]]


@lru_cache(maxsize=4096)
def _proximity(prov: str | None, region_prov: str | None) -> float:
    d = distance_km(prov, region_prov)
    return 0.0 if d is None else max(0.0, 1.0 - d / 4000.0)
