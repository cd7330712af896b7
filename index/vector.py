"""A persistent FAISS vector index with string ids, deletes, filtered search and crash-safe saves.

``VectorIndex(dim, factory="auto")`` is an ``IndexIDMap2(Flat)`` below ``hnsw_threshold`` vectors and an
``IndexIDMap2(HNSWFlat)`` (M 32, efConstruction 200, efSearch tuned to recall@50 ≥ 0.95) above; any FAISS
factory string (``"IVF1024,Flat"``, ``"HNSW64"``, ``"PQ32"`` …) can be configured instead; trained
factories train on the first batch added.

- **Ids.** String ids map to int64 labels handed out in order and never reused (an upsert gets a fresh label);
  the map is saved beside the index.
- **Deletes.** Flat, IVF and flat-code indexes delete in place. HNSW cannot delete: removed labels become
  tombstones, excluded at search time through an ``IDSelectorNot`` (so ``k`` results still come back), and
  :meth:`VectorIndex.compact` rebuilds the graph once they pass ``compact_fraction`` of the index.
- **Filters.** ``search(..., allow=ids)`` picks its path by selectivity: when the allowed set is small
  (≤ ``max(exact_filter_min, exact_filter_fraction · n)``) the allowed vectors are scored exactly (read
  straight from the FAISS storage for Flat/HNSWFlat, reconstructed otherwise); above that, FAISS searches with
  an ``IDSelectorBitmap`` and efSearch (HNSW) or nprobe (IVF) raised in inverse proportion to the fraction
  allowed.
- **Threads.** One OpenMP thread for a single query (a Flat scan is memory-bound; two threads are slower),
  all cores for batches and builds.
- **Persistence.** :meth:`save` writes a new version folder (index, id map, manifest with sha256s) and swaps a
  pointer (:mod:`index.storage`); :meth:`load` verifies checksums and the embedder id.

Scores: inner product (higher is better) for ``metric="ip"``; squared L2 distance (lower is better) for
``"l2"``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from index.checks import as_matrix, id_list
from index.errors import IndexManifestError, IndexTrainingError
from index.storage import load_manifest, save_version

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
IDS_FILE = "ids.json"
EF_CANDIDATES = (16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
NPROBE_CANDIDATES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024)


class Metric(StrEnum):
    """Similarity of a :class:`VectorIndex`."""

    IP = "ip"
    L2 = "l2"

    @classmethod
    def parse(cls, value: str) -> Metric:
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValueError(
                f"unknown metric {value!r}; expected one of: {', '.join(m.value for m in cls)}"
            ) from None

    @property
    def faiss(self) -> int:
        return faiss.METRIC_INNER_PRODUCT if self is Metric.IP else faiss.METRIC_L2


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover
        return max(1, os.cpu_count() or 1)


def set_threads(n_queries: int) -> None:
    """One OpenMP thread for a single query, all cores otherwise."""
    faiss.omp_set_num_threads(1 if n_queries <= 1 else cpu_count())


@dataclass
class IdFilter:
    """A prepared allow-list (labels and a bitmap), reusable across searches of one index state."""

    ids: tuple[str, ...]
    labels: np.ndarray  # sorted unique int64 labels of the ids present in the index
    bitmap: np.ndarray  # uint8, bit ``label`` set for allowed labels (little bit order)
    state: int  # the index's mutation counter when this was made


class VectorIndex:
    """FAISS index over string ids. See the module docstring for the behaviour.

    Args:
        dim: Vector dimension.
        factory: ``"auto"`` (Flat below ``hnsw_threshold``, HNSW above) or a FAISS factory string.
        metric: ``"ip"`` (inner product; use unit vectors for cosine) or ``"l2"``.
        hnsw_threshold: Vector count above which ``"auto"`` switches to HNSW.
        embedder_id: Id of the embedder whose vectors this holds (saved in the manifest, checked on load).
        hnsw_m: HNSW graph degree.
        ef_construction: HNSW efConstruction.
        ef_search: HNSW efSearch; None = tuned after each HNSW build to ``target_recall``@50 (≥ 64).
        nprobe: IVF nprobe; None = tuned after training the same way.
        target_recall: Recall@50 against exact search that tuning aims for.
        exact_filter_fraction: Allowed fraction of the index at or below which a filtered search is exact.
        exact_filter_min: Allowed-set size at or below which a filtered search is always exact.
        compact_fraction: HNSW tombstone fraction that triggers :meth:`compact`.

    Example:
        >>> idx = VectorIndex(384)
        >>> idx.add(["a", "b"], vectors)
        >>> idx.search(query, k=10, allow=["b"])   # [[("b", 0.83)]]
    """

    def __init__(
        self,
        dim: int,
        factory: str = "auto",
        metric: str = "ip",
        hnsw_threshold: int = 50_000,
        *,
        embedder_id: str | None = None,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int | None = None,
        nprobe: int | None = None,
        target_recall: float = 0.95,
        exact_filter_fraction: float = 0.03,
        exact_filter_min: int = 4096,
        compact_fraction: float = 0.25,
    ) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be > 0, received {dim}")
        self.dim = int(dim)
        self.factory = factory.strip() or "auto"
        self.metric = Metric.parse(metric)
        self.hnsw_threshold = int(hnsw_threshold)
        self.embedder_id = embedder_id
        self.hnsw_m = hnsw_m
        self.ef_construction = ef_construction
        self.ef_search = ef_search or 64
        self._ef_fixed = ef_search is not None
        self.nprobe = nprobe or 8
        self._nprobe_fixed = nprobe is not None
        self.target_recall = target_recall
        self.exact_filter_fraction = exact_filter_fraction
        self.exact_filter_min = exact_filter_min
        self.compact_fraction = compact_fraction
        self._index: Any = None
        self._kind: str | None = None  # flat | hnsw | ivf | generic
        self._resolved: str | None = None
        self._can_remove = True
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_label = 0
        self._tombstones: set[int] = set()
        self._rows: np.ndarray | None = None  # label -> storage row (flat storage only), built lazily
        self._tomb_sel: tuple[Any, ...] | None = None
        self._state = 0  # bumped on every mutation

    # --- introspection --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, item: object) -> bool:
        return item in self._label_of

    @property
    def kind(self) -> str | None:
        """``"flat"``, ``"hnsw"``, ``"ivf"`` or ``"generic"`` once built; None while empty."""
        return self._kind

    @property
    def resolved_factory(self) -> str | None:
        """The FAISS structure in use, e.g. ``"IDMap2,Flat"`` or ``"IDMap2,HNSW32,Flat"``."""
        return self._resolved

    @property
    def tombstones(self) -> int:
        """Removed vectors still inside an HNSW graph."""
        return len(self._tombstones)

    @property
    def ids(self) -> list[str]:
        """Ids in the index (insertion order of their current vectors)."""
        return [self._id_of[label] for label in sorted(self._id_of)]

    @property
    def faiss_index(self) -> Any:
        """The underlying FAISS index (None while empty)."""
        return self._index

    def __repr__(self) -> str:
        return (
            f"VectorIndex(dim={self.dim}, factory={self.factory!r}, resolved={self._resolved!r}, "
            f"n={len(self)}, tombstones={len(self._tombstones)})"
        )

    # --- boundary checks ------------------------------------------------------------------------------------
    def _matrix(self, x: Any, what: str) -> np.ndarray:
        return as_matrix(x, self.dim, what)

    @staticmethod
    def _id_list(ids: Sequence[str], n: int) -> list[str]:
        return id_list(ids, n)

    # --- building -----------------------------------------------------------------------------------------
    def _new_index(self, kind: str) -> Any:
        m = self.metric.faiss
        if kind == "flat":
            self._resolved = "IDMap2,Flat"
            return faiss.IndexIDMap2(faiss.IndexFlat(self.dim, m))
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, m)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
            self._resolved = f"IDMap2,HNSW{self.hnsw_m},Flat"
            return faiss.IndexIDMap2(inner)
        raise AssertionError(kind)

    def _create(self, first_batch: np.ndarray) -> None:
        """Create the FAISS index for the first add (training it on that batch if it needs training)."""
        if self.factory.lower() == "auto":
            self._kind = "hnsw" if len(first_batch) > self.hnsw_threshold else "flat"
            self._index = self._new_index(self._kind)
            self._can_remove = self._kind == "flat"
            return
        try:
            idx = faiss.index_factory(self.dim, self.factory, self.metric.faiss)
        except RuntimeError as exc:
            raise ValueError(
                f"invalid FAISS factory string {self.factory!r}: {str(exc).splitlines()[0]}"
            ) from exc
        ivf = _extract_ivf(idx)
        if not idx.is_trained:
            need = ivf.nlist if ivf is not None else 1
            if len(first_batch) < need:
                raise IndexTrainingError(
                    f"factory {self.factory!r} must be trained on at least {need} vectors; "
                    f"the first add has {len(first_batch)}"
                )
            set_threads(len(first_batch))
            t0 = time.perf_counter()
            idx.train(first_batch)
            logger.info(
                "trained %s on %d vectors in %.1f s", self.factory, len(first_batch), time.perf_counter() - t0
            )
        base = faiss.downcast_index(idx)
        if ivf is not None:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct() for exact filtered scoring
            ivf.nprobe = self.nprobe
            self._kind, self._index, self._resolved = "ivf", idx, self.factory
            self._can_remove = True
            return
        if isinstance(base, faiss.IndexIDMap):
            self._index, self._resolved = idx, self.factory
            base = faiss.downcast_index(base.index)
        else:
            self._index, self._resolved = faiss.IndexIDMap2(idx), f"IDMap2,{self.factory}"
        if isinstance(base, faiss.IndexHNSW):
            base.hnsw.efConstruction = self.ef_construction
            base.hnsw.efSearch = self.ef_search
            self._kind = "hnsw"
        elif isinstance(base, faiss.IndexFlat):
            self._kind = "flat"
        else:
            self._kind = "generic"
        self._can_remove = self._kind != "hnsw" and _supports_remove(self._index)

    def add(self, ids: Sequence[str], vectors: Any) -> None:
        """Add new ids with their vectors.

        Raises:
            IndexDimensionError: the vectors' dimension is not ``dim``.
            ValueError: an id is already present (use :meth:`upsert`), ids repeat, or counts differ.
        """
        x = self._matrix(vectors, "vectors")
        id_list = self._id_list(ids, len(x))
        present = [i for i in id_list if i in self._label_of]
        if present:
            raise ValueError(f"{len(present)} ids already in the index (e.g. {present[0]!r}); use upsert()")
        self._add(id_list, x)

    def _add(self, id_list: list[str], x: np.ndarray) -> None:
        if not id_list:
            return
        if self._index is None:
            self._create(x)
        elif (
            self._kind == "flat"
            and self.factory.lower() == "auto"
            and len(self) + len(x) > self.hnsw_threshold
        ):
            self._rebuild("hnsw", extra=(id_list, x))
            return
        labels = np.arange(self._next_label, self._next_label + len(x), dtype=np.int64)
        set_threads(len(x))
        rows_before = self._storage_rows()
        t0 = time.perf_counter()
        self._index.add_with_ids(x, labels)
        self._next_label += len(x)
        self._register(id_list, labels)
        self._extend_rows(labels, rows_before)
        self._state += 1
        if self._kind == "hnsw" and len(x) >= 1000:
            logger.info("added %d vectors to HNSW in %.1f s", len(x), time.perf_counter() - t0)
        if self._kind in ("hnsw", "ivf") and len(x) >= max(1000, len(self) // 2):
            self.tune()

    def _register(self, id_list: list[str], labels: np.ndarray) -> None:
        as_ints = labels.tolist()
        self._label_of.update(zip(id_list, as_ints, strict=True))
        self._id_of.update(zip(as_ints, id_list, strict=True))

    def upsert(self, ids: Sequence[str], vectors: Any) -> None:
        """Add ids, replacing the vectors of ids already present."""
        x = self._matrix(vectors, "vectors")
        id_list = self._id_list(ids, len(x))
        old = [self._label_of[i] for i in id_list if i in self._label_of]
        if old:
            self._remove_labels(old, compact=False)
        self._add(id_list, x)
        self._maybe_compact()

    def remove(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ids are ignored). Returns how many were removed."""
        if isinstance(ids, str):
            raise TypeError("ids must be a sequence of strings, received one str (wrap it in a list)")
        labels = [self._label_of[i] for i in dict.fromkeys(str(i) for i in ids) if i in self._label_of]
        self._remove_labels(labels, compact=True)
        return len(labels)

    def _remove_labels(self, labels: list[int], compact: bool) -> None:
        if not labels:
            return
        arr = np.asarray(labels, dtype=np.int64)
        if self._can_remove:
            # IVF's hashtable direct map accepts only IDSelectorArray; elsewhere a hashed batch is O(1).
            sel = (
                faiss.IDSelectorArray(len(arr), faiss.swig_ptr(arr))
                if self._kind == "ivf"
                else faiss.IDSelectorBatch(arr)
            )
            removed = self._index.remove_ids(sel)
            if removed != len(arr):
                raise RuntimeError(f"FAISS removed {removed} of {len(arr)} vectors")
            self._rows = None
        else:
            self._tombstones.update(labels)
            self._tomb_sel = None
        for label in labels:
            sid = self._id_of.pop(label)
            del self._label_of[sid]
        self._state += 1
        if compact:
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        if self._tombstones and len(self._tombstones) > self.compact_fraction * max(1, self._index.ntotal):
            self.compact()

    def compact(self) -> None:
        """Rebuild an HNSW index without its tombstones (no-op for indexes that delete in place)."""
        if not self._tombstones:
            return
        n_tomb = len(self._tombstones)
        self._rebuild(self._kind or "hnsw")
        logger.info("compacted the index: dropped %d tombstones, %d vectors remain", n_tomb, len(self))

    def _rebuild(self, kind: str, extra: tuple[list[str], np.ndarray] | None = None) -> None:
        """Rebuild as ``kind`` from the live vectors (plus ``extra`` new ones), keeping labels."""
        t0 = time.perf_counter()
        labels = np.fromiter(self._id_of.keys(), dtype=np.int64, count=len(self._id_of))
        vectors = self._fetch(labels) if len(labels) else np.zeros((0, self.dim), np.float32)
        if extra is not None:
            new_labels = np.arange(self._next_label, self._next_label + len(extra[1]), dtype=np.int64)
            self._next_label += len(new_labels)
            self._register(extra[0], new_labels)
            labels = np.concatenate([labels, new_labels])
            vectors = np.vstack([vectors, extra[1]])
        if kind in ("flat", "hnsw") and (
            self.factory.lower() == "auto" or self._resolved in (None, "IDMap2,Flat")
        ):
            index = self._new_index(kind)
        else:  # a configured HNSW factory: same structure again
            fresh = VectorIndex(self.dim, self.factory, self.metric.value, hnsw_m=self.hnsw_m,
                                ef_construction=self.ef_construction, ef_search=self.ef_search)  # fmt: skip
            fresh._create(vectors)
            index = fresh._index
        set_threads(len(vectors))
        index.add_with_ids(vectors, labels)
        if kind == "hnsw" and self.factory.lower() == "auto" and self._kind == "flat":
            logger.info("index passed %d vectors: switched Flat → HNSW%d", self.hnsw_threshold, self.hnsw_m)
        self._index, self._kind = index, kind
        self._can_remove = kind != "hnsw"
        self._tombstones.clear()
        self._tomb_sel = None
        self._rows = None
        self._state += 1
        logger.info(
            "built %s over %d vectors in %.1f s", self._resolved, len(labels), time.perf_counter() - t0
        )
        if kind == "hnsw":
            self.tune()

    # --- raw vector access ----------------------------------------------------------------------------------
    def _flat_storage(self) -> Any:
        """The IndexFlat holding raw vectors in label-map row order, or None."""
        if self._index is None or not isinstance(self._index, faiss.IndexIDMap2):
            return None
        base = faiss.downcast_index(self._index.index)
        if isinstance(base, faiss.IndexFlat):
            return base
        if isinstance(base, faiss.IndexHNSW):
            storage = faiss.downcast_index(base.storage)
            return storage if isinstance(storage, faiss.IndexFlat) else None
        return None

    def _storage_rows(self) -> int:
        flat = self._flat_storage()
        return int(flat.ntotal) if flat is not None else 0

    def _extend_rows(self, labels: np.ndarray, rows_before: int) -> None:
        if self._rows is None:
            return
        grown = np.full(self._next_label, -1, dtype=np.int64)
        grown[: len(self._rows)] = self._rows
        grown[labels] = rows_before + np.arange(len(labels))
        self._rows = grown

    def _label_rows(self) -> np.ndarray:
        if self._rows is None:
            id_map = faiss.vector_to_array(self._index.id_map)
            rows = np.full(self._next_label, -1, dtype=np.int64)
            rows[id_map] = np.arange(len(id_map))
            self._rows = rows
        return self._rows

    def _fetch(self, labels: np.ndarray) -> np.ndarray:
        """Stored vectors of ``labels`` (exact for Flat/HNSWFlat; decoded otherwise)."""
        flat = self._flat_storage()
        if flat is not None:
            view = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * self.dim).reshape(flat.ntotal, self.dim)
            return view[self._label_rows()[labels]]
        return self._index.reconstruct_batch(labels)

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ids (KeyError for an unknown id)."""
        missing = [i for i in ids if i not in self._label_of]
        if missing:
            raise KeyError(f"{len(missing)} ids not in the index (e.g. {missing[0]!r})")
        return self._fetch(np.array([self._label_of[i] for i in ids], dtype=np.int64))

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

    # --- persistence --------------------------------------------------------------------------------------
    def save(self, path: Path | str, manifest_extra: dict[str, Any] | None = None) -> Path:
        """Save atomically as a new version under ``path`` (see :mod:`index.storage`). Returns its folder."""
        extra = dict(manifest_extra or {})
        embedder_id = extra.pop("embedder_id", self.embedder_id)

        def write(folder: Path) -> None:
            if self._index is not None:
                faiss.write_index(self._index, str(folder / INDEX_FILE))
            ids = {
                "next_label": self._next_label,
                "labels": list(self._id_of.keys()),
                "ids": list(self._id_of.values()),
                "tombstones": sorted(self._tombstones),
            }
            with open(folder / IDS_FILE, "w", encoding="utf-8") as fh:
                json.dump(ids, fh, ensure_ascii=False, separators=(",", ":"))

        manifest = {
            "kind": "faiss",
            "embedder_id": embedder_id,
            "dim": self.dim,
            "metric": self.metric.value,
            "factory": self.factory,
            "resolved_factory": self._resolved,
            "index_kind": self._kind,
            "count": len(self),
            "ntotal": int(self._index.ntotal) if self._index is not None else 0,
            "index_file": INDEX_FILE if self._index is not None else None,
            "params": {
                "hnsw_threshold": self.hnsw_threshold, "hnsw_m": self.hnsw_m,
                "ef_construction": self.ef_construction, "ef_search": self.ef_search, "nprobe": self.nprobe,
                "ef_fixed": self._ef_fixed, "nprobe_fixed": self._nprobe_fixed,
                "target_recall": self.target_recall, "exact_filter_fraction": self.exact_filter_fraction,
                "exact_filter_min": self.exact_filter_min, "compact_fraction": self.compact_fraction,
            },
            "extra": extra,
        }  # fmt: skip
        return save_version(
            Path(path), write, manifest, primary=INDEX_FILE if self._index is not None else None
        )

    @classmethod
    def load(
        cls, path: Path | str, expected_embedder_id: str | None = None, verify: bool = True
    ) -> VectorIndex:
        """Load the current saved version under ``path``.

        Args:
            path: The directory given to :meth:`save`.
            expected_embedder_id: Refuse an index built with another embedder.
            verify: Check every file's sha256 against the manifest.

        Raises:
            IndexNotFoundError: nothing saved at ``path``.
            IndexManifestError: checksum, embedder id, dimension or count mismatch.
        """
        vdir, manifest = load_manifest(
            path, "faiss", expected_embedder_id, what="a FAISS vector index", verify=verify
        )
        found = manifest.get("embedder_id")
        p = manifest["params"]
        self = cls(
            manifest["dim"], manifest["factory"], manifest["metric"], p["hnsw_threshold"],
            embedder_id=found, hnsw_m=p["hnsw_m"], ef_construction=p["ef_construction"],
            ef_search=p["ef_search"], nprobe=p["nprobe"], target_recall=p["target_recall"],
            exact_filter_fraction=p["exact_filter_fraction"], exact_filter_min=p["exact_filter_min"],
            compact_fraction=p["compact_fraction"],
        )  # fmt: skip
        self._ef_fixed, self._nprobe_fixed = p["ef_fixed"], p["nprobe_fixed"]
        if manifest.get("index_file"):
            index = faiss.read_index(str(vdir / manifest["index_file"]))
            if index.d != self.dim:
                raise IndexManifestError(f"{vdir}: index dimension {index.d}, manifest says {self.dim}")
            if index.ntotal != manifest["ntotal"]:
                raise IndexManifestError(
                    f"{vdir}: index holds {index.ntotal} vectors, manifest says {manifest['ntotal']}"
                )
            self._index, self._kind, self._resolved = (
                index,
                manifest["index_kind"],
                manifest["resolved_factory"],
            )
            self._can_remove = self._kind != "hnsw" and (self._kind == "ivf" or _supports_remove(index))
            if self._kind == "hnsw":
                faiss.downcast_index(index.index).hnsw.efSearch = self.ef_search
            elif self._kind == "ivf":
                _extract_ivf(index).nprobe = self.nprobe
        ids = json.loads((vdir / IDS_FILE).read_text(encoding="utf-8"))
        if len(ids["ids"]) != manifest["count"]:
            raise IndexManifestError(
                f"{vdir}: id map has {len(ids['ids'])} ids, manifest says {manifest['count']}"
            )
        self._next_label = ids["next_label"]
        self._id_of = dict(zip(ids["labels"], ids["ids"], strict=True))
        self._label_of = {sid: label for label, sid in self._id_of.items()}
        self._tombstones = set(ids["tombstones"])
        self.manifest = manifest
        logger.info("loaded %s from %s", self, vdir)
        return self


def _extract_ivf(index: Any) -> Any:
    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return None


def _supports_remove(index: Any) -> bool:
    try:
        index.remove_ids(faiss.IDSelectorBatch(np.zeros(0, dtype=np.int64)))
        return True
    except RuntimeError:
        return False


def _empty(nq: int, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    fill = np.inf if metric is Metric.L2 else -np.inf
    return np.full((nq, k), fill, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)


def _pad(dist: np.ndarray, lab: np.ndarray, k: int, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    if dist.shape[1] >= k:
        return dist, lab
    d0, i0 = _empty(len(dist), k, metric)
    d0[:, : dist.shape[1]] = dist
    i0[:, : lab.shape[1]] = lab
    return d0, i0


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) for f, t in zip(found, truth, strict=True)
    )
    total = sum(int((t >= 0).sum()) for t in truth)
    return hits / max(total, 1)
