"""The fitted corpus of the recommender: profile vectors, vector and lexical indexes, per-firm arrays, and
incremental updates."""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from matcher.errors import InvalidRequestError, NotFittedError
from matcher.gc_pause import paused_gc
from matcher.knowledge.geo import province_short
from matcher.ranking.product_space import ProductSpace
from matcher.ranking.profile_text import profile_text
from matcher.records import Enterprise
from matcher.text import clean_text, normalize_company_name, tokenize

logger = logging.getLogger(__name__)

__all__ = ["FittedCorpus", "PreparedUpdate"]


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
    upsert_texts: list[str] = field(default_factory=list)  # profile passages of the upserts (char TF-IDF)


class FittedCorpus:
    """The corpus side of :class:`~matcher.ranking.recommender.Recommender`: fitting (profile embeddings, vector
    and lexical indexes, per-firm arrays) and incremental updates swapped in atomically.

    A mixin: it relies on the recommender's ``catalogue``, ``embedder``, ``mapper`` and ``index_factory``.
    """

    # ------------------------------------------------------------------------------------ fitting
    def fit(
        self,
        enterprises: Sequence[Enterprise],
        vectors: np.ndarray | None = None,
        progress: Callable[[int, int], None] | None = None,
        cache=None,
    ) -> Self:
        """Map links (where missing), embed profiles (unless ``vectors`` given) and build the indexes."""
        with paused_gc():  # millions of acyclic objects: collections would rescan the growing corpus
            return self._fit(enterprises, vectors, progress, cache)

    def _fit(self, enterprises: Sequence[Enterprise], vectors: np.ndarray | None, progress, cache) -> Self:
        from index.char_tfidf import CharTfidfIndex
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
        passages = [profile_text(e, self.catalogue) for e in ents]  # once: embedded and read by the TF-IDF
        if vectors is None:
            vectors = self._embed_passages(ents, progress, cache, passages)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ents), self.embedder.dim):
            raise InvalidRequestError(
                "vectors", vectors.shape, f"expected ({len(ents)}, {self.embedder.dim})"
            )
        self.vectors_ = vectors
        # Flat or HNSW by size at each fit; an update never rebuilds Flat as HNSW (a full graph build:
        # seconds, in the swap under the write lock): past the threshold it stays exact Flat until a fit
        self.vindex_ = VectorIndex(self.embedder.dim, factory=self.index_factory, grow_to_hnsw=False)
        self.vindex_.add([e.id for e in ents], vectors)
        self.lindex_ = LexicalIndex()
        self.lindex_.build([e.id for e in ents], [self._doc_tokens(e) for e in ents])
        self.tfidf_ = CharTfidfIndex().build(
            [e.id for e in ents], [self._tfidf_text(e, t) for e, t in zip(ents, passages, strict=True)]
        )
        self.space_ = ProductSpace().fit(
            [[(m.link_id, m.score, m.share) for m in e.links] for e in ents], [e.sw_industry for e in ents]
        )
        self._build_arrays()
        self.changed_since_fit_ = (
            0  # firms upserted or removed since: corpus statistics drift until the next fit
        )
        self._qcache: OrderedDict[str, np.ndarray] = OrderedDict()  # shared by shallow copies (ablations)
        self._qlock = threading.Lock()
        logger.info("recommender fitted on %d enterprises in %.1fs", len(ents), time.perf_counter() - t0)
        return self

    def _embed_passages(
        self, ents: Sequence[Enterprise], progress, cache, texts: list[str] | None = None
    ) -> np.ndarray:
        texts = texts if texts is not None else [profile_text(e, self.catalogue) for e in ents]
        out = np.zeros((len(texts), self.embedder.dim), dtype=np.float32)
        todo = list(range(len(texts)))
        if not getattr(self.embedder, "cache_worthy", True):
            cache = None  # encoding is cheaper than the cache's look-up and write
        if cache is not None:
            found = cache.get_many(self.embedder.id, texts)
            todo = []
            for i, v in enumerate(found):
                if v is None:
                    todo.append(i)
                else:
                    out[i] = v
        batch = 64 if cache is not None or getattr(self.embedder, "cache_worthy", True) else 2048
        for start in range(0, len(todo), batch):
            idx = todo[start : start + batch]
            vecs = self.embedder.encode_passages([texts[i] for i in idx])
            out[idx] = vecs
            if cache is not None:
                cache.put_many(self.embedder.id, [texts[i] for i in idx], vecs)
            if progress:
                progress(min(start + batch, len(todo)), len(todo))
        return out

    def update(self, upserts: Sequence[Enterprise], removals: Sequence[str] = (), cache=None) -> None:
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
        with paused_gc():
            return self._prepare_update(upserts, removals, cache)

    def _prepare_update(
        self, upserts: Sequence[Enterprise], removals: Sequence[str], cache
    ) -> PreparedUpdate:
        self._check_fitted()
        gone = {r for r in removals if r in self.id_to_idx_}
        ups = list({e.id: e for e in upserts}.values())  # a firm upserted twice in one batch: the last wins
        for e in ups:
            e.links = self.mapper.map(e)
        passages = [profile_text(e, self.catalogue) for e in ups]
        vecs = (
            self._embed_passages(ups, None, cache, passages)
            if ups
            else np.zeros((0, self.embedder.dim), np.float32)
        )
        texts = [self._tfidf_text(e, t) for e, t in zip(ups, passages, strict=True)]
        if not gone:
            return self._prepare_upserts(ups, vecs, texts)
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
        unchanged = {
            e.id: self.id_to_idx_[e.id] for e in ents if e.id not in changed and e.id in self.id_to_idx_
        }
        return PreparedUpdate(
            enterprises=ents, vectors=np.ascontiguousarray(vectors, dtype=np.float32), id_to_idx=pos,
            arrays=self._arrays(ents, unchanged), upsert_ids=[e.id for e in ups], upsert_vectors=vecs,
            upsert_tokens=[self._doc_tokens(e) for e in ups], removed=sorted(gone),
            upsert_texts=texts,
        )  # fmt: skip

    def _prepare_upserts(self, ups: list[Enterprise], vecs: np.ndarray, texts: list[str]) -> PreparedUpdate:
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
            upsert_texts=texts,
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
        fictional = np.concatenate([self.fictional_, np.zeros(grow, dtype=bool)])
        industry_code = np.concatenate([self.industry_code_, np.full(grow, -1, dtype=np.int32)])
        delisted = np.concatenate([self.delisted_, np.zeros(grow, dtype=bool)])
        authored = np.concatenate([self.authored_, np.zeros(grow, dtype=bool)])
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
            for name, value in zip(
                ("province_", "group_", "norm_name_", "industry_tokens_"), feats, strict=True
            ):
                lists[name][i] = value
            emp[i] = e.employees if e.employees else np.nan
            listed[i] = e.listed
            fictional[i], authored[i] = e.fictional, e.authored
            industry_code[i] = self._industry_code(e)
            delisted[i] = _delisted(e)
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
            "fictional_": fictional, "authored_": authored, "industry_code_": industry_code, "delisted_": delisted,
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
        tfidf = self.__dict__.get("tfidf_")
        if tfidf is not None:
            tfidf.remove(prepared.removed)
            tfidf.upsert(
                prepared.upsert_ids,
                prepared.upsert_texts
                or [
                    self._tfidf_text(e)
                    for e in (prepared.enterprises[prepared.id_to_idx[d]] for d in prepared.upsert_ids)
                ],
            )
        self.enterprises_ = prepared.enterprises
        self.vectors_ = prepared.vectors
        self.changed_since_fit_ = (
            self.__dict__.get("changed_since_fit_", 0) + len(prepared.upsert_ids) + len(prepared.removed)
        )
        if prepared.replace_rows:
            self.vectors_[prepared.replace_rows] = prepared.replace_vectors
        self.id_to_idx_ = prepared.id_to_idx
        for name, value in prepared.arrays.items():
            setattr(self, name, value)
        logger.info(
            "recommender updated: %d upserted, %d removed", len(prepared.upsert_ids), len(prepared.removed)
        )

    def _tfidf_text(self, e: Enterprise, passage: str | None = None) -> str:
        """The profile passage (``passage`` when already built) as the char TF-IDF reads it (the matcher's clean
        form, lower-cased)."""
        return clean_text(passage if passage is not None else profile_text(e, self.catalogue)).lower()

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
        out["fictional_"] = np.array([e.fictional for e in ents], dtype=bool)
        out["authored_"] = np.array([e.authored for e in ents], dtype=bool)
        out["industry_code_"] = np.array([self._industry_code(e) for e in ents], dtype=np.int32)
        out["delisted_"] = np.array([_delisted(e) for e in ents], dtype=bool)
        out["tenant_"] = [e.tenant for e in ents]
        by_industry: dict[str, frozenset[str]] = {}  # a few hundred distinct industries: tokenise each once
        province, group, norm_name, industry = [], [], [], []
        for e in ents:
            old = reuse.get(e.id)
            if old is not None:
                feats = (
                    self.province_[old],
                    self.group_[old],
                    self.norm_name_[old],
                    self.industry_tokens_[old],
                )
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
        out["tenant_code_"] = np.array(
            [codes[t] if t is not None else 0 for t in out["tenant_"]], dtype=np.int32
        )
        postings: dict[str, list[tuple[int, float, float]]] = {}
        for i, e in enumerate(ents):
            for m in e.links:
                postings.setdefault(m.link_id, []).append((i, m.score, m.share or 0.0))
        out["postings_"] = postings
        out["posted_links_"] = [tuple(m.link_id for m in e.links) for e in ents]
        out["n_"] = n
        return out

    def _industry_code(self, e: Enterprise) -> int:
        """Row of the firm's industry in the product space's industry table (-1: unknown or no space)."""
        space = self.__dict__.get("space_")
        return space.industry_pos_.get(e.sw_industry or "", -1) if space is not None else -1

    @staticmethod
    def _firm_features(
        e: Enterprise, by_industry: dict[str, frozenset[str]]
    ) -> tuple[Any, str, str, frozenset]:
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


def _delisted(e: Enterprise) -> bool:
    """The firm's shares were delisted (退市): left out of results unless a filter asks for them."""
    return e.extra.get("listing_status") == "delisted"


def _capacity(emp: np.ndarray, listed: np.ndarray) -> np.ndarray:
    """Capacity = percentile of employees within the corpus (unknown → 0.3), plus 0.1 for a listed firm."""
    known = np.sort(emp[~np.isnan(emp)])
    if known.size:
        pct = np.searchsorted(known, np.nan_to_num(emp), side="right") / known.size
    else:
        pct = np.zeros(len(emp))
    pct = np.where(np.isnan(emp), 0.3, pct)
    return np.clip(0.9 * pct + 0.1 * listed, 0, 1).astype(np.float32)
