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

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import faiss
import numpy as np

from index.checks import as_matrix, id_list
from index.errors import IndexTrainingError
from index.faiss_utils import (
    Metric,
    _extract_ivf,
    _supports_remove,
    set_threads,
)
from index.vector_io import VectorPersistence
from index.vector_search import VectorSearch

logger = logging.getLogger(__name__)

class VectorIndex(VectorSearch, VectorPersistence):
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
        grow_to_hnsw: Whether ``"auto"`` rebuilds a Flat index as HNSW once adds carry it past
            ``hnsw_threshold`` (a full graph build: 12 s at 50k vectors on 2 cores); False keeps it Flat
            (exact, a few ms a query at 50–100k) until its owner builds a new index (the recommender's fit).

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
        grow_to_hnsw: bool = True,
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
        self.grow_to_hnsw = grow_to_hnsw
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
            and getattr(self, "grow_to_hnsw", True)  # indexes pickled before the option grow
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
