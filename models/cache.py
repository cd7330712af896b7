"""A persistent embedding cache: SQLite rows keyed by (model id, sha1 of the text), float32 blobs.

Re-embedding an unchanged profile is a look-up: :func:`embed_cached` embeds only the texts the cache misses.
Query and passage vectors differ for e5, so callers key them apart (``{embedder.id}:passage``).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.embedders import Embedder

logger = logging.getLogger(__name__)

_CHUNK = 500  # keys per SELECT … IN (…)


def text_key(text: str) -> bytes:
    """sha1 digest of the UTF-8 text (20 bytes)."""
    return hashlib.sha1(text.encode("utf-8")).digest()


class EmbeddingCache:
    """SQLite file of embeddings; safe to share between threads of one process.

    Args:
        path: The SQLite file (created with its parent directory if missing).

    Example:
        >>> cache = EmbeddingCache(tmp_path / "emb.sqlite")
        >>> cache.put_many("hash-ngram-384:passage", ["多晶硅"], vectors)
        >>> cache.get_many("hash-ngram-384:passage", ["多晶硅", "电解铝"])  # [array, None]
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS embeddings ("
            " model TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,"
            " PRIMARY KEY (model, key)) WITHOUT ROWID"
        )
        self._conn.commit()

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Cached vectors for ``texts`` in order; ``None`` where the cache has none."""
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(set(keys[start : start + _CHUNK]))
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, dim, vec FROM embeddings WHERE model = ? AND key IN ({marks})",
                    [model_id, *chunk],
                ).fetchall()
                for key, dim, blob in rows:
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return [found.get(k) for k in keys]

    def put_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one vector per text (replacing any older one)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"expected vectors of shape ({len(texts)}, dim), received {vectors.shape}")
        rows = [
            (model_id, text_key(t), vectors.shape[1], v.tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._lock:
            self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?)", rows)
            self._conn.commit()

    def count(self, model_id: str | None = None) -> int:
        """Number of cached vectors (for one model id, or all)."""
        with self._lock:
            if model_id is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])
            return int(
                self._conn.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", [model_id]).fetchone()[
                    0
                ]
            )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CacheStats:
    """How many texts came from the cache and how many were embedded."""

    hits: int = 0
    misses: int = 0


def embed_cached(
    embedder: Embedder,
    texts: Sequence[str],
    cache: EmbeddingCache | None,
    kind: str = "passage",
    stats: CacheStats | None = None,
) -> np.ndarray:
    """Embed ``texts`` as passages (or queries), reading and filling ``cache``; only misses are embedded.

    Args:
        embedder: Any :class:`models.embedders.Embedder`.
        texts: Texts to embed.
        cache: The cache, or None to embed everything.
        kind: ``"passage"`` or ``"query"``.
        stats: Optional counters updated in place.

    Returns:
        float32 ``(len(texts), embedder.dim)``.
    """
    if kind not in ("passage", "query"):
        raise ValueError(f"kind must be 'passage' or 'query', received {kind!r}")
    encode = embedder.encode_passages if kind == "passage" else embedder.encode_queries
    if cache is None:
        out = encode(texts)
        if stats is not None:
            stats.misses += len(texts)
        return out
    model_id = f"{embedder.id}:{kind}"
    cached = cache.get_many(model_id, texts)
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    missing = [i for i, v in enumerate(cached) if v is None or v.shape[0] != embedder.dim]
    for i, v in enumerate(cached):
        if v is not None and v.shape[0] == embedder.dim:
            out[i] = v
    if missing:
        fresh = encode([texts[i] for i in missing])
        out[missing] = fresh
        cache.put_many(model_id, [texts[i] for i in missing], fresh)
    if stats is not None:
        stats.hits += len(texts) - len(missing)
        stats.misses += len(missing)
    return out
