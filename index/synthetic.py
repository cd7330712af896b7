"""Seeded synthetic vectors and recall, for tests and benchmarks (plain functions)."""

from __future__ import annotations

import numpy as np


def clustered_vectors(
    n: int, dim: int, n_clusters: int = 256, spread: float = 0.6, seed: int = 0, center_seed: int = 0
) -> np.ndarray:
    """``n`` unit vectors drawn around ``n_clusters`` Gaussian centres (``center_seed`` fixes the centres).

    Draw corpus and queries with the same ``center_seed`` and different ``seed`` for in-distribution queries.
    """
    centres = np.random.default_rng(center_seed).normal(size=(n_clusters, dim)).astype(np.float32)
    rng = np.random.default_rng((center_seed, seed))
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        block = centres[rng.integers(0, n_clusters, m)] + rng.normal(scale=spread, size=(m, dim)).astype(
            np.float32
        )
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + m] = block
    return out


def exact_knn(queries: np.ndarray, corpus: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """Row indices of the ``k`` largest inner products of each query (exact, chunked)."""
    best_s = np.zeros((len(queries), 0), dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(corpus), chunk):
        s = queries @ corpus[start : start + chunk].T
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        best_s = np.hstack([best_s, np.take_along_axis(s, part, axis=1)])
        best_i = np.hstack([best_i, part + start])
    order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(best_i, order, axis=1)


def recall_at_k(found: list[list[str]] | np.ndarray, truth: list[list[str]] | np.ndarray) -> float:
    """Mean fraction of each query's true neighbours that were found (ignores -1 padding)."""
    hits = total = 0
    for f, t in zip(found, truth, strict=True):
        t_set = {x for x in list(t) if not (isinstance(x, (int, np.integer)) and x < 0)}
        f_set = {x for x in list(f) if not (isinstance(x, (int, np.integer)) and x < 0)}
        hits += len(t_set & f_set)
        total += len(t_set)
    return hits / max(total, 1)
