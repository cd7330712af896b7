"""FAISS helpers of the vector index: metrics, thread counts, id filters, IVF/HNSW introspection, result padding
and the search-parameter candidates the tuner tries."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import faiss
import numpy as np

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
