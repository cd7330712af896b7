"""VectorIndex over FAISS: boundary checks, deletes on every index type, filtered recall, auto switch."""

from __future__ import annotations

import numpy as np
import pytest

from index.errors import IndexDimensionError, IndexTrainingError
from index.synthetic import clustered_vectors, exact_knn, recall_at_k
from index.vector import VectorIndex

DIM = 32


def _ids(n: int, prefix: str = "e") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    return clustered_vectors(12_000, DIM, n_clusters=64, seed=0)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered_vectors(60, DIM, n_clusters=64, seed=1)


@pytest.fixture(scope="module")
def hnsw(corpus: np.ndarray) -> VectorIndex:
    """An HNSW index ("auto" above a low threshold) whose filter path is forced onto the IDSelector search."""
    idx = VectorIndex(DIM, hnsw_threshold=1_000, exact_filter_min=0, exact_filter_fraction=0.0)
    idx.add(_ids(len(corpus)), corpus)
    return idx


def test_flat_search_returns_exact_neighbours_with_scores(corpus: np.ndarray, queries: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(2_000), corpus[:2_000])
    assert idx.resolved_factory == "IDMap2,Flat"
    results = idx.search(queries, k=10)
    truth = exact_knn(queries, corpus[:2_000], 10)
    for res, t, q in zip(results, truth, queries, strict=True):
        assert [i for i, _ in res] == [f"e{j}" for j in t]
        assert res[0][1] == pytest.approx(float(corpus[t[0]] @ q), abs=1e-5)


def test_float64_and_single_vector_queries_are_accepted(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(100), corpus[:100].astype(np.float64))
    hits = idx.search(corpus[5].astype(np.float64), k=1)
    assert hits[0][0][0] == "e5"


