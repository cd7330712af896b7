"""Batch embedding of large corpora with Ray Data (imported lazily: Ray is optional).

``ray.data.from_items(...)`` → ``map_batches`` with an actor class that loads the embedder once per worker →
batches streamed back in order. For millions of profiles run it on a Ray cluster (``RAY_ADDRESS``); locally it
starts a Ray instance with ``num_cpus`` workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


class _EmbedBatch:
    """Ray Data callable class: one embedder per actor, one call per batch."""

    def __init__(self, embedder_name: str, cache_dir: str | None, kind: str, threads: int) -> None:
        from models.embedders import configure_torch_threads, get_embedder

        if embedder_name.startswith("e5"):
            configure_torch_threads(threads)
        self.embedder = get_embedder(embedder_name, Path(cache_dir) if cache_dir else None)
        self.kind = kind

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        enc = self.embedder.encode_queries if self.kind == "query" else self.embedder.encode_passages
        return {"id": batch["id"], "vector": enc(texts)}


def ensure_ray(num_cpus: int | None = None) -> Any:
    """Import Ray and start (or join, via ``RAY_ADDRESS``) a Ray instance if none is running."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(f"the ray engine needs Ray installed (`pip install 'ray[data]'`): {exc}") from exc
    if not ray.is_initialized():
        import os

        # Workers must import this project even when it is not pip-installed.
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
    return ray


def ray_embed(
    items: Iterable[tuple[str, str]],
    embedder_name: str,
    cache_dir: Path | None = None,
    kind: str = "passage",
    batch_size: int = 256,
    concurrency: int | None = None,
    num_cpus: int | None = None,
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Embed ``(id, text)`` pairs on Ray Data; yields ``(ids, vectors)`` batches as they finish.

    Args:
        items: ``(id, text)`` pairs.
        embedder_name: A name for :func:`models.embedders.get_embedder` (each actor builds its own).
        cache_dir: Cache dir for the converted e5 folder (build it before, so actors only load it).
        kind: ``"passage"`` or ``"query"``.
        batch_size: Rows per ``map_batches`` call.
        concurrency: Number of embedding actors (default: Ray's CPU count).
        num_cpus: CPUs for a locally started Ray instance.
    """
    ray = ensure_ray(num_cpus)
    rows = [{"id": str(i), "text": str(t)} for i, t in items]
    if not rows:
        return
    n_actors = concurrency or max(1, int(ray.cluster_resources().get("CPU", 1)))
    threads = max(1, int(ray.cluster_resources().get("CPU", 1)) // n_actors)
    logger.info("ray: embedding %d texts with %s on %d actors", len(rows), embedder_name, n_actors)
    ds = ray.data.from_items(rows).map_batches(
        _EmbedBatch,
        fn_constructor_kwargs={
            "embedder_name": embedder_name,
            "cache_dir": str(cache_dir) if cache_dir else None,
            "kind": kind,
            "threads": threads,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=1,
    )
    for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
        yield [str(i) for i in batch["id"]], np.asarray(np.stack(batch["vector"]), dtype=np.float32)


def ray_embed_array(
    ids: Sequence[str], texts: Sequence[str], embedder_name: str, **kwargs: Any
) -> np.ndarray:
    """Embed ``texts`` on Ray and return them as one matrix in input order."""
    pos = {i: n for n, i in enumerate(ids)}
    if len(pos) != len(ids):
        raise ValueError("ids must be unique")
    out: np.ndarray | None = None
    for batch_ids, vecs in ray_embed(zip(ids, texts, strict=True), embedder_name, **kwargs):
        if out is None:
            out = np.zeros((len(ids), vecs.shape[1]), dtype=np.float32)
        out[[pos[i] for i in batch_ids]] = vecs
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
