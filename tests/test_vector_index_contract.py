"""One contract for every vector index: FAISS Flat, FAISS HNSW and Milvus (a milvus-lite file)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.errors import IndexDimensionError, IndexManifestError
from index.synthetic import clustered_vectors
from index.vector import VectorIndex

DIM = 16
N = 400


def _milvus_reason() -> str | None:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"pymilvus / milvus-lite not installed ({exc}); pip install 'chainmatch[milvus]'"
    return None


def _faiss_flat(tmp: Path) -> Any:
    return VectorIndex(DIM, embedder_id="test-emb")


def _faiss_hnsw(tmp: Path) -> Any:
    return VectorIndex(
        DIM, factory="HNSW16", embedder_id="test-emb", exact_filter_min=0, exact_filter_fraction=0.0
    )


def _milvus(tmp: Path) -> Any:
    """One milvus-lite file (one in-process server) per session, one collection per test."""
    from index.milvus import MilvusVectorIndex

    return MilvusVectorIndex(
        DIM, str(tmp / "vectors.db"), f"t_{uuid.uuid4().hex[:12]}", embedder_id="test-emb"
    )


IMPLS: dict[str, Callable[[Path], Any]] = {
    "faiss-flat": _faiss_flat,
    "faiss-hnsw": _faiss_hnsw,
    "milvus-lite": _milvus,
}


def _load(name: str, path: Path, expected: str | None = None) -> Any:
    if name == "milvus-lite":
        from index.milvus import MilvusVectorIndex

        return MilvusVectorIndex.load(path, expected_embedder_id=expected)
    return VectorIndex.load(path, expected_embedder_id=expected)


@pytest.fixture(scope="session")
def milvus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("milvus")


@pytest.fixture(params=list(IMPLS))
def impl(request: pytest.FixtureRequest, tmp_path: Path, milvus_dir: Path):
    name = request.param
    if name == "milvus-lite" and (reason := _milvus_reason()):
        pytest.skip(reason)
    index = IMPLS[name](milvus_dir if name == "milvus-lite" else tmp_path)
    yield name, index
    close = getattr(index, "close", None)
    if close is not None:
        close()


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered_vectors(N + 20, DIM, n_clusters=20, seed=3)


def _ids(n: int) -> list[str]:
    return [f"企业-{i}" for i in range(n)]


def test_add_then_search_finds_each_vector_first(impl, data: np.ndarray) -> None:
    _, index = impl
    index.add(_ids(N), data[:N])
    assert len(index) == N
    results = index.search(data[:20], k=5)
    assert [r[0][0] for r in results] == _ids(20)
    assert all(len(r) == 5 for r in results)
    assert results[0][0][1] == pytest.approx(1.0, abs=1e-3)  # unit vectors, inner product


def test_upsert_replaces_and_adds(impl, data: np.ndarray) -> None:
    _, index = impl
    index.add(_ids(N), data[:N])
    index.upsert(["企业-3", "新企业"], data[[N + 1, N + 2]])
    assert len(index) == N + 1
    assert index.search(data[N + 1], k=1)[0][0][0] == "企业-3"
    assert index.search(data[N + 2], k=1)[0][0][0] == "新企业"


def test_remove_deletes_and_ignores_unknown_ids(impl, data: np.ndarray) -> None:
    _, index = impl
    index.add(_ids(N), data[:N])
    assert index.remove(["企业-0", "企业-1", "nobody"]) == 2
    assert len(index) == N - 2
    hits = index.search(data[:2], k=10)
    assert all(len(h) == 10 for h in hits)
    assert not {"企业-0", "企业-1"} & {i for h in hits for i, _ in h}


def test_filter_restricts_results_to_allowed_ids(impl, data: np.ndarray) -> None:
    _, index = impl
    index.add(_ids(N), data[:N])
    allow = _ids(N)[::10]  # 10 %
    truth = np.argsort(-(data[:N:10] @ data[5]))[:10]
    res = index.search(data[5], k=10, allow=allow)[0]
    assert [i for i, _ in res] == [allow[j] for j in truth]
    assert index.search(data[5], k=3, allow=[])[0] == []


def test_saved_index_reloads_with_the_same_results(impl, data: np.ndarray, tmp_path: Path) -> None:
    name, index = impl
    index.add(_ids(N), data[:N])
    index.remove(["企业-9"])
    before = index.search(data[:5], k=7)
    index.save(tmp_path / "saved", {"note": "contract"})
    if name == "milvus-lite":
        index.close()
    loaded = _load(name, tmp_path / "saved", expected="test-emb")
    try:
        assert len(loaded) == N - 1
        after = loaded.search(data[:5], k=7)
        assert [[i for i, _ in r] for r in after] == [[i for i, _ in r] for r in before]
        with pytest.raises(IndexManifestError, match="expected 'other-emb'"):
            _load(name, tmp_path / "saved", expected="other-emb")
    finally:
        getattr(loaded, "close", lambda: None)()


def test_boundary_checks(impl, data: np.ndarray) -> None:
    _, index = impl
    index.add(_ids(10), data[:10])
    with pytest.raises(IndexDimensionError, match=f"expected {DIM}"):
        index.search(np.ones((1, DIM + 1), dtype=np.float32), k=1)
    with pytest.raises(IndexDimensionError):
        index.add(["x"], np.ones((1, DIM - 1), dtype=np.float32))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(data[:1], k=0)
    with pytest.raises(ValueError, match="use upsert"):
        index.add(["企业-1"], data[:1])