def test_dimension_mismatch_names_expected_and_received(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    with pytest.raises(IndexDimensionError, match=f"dimension 16, expected {DIM}"):
        idx.add(["a"], np.ones((1, 16), dtype=np.float32))
    idx.add(["a"], corpus[:1])
    with pytest.raises(IndexDimensionError, match="expected 32"):
        idx.search(np.ones((1, 33), dtype=np.float32), k=1)


@pytest.mark.parametrize("k", [0, -3])
def test_non_positive_k_is_rejected(corpus: np.ndarray, k: int) -> None:
    idx = VectorIndex(DIM)
    idx.add(["a"], corpus[:1])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        idx.search(corpus[:1], k=k)


def test_adding_a_present_id_requires_upsert(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(["a", "b"], corpus[:2])
    with pytest.raises(ValueError, match="use upsert"):
        idx.add(["b"], corpus[2:3])
    with pytest.raises(ValueError, match="unique"):
        idx.add(["c", "c"], corpus[2:4])
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        idx.add(["x", "y"], corpus[:1])


def test_nan_vectors_are_rejected() -> None:
    idx = VectorIndex(4)
    with pytest.raises(ValueError, match="NaN"):
        idx.add(["a"], np.array([[np.nan, 0, 0, 0]], dtype=np.float32))


def test_k_larger_than_the_index_returns_every_id_once(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(5), corpus[:5])
    res = idx.search(corpus[:1], k=50)[0]
    assert sorted(i for i, _ in res) == _ids(5)


def test_empty_index_and_empty_filter_return_no_results(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    assert idx.search(corpus[:2], k=3) == [[], []]
    idx.add(["a"], corpus[:1])
    assert idx.search(corpus[:1], k=3, allow=["unknown"]) == [[]]


def test_upsert_replaces_the_vector_of_an_existing_id(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(500), corpus[:500])
    idx.upsert(["e7", "new"], corpus[[900, 901]])
    assert len(idx) == 501
    assert idx.search(corpus[900], k=1)[0][0][0] == "e7"
    assert idx.search(corpus[901], k=1)[0][0][0] == "new"
    np.testing.assert_allclose(idx.get_vectors(["e7"])[0], corpus[900])


FACTORIES = {
    "flat": dict(factory="auto"),
    "hnsw-auto": dict(factory="auto", hnsw_threshold=100),
    "hnsw-factory": dict(factory="HNSW16"),
    "ivf": dict(factory="IVF16,Flat", nprobe=16),
    "sq8": dict(factory="SQ8"),
}


@pytest.mark.parametrize("name", FACTORIES)
def test_removed_ids_never_come_back_and_k_results_remain(name: str, corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM, **FACTORIES[name])
    n = 2_000
    idx.add(_ids(n), corpus[:n])
    removed = _ids(n)[: n // 10]
    assert idx.remove(removed + ["never-added"]) == len(removed)
    assert len(idx) == n - len(removed)
    # query exactly at removed vectors: their own ids must not come back, yet k results must
    results = idx.search(corpus[: len(removed)], k=20)
    gone = set(removed)
    for res in results:
        assert len(res) == 20
        assert not gone & {i for i, _ in res}
    # a removed id can be added again
    idx.add(["e0"], corpus[:1])
    assert idx.search(corpus[0], k=1)[0][0][0] == "e0"


def test_hnsw_deletes_are_tombstones_compacted_past_the_fraction(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM, hnsw_threshold=100, compact_fraction=0.25)
    idx.add(_ids(1_000), corpus[:1_000])
    assert idx.kind == "hnsw"
    idx.remove(_ids(200))
    assert idx.tombstones == 200  # 20 %: kept as tombstones
    assert idx.faiss_index.ntotal == 1_000
    idx.remove(_ids(400)[200:])
    assert idx.tombstones == 0  # 40 % > 25 %: rebuilt
    assert idx.faiss_index.ntotal == 600 == len(idx)
    assert {i for i, _ in idx.search(corpus[:400], k=5)[0]}.isdisjoint(_ids(400))


def test_auto_switches_from_flat_to_hnsw_above_the_threshold(corpus: np.ndarray, queries: np.ndarray) -> None:
    idx = VectorIndex(DIM, hnsw_threshold=1_500)
    idx.add(_ids(1_000), corpus[:1_000])
    assert idx.kind == "flat"
    idx.add(_ids(1_000, "f"), corpus[1_000:2_000])
    assert idx.kind == "hnsw" and len(idx) == 2_000
    ids = _ids(1_000) + _ids(1_000, "f")
    truth = [[ids[j] for j in row] for row in exact_knn(queries, corpus[:2_000], 50)]
    found = [[i for i, _ in r] for r in idx.search(queries, k=50)]
    assert recall_at_k(found, truth) >= 0.95


def test_auto_can_stay_flat_past_the_threshold_until_rebuilt(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM, hnsw_threshold=1_500, grow_to_hnsw=False)
    idx.add(_ids(1_000), corpus[:1_000])
    idx.upsert(_ids(1_000, "f"), corpus[1_000:2_000])
    assert idx.kind == "flat" and len(idx) == 2_000  # exact, no graph built on the add
    again = VectorIndex(DIM, hnsw_threshold=1_500, grow_to_hnsw=False)
    again.add(_ids(2_000), corpus[:2_000])
    assert again.kind == "hnsw"  # a build of the whole set picks by size


def test_hnsw_unfiltered_recall_meets_target(
    hnsw: VectorIndex, corpus: np.ndarray, queries: np.ndarray
) -> None:
    ids = _ids(len(corpus))
    truth = [[ids[j] for j in row] for row in exact_knn(queries, corpus, 50)]
    found = [[i for i, _ in r] for r in hnsw.search(queries, k=50)]
    assert recall_at_k(found, truth) >= 0.95


@pytest.mark.parametrize("fraction", [0.01, 0.05, 0.10, 0.30])
def test_filtered_hnsw_search_keeps_recall_and_returns_k(
    hnsw: VectorIndex, corpus: np.ndarray, queries: np.ndarray, fraction: float
) -> None:
    rng = np.random.default_rng(int(fraction * 1000))
    rows = np.sort(rng.choice(len(corpus), int(len(corpus) * fraction), replace=False))
    allow = [f"e{j}" for j in rows]
    truth = [[f"e{rows[j]}" for j in row] for row in exact_knn(queries, corpus[rows], 50)]
    results = hnsw.search(queries, k=50, allow=allow)
    assert all(len(r) == 50 for r in results)
    assert all({i for i, _ in r} <= set(allow) for r in results)
    assert recall_at_k([[i for i, _ in r] for r in results], truth) >= 0.95


@pytest.mark.parametrize("fraction", [0.01, 0.20])
def test_filtered_search_uses_exact_scan_for_small_allow_sets(
    corpus: np.ndarray, queries: np.ndarray, fraction: float
) -> None:
    idx = VectorIndex(DIM, hnsw_threshold=1_000, exact_filter_fraction=0.25, exact_filter_min=0)
    idx.add(_ids(4_000), corpus[:4_000])
    rows = np.arange(0, 4_000, int(1 / fraction))
    allow = idx.make_filter(f"e{j}" for j in rows)
    truth = [[f"e{rows[j]}" for j in row] for row in exact_knn(queries, corpus[rows], 30)]
    found = [[i for i, _ in r] for r in idx.search(queries, k=30, allow=allow)]
    assert recall_at_k(found, truth) == 1.0  # exact path: identical to brute force


def test_prepared_filter_follows_later_mutations(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(100), corpus[:100])
    flt = idx.make_filter(["e1", "e2"])
    idx.upsert(["e1"], corpus[50:51])
    res = idx.search(corpus[50], k=2, allow=flt)[0]
    assert res[0][0] == "e1"
    assert {i for i, _ in res} == {"e1", "e2"}


def test_ivf_trains_on_the_first_batch_and_refuses_too_few_vectors(
    corpus: np.ndarray, queries: np.ndarray
) -> None:
    small = VectorIndex(DIM, factory="IVF64,Flat")
    with pytest.raises(IndexTrainingError, match="at least 64"):
        small.add(_ids(10), corpus[:10])
    idx = VectorIndex(DIM, factory="IVF32,Flat")
    idx.add(_ids(4_000), corpus[:4_000])
    assert idx.kind == "ivf"
    truth = [[f"e{j}" for j in row] for row in exact_knn(queries, corpus[:4_000], 50)]
    found = [[i for i, _ in r] for r in idx.search(queries, k=50)]
    assert recall_at_k(found, truth) >= 0.95  # nprobe tuned after training


def test_invalid_factory_and_metric_are_reported() -> None:
    with pytest.raises(ValueError, match="invalid FAISS factory"):
        VectorIndex(8, factory="NotAnIndex").add(["a"], np.ones((1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="expected one of: ip, l2"):
        VectorIndex(8, metric="cosine")


def test_l2_metric_orders_by_ascending_distance(corpus: np.ndarray) -> None:
    idx = VectorIndex(DIM, metric="l2")
    idx.add(_ids(300), corpus[:300] * 3)
    res = idx.search(corpus[10] * 3, k=5)[0]
    assert res[0] == ("e10", pytest.approx(0.0, abs=1e-4))
    assert [s for _, s in res] == sorted(s for _, s in res)
    # the exact filtered path agrees with FAISS on distances
    filtered = idx.search(corpus[10] * 3, k=2, allow=["e10", "e11"])[0]
    expected = float(((corpus[11] * 3 - corpus[10] * 3) ** 2).sum())
    assert filtered[1] == ("e11", pytest.approx(expected, rel=1e-4))
