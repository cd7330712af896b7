"""Saving and loading VectorIndex: round trips, manifest checks, pruning, a writer killed mid-save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.errors import IndexManifestError, IndexNotFoundError
from index.storage import POINTER, current_version, read_manifest
from index.synthetic import clustered_vectors
from index.vector import VectorIndex

REPO = Path(__file__).resolve().parents[1]
DIM = 24


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered_vectors(3_000, DIM, n_clusters=30, seed=5)


def _ids(n: int) -> list[str]:
    return [f"id-{i}" for i in range(n)]


@pytest.mark.parametrize("threshold", [10_000, 500], ids=["flat", "hnsw"])
def test_round_trip_keeps_results_ids_and_tombstones(
    data: np.ndarray, tmp_path: Path, threshold: int
) -> None:
    idx = VectorIndex(DIM, hnsw_threshold=threshold, embedder_id="emb-1")
    idx.add(_ids(2_000), data[:2_000])
    idx.remove(_ids(50))
    idx.upsert(["id-60"], data[2_500:2_501])
    vdir = idx.save(tmp_path / "vec", {"build_id": "abc"})
    manifest = read_manifest(vdir)
    assert manifest["embedder_id"] == "emb-1" and manifest["dim"] == DIM and manifest["metric"] == "ip"
    assert manifest["count"] == 1_950 and manifest["extra"] == {"build_id": "abc"}
    assert len(manifest["sha256"]) == 64 and manifest["created_at"].endswith("Z")
    loaded = VectorIndex.load(tmp_path / "vec", expected_embedder_id="emb-1")
    assert len(loaded) == 1_950 and loaded.kind == idx.kind and loaded.tombstones == idx.tombstones
    assert loaded.search(data[:20], k=10) == idx.search(data[:20], k=10)
    assert loaded.search(data[2_500], k=1)[0][0][0] == "id-60"
    # the loaded index keeps working: new labels do not collide with old ones
    loaded.add(["fresh"], data[2_999:3_000])
    assert loaded.search(data[2_999], k=1)[0][0][0] == "fresh"


def test_load_refuses_another_embedders_index(data: np.ndarray, tmp_path: Path) -> None:
    idx = VectorIndex(DIM, embedder_id="e5-small-st-int8")
    idx.add(_ids(10), data[:10])
    idx.save(tmp_path / "vec")
    with pytest.raises(IndexManifestError, match="embedder 'e5-small-st-int8', expected 'hash-ngram-384'"):
        VectorIndex.load(tmp_path / "vec", expected_embedder_id="hash-ngram-384")


def test_load_detects_a_corrupt_index_file(data: np.ndarray, tmp_path: Path) -> None:
    idx = VectorIndex(DIM)
    idx.add(_ids(100), data[:100])
    vdir = idx.save(tmp_path / "vec")
    blob = bytearray((vdir / "index.faiss").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (vdir / "index.faiss").write_bytes(bytes(blob))
    with pytest.raises(IndexManifestError, match="index.faiss: sha256"):
        VectorIndex.load(tmp_path / "vec")


def test_missing_index_is_a_clear_not_found(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="no saved index"):
        VectorIndex.load(tmp_path / "none")
    assert issubclass(IndexNotFoundError, FileNotFoundError)


def test_saves_keep_the_current_and_previous_version_only(data: np.ndarray, tmp_path: Path) -> None:
    idx = VectorIndex(DIM)
    folders = []
    for i in range(4):
        idx.add([f"x{i}"], data[i : i + 1])
        folders.append(idx.save(tmp_path / "vec"))
    kept = sorted(p.name for p in (tmp_path / "vec").iterdir() if p.is_dir())
    assert kept == sorted(f.name for f in folders[-2:])
    assert current_version(tmp_path / "vec") == folders[-1]
    assert len(VectorIndex.load(tmp_path / "vec")) == 4


def test_empty_index_round_trips(tmp_path: Path) -> None:
    VectorIndex(DIM, embedder_id="e").save(tmp_path / "vec")
    loaded = VectorIndex.load(tmp_path / "vec")
    assert len(loaded) == 0 and loaded.search(np.ones(DIM), k=3) == [[]]


WRITER = """
import sys, time
import numpy as np
from index.vector import VectorIndex
path, n, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
small = VectorIndex(dim, embedder_id="emb")
small.add([f"old-{i}" for i in range(100)], np.eye(100, dim, dtype=np.float32))
small.save(path)
print("SAVED", flush=True)
rng = np.random.default_rng(0)
big = VectorIndex(dim, embedder_id="emb", hnsw_threshold=10**9)  # Flat: instant to build, ~0.3 GB to write
big.add([f"new-{i}" for i in range(n)], rng.standard_normal((n, dim), dtype=np.float32))
print("WRITING", flush=True)
big.save(path)
print("DONE", flush=True)
"""


def test_writer_killed_mid_save_leaves_the_previous_index_loadable(tmp_path: Path) -> None:
    """SIGKILL a real writer process while it saves a ~0.3 GB index; the old version must still load."""
    path = tmp_path / "vec"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    caught_mid_write = False
    for delay in (0.3, 0.15, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "1000000", "64"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "SAVED"
            assert proc.stdout.readline().strip() == "WRITING"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        leftovers = [p for p in path.iterdir() if p.name.startswith(".tmp-")]
        pointer = (path / POINTER).read_text().strip()
        loaded = VectorIndex.load(path, expected_embedder_id="emb")
        if leftovers:  # killed while writing: the pointer still names the old, complete version
            caught_mid_write = True
            assert len(loaded) == 100 and "old-0" in loaded
            assert loaded.search(np.eye(1, 64, 7, dtype=np.float32), k=1)[0][0][0] == "old-7"
            assert json.loads((path / pointer / "manifest.json").read_text())["count"] == 100
            break
        assert len(loaded) in (100, 1_000_000)  # the save finished before the kill: still consistent
    assert caught_mid_write, "the writer finished every time before SIGKILL; could not test a mid-write kill"
    # the next successful save cleans the dead writer's temporary folder
    VectorIndex(64, embedder_id="emb").save(path)
    assert not [p for p in path.iterdir() if p.name.startswith(".tmp-")]
