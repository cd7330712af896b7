"""Benchmark: :class:`~index.vector.VectorIndex` against raw FAISS on the same synthetic vectors.

Each case (corpus size × structure × implementation) runs in a fresh ``spawn``-ed process so memory is the RSS
growth of one build alone; both sides regenerate identical seeded vectors, queries and filters. Measured:
build time, RSS growth, p50/p95 latency of 200 sequential single queries (k = 50) without and with a filter
keeping 10% of the corpus, recall@50 against exact search (both unfiltered and filtered), and the time to
upsert 1,000 vectors in one batch (raw HNSW cannot delete: reported as n/a).
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import time
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

N_QUERIES = 200
K = 50
FILTER_FRACTION = 0.10
N_UPSERT = 1_000


def _trim() -> None:
    """Give freed heap pages back to the OS so the next RSS growth is the build's own."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover


def _percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def _case(n: int, dim: int, structure: str, impl: str, hnsw_threshold: int, seed: int) -> dict[str, Any]:
    import faiss

    from index.synthetic import clustered_vectors, exact_knn, recall_at_k
    from index.vector import VectorIndex

    x = clustered_vectors(n, dim, seed=seed)
    q = clustered_vectors(N_QUERIES, dim, seed=seed + 1)
    rng = np.random.default_rng(seed + 2)
    allowed_rows = np.sort(rng.choice(n, max(1, int(n * FILTER_FRACTION)), replace=False))
    truth = exact_knn(q, x, K)
    truth_f = allowed_rows[exact_knn(q, x[allowed_rows], K)]
    ids = [f"e{i}" for i in range(n)]
    upd_rows = rng.choice(n, N_UPSERT, replace=False)
    upd_vecs = clustered_vectors(N_UPSERT, dim, seed=seed + 3)
    _trim()
    rss0 = _rss_mb()
    row: dict[str, Any] = {"n": n, "structure": structure, "impl": impl}

    if impl == "ours":
        idx = VectorIndex(
            dim, hnsw_threshold=hnsw_threshold if structure == "hnsw" else max(n + 1, hnsw_threshold)
        )
        t0 = time.perf_counter()
        idx.add(ids, x)
        row["build_s"] = time.perf_counter() - t0
        row["ef_search"] = idx.ef_search if idx.kind == "hnsw" else None
        row["mem_mb"] = _rss_mb() - rss0
        flt = idx.make_filter(ids[i] for i in allowed_rows)

        def search(qv: np.ndarray, filtered: bool) -> np.ndarray:
            return idx.search_labels(qv, K, flt if filtered else None)[1]

        def upsert() -> float:
            t = time.perf_counter()
            idx.upsert([ids[i] for i in upd_rows], upd_vecs)
            return time.perf_counter() - t

    else:
        metric = faiss.METRIC_INNER_PRODUCT
        t0 = time.perf_counter()
        if structure == "hnsw":
            base = faiss.IndexHNSWFlat(dim, 32, metric)
            base.hnsw.efConstruction = 200
            raw = faiss.IndexIDMap2(base)
        else:
            raw = faiss.IndexIDMap2(faiss.IndexFlat(dim, metric))
        faiss.omp_set_num_threads(2)
        raw.add_with_ids(x, np.arange(n, dtype=np.int64))
        row["build_s"] = time.perf_counter() - t0
        row["mem_mb"] = _rss_mb() - rss0
        ef = _ours_ef_search(n, structure, hnsw_threshold)
        row["ef_search"] = ef
        bits = np.packbits(np.isin(np.arange(n), allowed_rows), bitorder="little")
        sel = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))

        def search(qv: np.ndarray, filtered: bool) -> np.ndarray:
            faiss.omp_set_num_threads(1 if len(qv) == 1 else 2)
            if structure == "hnsw":
                p = faiss.SearchParametersHNSW()
                p.efSearch = int(ef if not filtered else min(8192, math.ceil(max(ef, K) / FILTER_FRACTION)))
            else:
                p = faiss.SearchParameters()
            if filtered:
                p.sel = sel
            return raw.search(qv, K, params=p)[1]

        def upsert() -> float:
            if structure == "hnsw":
                return float("nan")  # HNSW cannot remove_ids
            t = time.perf_counter()
            sel_rm = faiss.IDSelectorBatch(upd_rows.astype(np.int64))
            raw.remove_ids(sel_rm)
            raw.add_with_ids(upd_vecs, np.arange(n, n + N_UPSERT, dtype=np.int64))
            return time.perf_counter() - t

    for filtered, key in ((False, ""), (True, "_f10")):
        search(q[:5], filtered)  # warm-up
        lat = []
        found = []
        for i in range(N_QUERIES):
            t = time.perf_counter()
            found.append(search(q[i : i + 1], filtered)[0])
            lat.append((time.perf_counter() - t) * 1000)
        row[f"p50_ms{key}"], row[f"p95_ms{key}"] = _percentiles(lat)
        row[f"recall{key}"] = recall_at_k(np.array(found), truth_f if filtered else truth)
    row["upsert_1000_s"] = upsert()
    return row


