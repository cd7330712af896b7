"""Search and tuning of the vector index."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import faiss
import numpy as np

from index.faiss_utils import (
    EF_CANDIDATES,
    NPROBE_CANDIDATES,
    IdFilter,
    Metric,
    _empty,
    _extract_ivf,
    _pad,
    _recall,
    set_threads,
)

__all__ = ["VectorSearch"]

logger = logging.getLogger(__name__)


class VectorSearch:
    """Search of :class:`~index.vector.VectorIndex`: unfiltered, filtered by selectivity (exact over the allowed
    vectors, or FAISS with an id selector and raised efSearch/nprobe), and efSearch/nprobe tuning to a recall target.

    A mixin: it relies on the index's FAISS object, label maps and raw vector access.
    """

    # --- search -------------------------------------------------------------------------------------------
    def make_filter(self, ids: Iterable[str]) -> IdFilter:
        """Prepare an allow-list once for many searches (ids not in the index are ignored)."""
        id_tuple = tuple(str(i) for i in ids)
        labels = np.unique(
            np.array([self._label_of[i] for i in id_tuple if i in self._label_of], dtype=np.int64)
        )
        mask = np.zeros(max(self._next_label, 1), dtype=bool)
        mask[labels] = True
        bitmap = np.packbits(mask, bitorder="little")
        return IdFilter(ids=id_tuple, labels=labels, bitmap=bitmap, state=self._state)

    def search(
        self, queries: Any, k: int, allow: Sequence[str] | IdFilter | None = None
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` nearest ids of each query, best first, optionally restricted to ``allow``.

        Args:
            queries: ``(nq, dim)`` or ``(dim,)`` float array.
            k: Results per query (fewer if fewer ids qualify).
            allow: Ids a result may have (or a prepared :class:`IdFilter`); None = all.

        Returns:
            One list of ``(id, score)`` per query.

        Raises:
            ValueError: ``k <= 0``.
            IndexDimensionError: the queries' dimension is not ``dim``.
        """
        dist, lab = self.search_labels(queries, k, allow)
        out: list[list[tuple[str, float]]] = []
        id_of = self._id_of
        for drow, irow in zip(dist, lab, strict=True):
            out.append([(id_of[int(i)], float(d)) for d, i in zip(drow, irow, strict=True) if i >= 0])
        return out

    def search_labels(
        self, queries: Any, k: int, allow: Sequence[str] | IdFilter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Low-level :meth:`search`: ``(dist, lab)`` arrays of scores and int64 labels (-1 = no result)."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, received {k!r}")
        q = self._matrix(queries, "queries")
        nq = len(q)
        if self._index is None or len(self) == 0:
            return _empty(nq, k, self.metric)
        flt: IdFilter | None = None
        if allow is not None:
            flt = allow if isinstance(allow, IdFilter) else self.make_filter(allow)
            if flt.state != self._state:
                flt = self.make_filter(flt.ids)
            if len(flt.labels) == 0:
                return _empty(nq, k, self.metric)
        set_threads(nq)
        if flt is None:
            return self._search_all(q, k)
        n_allow, n_live = len(flt.labels), len(self)
        if n_allow >= n_live:
            return self._search_all(q, k)
        if n_allow <= max(self.exact_filter_min, self.exact_filter_fraction * n_live):
            return self._exact(q, k, flt.labels)
        return self._search_selected(q, k, flt, n_allow / n_live)

    def _params(self, ef: int | None = None, nprobe: int | None = None, sel: Any = None) -> Any:
        if self._kind == "hnsw":
            p = faiss.SearchParametersHNSW()
            p.efSearch = int(ef or self.ef_search)
        elif self._kind == "ivf":
            p = faiss.SearchParametersIVF()
            p.nprobe = int(nprobe or self.nprobe)
        else:
            p = faiss.SearchParameters()
        if sel is not None:
            p.sel = sel
        return p

    def _search_all(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k_eff = min(k, len(self))
        if self._kind == "hnsw" and self._tombstones:
            live = len(self) / self._index.ntotal
            ef = min(4096, math.ceil(max(self.ef_search, k_eff) / max(live, 1e-3)))
            dist, lab = self._index.search(
                q, k_eff, params=self._params(ef=ef, sel=self._tombstone_selector())
            )
        elif self._kind in ("hnsw", "ivf"):
            dist, lab = self._index.search(q, k_eff, params=self._params())
        else:
            dist, lab = self._index.search(q, k_eff)
        return _pad(dist, lab, k, self.metric)

    def _tombstone_selector(self) -> Any:
        if self._tomb_sel is None:
            mask = np.zeros(self._next_label, dtype=bool)
            mask[np.fromiter(self._tombstones, dtype=np.int64)] = True
            bits = np.packbits(mask, bitorder="little")
            dead = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
            self._tomb_sel = (faiss.IDSelectorNot(dead), dead, bits)  # keep the bitmap alive
        return self._tomb_sel[0]

    def _search_selected(
        self, q: np.ndarray, k: int, flt: IdFilter, fraction: float
    ) -> tuple[np.ndarray, np.ndarray]:
        sel = faiss.IDSelectorBitmap(len(flt.bitmap), faiss.swig_ptr(flt.bitmap))
        k_eff = min(k, len(flt.labels))
        if self._kind == "hnsw":
            ef = min(8192, math.ceil(max(self.ef_search, k_eff) / fraction))
            params = self._params(ef=ef, sel=sel)
        elif self._kind == "ivf":
            nlist = _extract_ivf(self._index).nlist
            params = self._params(nprobe=min(nlist, math.ceil(self.nprobe / fraction)), sel=sel)
        else:
            params = self._params(sel=sel)
        dist, lab = self._index.search(q, k_eff, params=params)
        del sel  # params referenced it only during the call
        return _pad(dist, lab, k, self.metric)

    def _exact(self, q: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores over the given labels only."""
        x = self._fetch(labels)
        scores = q @ x.T
        if self.metric is Metric.L2:
            scores = (q * q).sum(1, keepdims=True) + (x * x).sum(1)[None, :] - 2 * scores
            order_scores = scores
        else:
            order_scores = -scores
        k_eff = min(k, len(labels))
        part = (
            np.argpartition(order_scores, k_eff - 1, axis=1)[:, :k_eff]
            if k_eff < len(labels)
            else (np.tile(np.arange(len(labels)), (len(q), 1)))
        )
        rows = np.arange(len(q))[:, None]
        order = np.argsort(order_scores[rows, part], axis=1, kind="stable")
        top = part[rows, order]
        return _pad(scores[rows, top].astype(np.float32), labels[top], k, self.metric)

    # --- tuning -------------------------------------------------------------------------------------------
    def tune(self, k: int = 50, n_queries: int = 200, seed: int = 0) -> dict[str, float]:
        """Set efSearch (HNSW) or nprobe (IVF) to the smallest value reaching ``target_recall``@k.

        Queries are stored vectors plus Gaussian noise; ground truth is an exact scan. Settings given
        explicitly in the constructor are kept. Returns the chosen setting and its measured recall.
        """
        if self._kind not in ("hnsw", "ivf") or len(self) < 2 * k:
            return {}
        fixed = self._ef_fixed if self._kind == "hnsw" else self._nprobe_fixed
        if fixed:
            return {}
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        live = np.fromiter(self._id_of.keys(), dtype=np.int64, count=len(self._id_of))
        sample = self._fetch(rng.choice(live, size=min(n_queries, len(live)), replace=False))
        scale = float(sample.std())  # noise as large as the vectors: harder than near-duplicates
        q = (sample + rng.normal(0, scale, sample.shape)).astype(np.float32)
        if self.metric is Metric.IP:
            q /= np.linalg.norm(q, axis=1, keepdims=True) / np.linalg.norm(sample, axis=1, keepdims=True)
        truth = self._exact_truth(q, k, live)
        set_threads(len(q))
        candidates = EF_CANDIDATES if self._kind == "hnsw" else NPROBE_CANDIDATES
        if self._kind == "ivf":
            candidates = tuple(c for c in candidates if c <= _extract_ivf(self._index).nlist)
        chosen, recall = candidates[-1], 0.0
        for c in candidates:
            if self._kind == "hnsw" and c < 64:
                continue
            params = self._params(ef=c) if self._kind == "hnsw" else self._params(nprobe=c)
            if self._tombstones:
                params.sel = self._tombstone_selector()
            _, lab = self._index.search(q, k, params=params)
            recall = _recall(lab, truth)
            if recall >= min(1.0, self.target_recall + 0.01):
                chosen = c
                break
        if self._kind == "hnsw":
            self.ef_search = int(chosen)
            faiss.downcast_index(self._index.index).hnsw.efSearch = self.ef_search
        else:
            self.nprobe = int(chosen)
            _extract_ivf(self._index).nprobe = self.nprobe
        key = "ef_search" if self._kind == "hnsw" else "nprobe"
        logger.info("tuned %s=%d (recall@%d %.3f on %d noisy stored vectors, %.1f s)",
                    key, chosen, k, recall, len(q), time.perf_counter() - t0)  # fmt: skip
        return {key: float(chosen), "recall": recall}

    def _exact_truth(self, q: np.ndarray, k: int, labels: np.ndarray, chunk: int = 65536) -> np.ndarray:
        best_s = np.full((len(q), 0), 0, dtype=np.float32)
        best_l = np.full((len(q), 0), -1, dtype=np.int64)
        for start in range(0, len(labels), chunk):
            dist, lab = self._exact(q, k, labels[start : start + chunk])
            best_s = np.hstack([best_s, dist])
            best_l = np.hstack([best_l, lab])
        key = best_s if self.metric is Metric.L2 else -best_s
        order = np.argsort(key, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(best_l, order, axis=1)