def _ours_ef_search(n: int, structure: str, hnsw_threshold: int) -> int | None:
    """efSearch our index tunes to for this case (the raw side searches with the same value)."""
    if structure != "hnsw":
        return None
    return _EF.get(n, 64)


_EF: dict[int, int] = {}


def _run(args: tuple) -> dict[str, Any]:
    ef_map, *rest = args
    _EF.update(ef_map)
    return _case(*rest)


def bench_index(
    sizes: list[int], dim: int = 384, hnsw_threshold: int = 50_000, seed: int = 0, flat_rows: bool = True
) -> list[dict[str, Any]]:
    """Run every case; one dict per (n, structure, impl). Ours runs first: raw HNSW reuses its efSearch."""
    rows: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    for n in sizes:
        structures = ["hnsw" if n > hnsw_threshold else "flat"]
        if flat_rows and structures[0] != "flat":
            structures.insert(0, "flat")
        for structure in structures:
            ef_map: dict[int, int] = {}
            for impl in ("ours", "raw"):
                logger.info("bench: n=%d %s %s", n, structure, impl)
                with ctx.Pool(1) as pool:
                    row = pool.apply(_run, ((ef_map, n, dim, structure, impl, hnsw_threshold, seed),))
                if impl == "ours" and row.get("ef_search"):
                    ef_map[n] = int(row["ef_search"])
                rows.append(row)
                logger.info("bench row: %s", row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """Rows as a markdown table, each ours row followed by raw FAISS and the ratio ours/raw."""
    head = ("| n | index | impl | build s | mem MB | p50 ms | p95 ms | recall@50 | p50 ms 10% filter | "
            "p95 ms 10% filter | recall@50 10% filter | upsert 1k s |")  # fmt: skip
    lines = [head, "|" + "---|" * 12]

    def fmt(v: Any, digits: int = 2) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "n/a"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    keys = [
        "build_s",
        "mem_mb",
        "p50_ms",
        "p95_ms",
        "recall",
        "p50_ms_f10",
        "p95_ms_f10",
        "recall_f10",
        "upsert_1000_s",
    ]
    by_case: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_case.setdefault((r["n"], r["structure"]), {})[r["impl"]] = r
    for (n, structure), impls in by_case.items():
        label = structure if structure == "flat" else f"hnsw (efS {impls.get('ours', {}).get('ef_search')})"
        for impl in ("ours", "raw"):
            r = impls.get(impl)
            if r:
                vals = [fmt(r[k], 3 if k.startswith("recall") else 2) for k in keys]
                lines.append(f"| {n:,} | {label} | {impl} | " + " | ".join(vals) + " |")
        if "ours" in impls and "raw" in impls:
            ratios = []
            for k in keys:
                a, b = impls["ours"].get(k), impls["raw"].get(k)
                ok = (
                    isinstance(a, float)
                    and isinstance(b, float)
                    and not (math.isnan(a) or math.isnan(b))
                    and b > 0
                )
                ratios.append(f"{a / b:.2f}×" if ok else "")
            lines.append(f"| {n:,} | {label} | ours/raw | " + " | ".join(ratios) + " |")
    return "\n".join(lines)
