"""Building and updating the persistent enterprise indexes from the store.

Two indexes live under ``settings.index_path``:

- ``vector/``: a :class:`index.vector.VectorIndex` of :func:`matcher.ranking.profile_text.profile_text` passages,
  embedded with the configured embedder through the SQLite :class:`models.cache.EmbeddingCache` (an unchanged
  profile is never embedded twice);
- ``lexical/``: a :class:`index.lexical.LexicalIndex` of jieba tokens of name, aliases, products and scope.

Both saves carry the same ``build_id`` so :func:`index_status` can tell whether they belong together.
:func:`build_index` rebuilds from every row of the store (all tenants; ``engine="ray"`` embeds on Ray Data);
:func:`update_index` upserts / removes only the given (or the pending) ids. :func:`search_index` is a plain
hybrid query (dense + BM25, reciprocal-rank fusion), no gap logic.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from matcher.errors import InvalidRequestError, UnknownEnterpriseError
from matcher.knowledge.catalogue import Catalogue, default_catalogue
from matcher.ranking.profile_text import profile_text
from matcher.records import Enterprise
from matcher.settings import Settings
from matcher.text import tokenize

if TYPE_CHECKING:
    from matcher.store import Store

logger = logging.getLogger(__name__)

VECTOR_DIR = "vector"
LEXICAL_DIR = "lexical"
CACHE_FILE = "embeddings.sqlite"
ENGINES = ("local", "ray")
RRF_K = 60

Progress = Callable[[int, int], None]


@dataclass
class IndexStatus:
    """Outcome of a build or update."""

    path: str
    embedder_id: str
    count: int
    lexical_count: int
    embedded: int = 0  # profiles embedded now
    cached: int = 0  # profiles whose vectors came from the cache
    removed: int = 0
    factory: str | None = None
    engine: str = "local"
    build_id: str = ""
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def index_dirs(settings: Settings) -> tuple[Path, Path]:
    """(vector dir, lexical dir) under ``settings.index_path``."""
    assert settings.index_path is not None  # derived by Settings
    return settings.index_path / VECTOR_DIR, settings.index_path / LEXICAL_DIR


def doc_tokens(e: Enterprise) -> list[str]:
    """Lexical tokens of an enterprise: jieba over name, aliases, product names and business scope."""
    parts = [e.name, *e.aliases, *(p.name for p in e.products), e.scope]
    return tokenize(" ".join(p for p in parts if p))


def _batched(items: Iterable[Enterprise], size: int) -> Iterator[list[Enterprise]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _tenant_of(enterprise_id: str) -> str | None:
    return enterprise_id.split(":", 1)[0] if ":" in enterprise_id else None


def _open_cache(settings: Settings):  # -> models.cache.EmbeddingCache
    from models.cache import EmbeddingCache

    settings.ensure_dirs()
    return EmbeddingCache(settings.cache_dir / CACHE_FILE)


def _embed(embedder, texts: list[str], cache, status: IndexStatus) -> np.ndarray:
    from models.cache import CacheStats, embed_cached

    stats = CacheStats()
    out = embed_cached(embedder, texts, cache, kind="passage", stats=stats)
    status.embedded += stats.misses
    status.cached += stats.hits
    return out


def build_index(
    store,
    embedder,
    settings: Settings,
    progress: Progress | None = None,
    engine: str = "local",
    catalogue: Catalogue | None = None,
    batch_size: int = 256,
) -> IndexStatus:
    """Rebuild both indexes from every enterprise in the store and save them.

    Args:
        store: A :class:`matcher.store.store.Store`.
        embedder: A :class:`models.embedders.Embedder`.
        settings: Where to save (``index_path``), the cache dir, the FAISS factory and HNSW threshold.
        progress: Called with ``(done, total)`` as profiles are processed.
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data batch embedding of the cache misses).
        catalogue: Names the enterprises' mapped links in the profile text (default: packaged catalogue).
        batch_size: Profiles per embedding batch.

    Returns:
        The :class:`IndexStatus` of the saved build.
    """
    from index.lexical import LexicalIndex
    from matcher.store.tenancy import ALL_TENANTS

    if engine not in ENGINES:
        raise InvalidRequestError("engine", engine, f"expected one of: {', '.join(ENGINES)}")
    t0 = time.perf_counter()
    catalogue = catalogue or default_catalogue()
    total = store.count_enterprises(ALL_TENANTS)
    vdir, ldir = index_dirs(settings)
    status = IndexStatus(path=str(settings.index_path), embedder_id=embedder.id, count=0, lexical_count=0,
                         engine=engine, build_id=uuid.uuid4().hex[:12])  # fmt: skip
    ids: list[str] = []
    tokens: list[list[str]] = []
    texts: list[str] = []
    chunks: list[np.ndarray] = []
    cache = _open_cache(settings)
    try:
        done = 0
        for batch in _batched(store.iter_enterprises(ALL_TENANTS), batch_size):
            batch_texts = [profile_text(e, catalogue) for e in batch]
            ids += [e.id for e in batch]
            tokens += [doc_tokens(e) for e in batch]
            if engine == "local":
                chunks.append(_embed(embedder, batch_texts, cache, status))
            else:
                texts += batch_texts
            done += len(batch)
            if progress:
                progress(done, max(total, done))
        if engine == "ray":
            chunks = [_embed_with_ray(embedder, ids, texts, cache, settings, status, progress)]
        vectors = np.vstack(chunks) if chunks else np.zeros((0, embedder.dim), dtype=np.float32)
    finally:
        cache.close()
    with _saved_index_lock(settings):  # the embedding above ran without it
        previous = _saved_milvus_index(settings)
        vindex = _new_vector_index(settings, embedder, status.build_id)
        vindex.add(ids, vectors)
        lindex = LexicalIndex().build(ids, tokens)
        extra = {"build_id": status.build_id, "store_count": total, "engine": engine}
        vindex.save(vdir, {**extra, "embedder_id": embedder.id})
        lindex.save(ldir, {**extra, "embedder_id": embedder.id})
        if previous is not None:  # the new manifest is current: its predecessor's collection can go
            _drop_quietly(previous)
        store.mark_embedded(ids, embedder.id)
    status.count, status.lexical_count = len(vindex), len(lindex)
    status.factory = vindex.resolved_factory
    status.seconds = time.perf_counter() - t0
    logger.info(
        "index built: %d enterprises (%d embedded, %d from cache) with %s as %s in %.1f s",
        status.count, status.embedded, status.cached, embedder.id, status.factory, status.seconds,
    )  # fmt: skip
    return status


def _embed_with_ray(
    embedder, ids: list[str], texts: list[str], cache, settings: Settings, status: IndexStatus,
    progress: Progress | None,
) -> np.ndarray:  # fmt: skip
    """Cache hits locally, misses on Ray Data with the same embedder (actors load it by name)."""
    from models.embedders import embedder_name_for_id
    from models.ray_embed import ray_embed

    name = embedder_name_for_id(embedder.id)
    model_id = f"{embedder.id}:passage"
    found = cache.get_many(model_id, texts)
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    missing = []
    for i, v in enumerate(found):
        if v is None or v.shape[0] != embedder.dim:
            missing.append(i)
        else:
            out[i] = v
    status.cached += len(texts) - len(missing)
    if missing:
        if name != "hash":
            from models.e5_convert import ensure_e5_model

            if name.startswith("e5"):
                ensure_e5_model(settings.cache_dir)  # convert once here, not in every actor
        pos = {ids[i]: i for i in missing}
        done = 0
        for batch_ids, vecs in ray_embed(
            ((ids[i], texts[i]) for i in missing), name, cache_dir=settings.cache_dir
        ):
            rows = [pos[b] for b in batch_ids]
            out[rows] = vecs
            cache.put_many(model_id, [texts[r] for r in rows], vecs)
            done += len(rows)
            if progress:
                progress(done, len(missing))
        status.embedded += len(missing)
    return out


@contextmanager
def _saved_index_lock(settings: Settings) -> Iterator[None]:
    """One writer of the saved indexes at a time across processes (server workers persisting, a CLI build):
    each loads the current version, changes it and saves the next, so without the lock one would overwrite
    the other's changes. (Each index folder's own save lock is a different file, taken inside.)"""
    from index.storage import writer_lock

    with writer_lock(Path(settings.index_path)):
        yield


def _new_vector_index(settings: Settings, embedder, build_id: str):
    """An empty vector index of the configured backend: FAISS files, or a fresh Milvus collection per build
    (the running index keeps serving from the previous collection until the new manifest is current)."""
    if settings.vector_backend == "milvus":
        from index.milvus import MilvusVectorIndex

        return MilvusVectorIndex(
            embedder.dim, str(settings.milvus_uri), f"{settings.milvus_collection}_{build_id}",
            embedder_id=embedder.id, index_type=settings.milvus_index_type, token=settings.milvus_token,
        )  # fmt: skip
    from index.vector import VectorIndex

    return VectorIndex(embedder.dim, factory=settings.index_factory, hnsw_threshold=settings.hnsw_threshold,
                       embedder_id=embedder.id)  # fmt: skip


def _saved_kind(vdir: Path) -> str | None:
    """The saved vector index's backend kind (``faiss`` / ``milvus``), None when nothing is saved."""
    from index.errors import VectorIndexError
    from index.storage import load_current

    try:
        _, manifest = load_current(vdir, verify=False)
    except VectorIndexError:
        return None
    return manifest.get("kind")


def _saved_milvus_index(settings: Settings):
    """The saved index's Milvus collection (None when the saved index is not on Milvus or is unreadable)."""
    vdir = index_dirs(settings)[0]
    if _saved_kind(vdir) != "milvus":
        return None
    from index.milvus import MilvusVectorIndex

    try:
        return MilvusVectorIndex.load(vdir, verify=False, token=settings.milvus_token)
    except Exception as exc:  # its collection is gone already: nothing to drop
        logger.info("previous Milvus index not loadable (%s); nothing to drop", exc)
        return None


def _drop_quietly(index) -> None:
    """Drop a replaced Milvus collection; failing leaves an orphan that wastes space but harms nothing."""
    try:
        index.drop()
        logger.info("dropped the previous Milvus collection %s", index.collection)
    except Exception as exc:
        logger.warning("could not drop the previous Milvus collection %s: %s", index.collection, exc)
    finally:
        index.close()


def load_vector_index(settings: Settings, embedder_id: str | None):
    """The saved vector index, FAISS or Milvus as its manifest says (embedder id checked)."""
    vdir = index_dirs(settings)[0]
    if _saved_kind(vdir) == "milvus":
        from index.milvus import MilvusVectorIndex

        return MilvusVectorIndex.load(vdir, expected_embedder_id=embedder_id, token=settings.milvus_token)
    from index.vector import VectorIndex

    return VectorIndex.load(vdir, expected_embedder_id=embedder_id)


def _load_indexes(settings: Settings, embedder_id: str | None):
    from index.lexical import LexicalIndex

    return load_vector_index(settings, embedder_id), LexicalIndex.load(index_dirs(settings)[1])


def update_index(
    store,
    ids: Sequence[str] | None = None,
    embedder=None,
    settings: Settings | None = None,
    catalogue: Catalogue | None = None,
) -> IndexStatus:
    """Upsert / remove the given enterprises in the saved indexes, without a full rebuild.

    Args:
        store: The store the ids are read from; an id it no longer has is removed from the indexes.
        ids: Enterprise ids to refresh; None = the store's pending ids (changed since embedded) plus the
            indexed ids the store no longer has.
        embedder: Default: the configured embedder.
        settings: Default: :func:`matcher.settings.get_settings`.
        catalogue: For the profile text (default: packaged catalogue).

    Raises:
        index.errors.IndexNotFoundError: nothing built yet (run :func:`build_index`).
        index.errors.IndexManifestError: the saved index was built with another embedder.
    """
    from matcher.settings import get_settings

    settings = settings or get_settings()
    if embedder is None:
        from models.embedders import get_embedder

        embedder = get_embedder(settings.embedder, cache_dir=settings.cache_dir)
    t0 = time.perf_counter()
    catalogue = catalogue or default_catalogue()
    with _saved_index_lock(settings):
        return _update_locked(store, ids, embedder, settings, catalogue, t0)


def _update_locked(store, ids, embedder, settings: Settings, catalogue: Catalogue, t0: float) -> IndexStatus:
    """:func:`update_index` under the saved-index lock: load the current version, change it, save the next."""
    from matcher.store.tenancy import ALL_TENANTS

    vindex, lindex = _load_indexes(settings, embedder.id)
    if ids is None:
        present = set(store.enterprise_ids(ALL_TENANTS))
        ids = sorted(set(store.pending_embedding(embedder.id)) | (set(vindex.ids) - present))
    status = IndexStatus(path=str(settings.index_path), embedder_id=embedder.id, count=0, lexical_count=0,
                         build_id=uuid.uuid4().hex[:12])  # fmt: skip
    found: list[Enterprise] = []
    gone: list[str] = []
    for eid in dict.fromkeys(ids):
        try:
            found.append(store.get_enterprise(eid, tenant=_tenant_of(eid)))
        except UnknownEnterpriseError:
            gone.append(eid)
    cache = _open_cache(settings)
    try:
        if found:
            vectors = _embed(embedder, [profile_text(e, catalogue) for e in found], cache, status)
            vindex.upsert([e.id for e in found], vectors)
            lindex.upsert([e.id for e in found], [doc_tokens(e) for e in found])
    finally:
        cache.close()
    status.removed = vindex.remove(gone)
    lindex.remove(gone)
    extra = {
        "build_id": status.build_id,
        "store_count": store.count_enterprises(ALL_TENANTS),
        "engine": "update",
    }
    vindex.save(index_dirs(settings)[0], {**extra, "embedder_id": embedder.id})
    lindex.save(index_dirs(settings)[1], {**extra, "embedder_id": embedder.id})
    if found:
        store.mark_embedded([e.id for e in found], embedder.id)
    status.count, status.lexical_count = len(vindex), len(lindex)
    status.factory = vindex.resolved_factory
    status.seconds = time.perf_counter() - t0
    logger.info(
        "index updated: %d upserted, %d removed in %.1f s", len(found), status.removed, status.seconds
    )
    return status


def index_status(settings: Settings, store: Store | None = None) -> dict[str, Any]:
    """What is saved under ``settings.index_path`` (manifests only; nothing is loaded or verified).

    With ``store``, ``consistent`` also requires both indexes to hold as many rows as the store holds across
    every tenant (``store_count``); ``missing`` is how many fewer they hold.
    """
    from index.errors import VectorIndexError
    from index.storage import load_current

    out: dict[str, Any] = {
        "path": str(settings.index_path),
        "exists": False,
        "configured_embedder": settings.embedder,
    }
    for name, folder in zip(("vector", "lexical"), index_dirs(settings), strict=True):
        try:
            vdir, manifest = load_current(folder, verify=False)
        except VectorIndexError as exc:
            out[name] = {"error": str(exc)}
            continue
        extra = manifest.get("extra", {})
        out[name] = {
            "version": vdir.name,
            "count": manifest.get("count"),
            "created_at": manifest.get("created_at"),
            "build_id": extra.get("build_id"),
            "embedder_id": manifest.get("embedder_id") or extra.get("embedder_id"),
            "store_count": extra.get("store_count"),
        }
        if name == "vector":
            out[name]["backend"] = "milvus" if manifest.get("kind") == "milvus" else "faiss"
            if manifest.get("kind") == "milvus":
                out[name].update(uri=manifest.get("uri"), collection=manifest.get("collection"))
            out[name].update(factory=manifest.get("resolved_factory"), dim=manifest.get("dim"),
                             metric=manifest.get("metric"), sha256=manifest.get("sha256"),
                             ef_search=manifest.get("params", {}).get("ef_search"))  # fmt: skip
    v, lx = out.get("vector", {}), out.get("lexical", {})
    out["exists"] = "count" in v and "count" in lx
    out["consistent"] = out["exists"] and v.get("build_id") == lx.get("build_id")
    if store is not None:
        from matcher.store import ALL_TENANTS

        out["store_count"] = store.count_enterprises(ALL_TENANTS)
        if out["exists"]:
            out["missing"] = max(0, out["store_count"] - min(v["count"] or 0, lx["count"] or 0))
            out["consistent"] = out["consistent"] and v["count"] == lx["count"] == out["store_count"]
    return out


@dataclass
class SearchHit:
    """One fused search result."""

    id: str
    score: float
    dense_rank: int | None
    lexical_rank: int | None
    dense_score: float | None
    lexical_score: float | None


def search_index(
    query: str, k: int, settings: Settings, embedder=None, depth: int | None = None
) -> list[SearchHit]:
    """Plain hybrid search over the saved indexes: dense and BM25 lists fused by reciprocal rank (k=60).

    Raises:
        InvalidRequestError: empty query or ``k <= 0``.
        index.errors.IndexNotFoundError: nothing built yet.
    """
    if not query or not query.strip():
        raise InvalidRequestError("query", query, "expected a non-empty query")
    if k <= 0:
        raise InvalidRequestError("k", k, "expected a positive integer")
    if embedder is None:
        from models.embedders import get_embedder

        embedder = get_embedder(settings.embedder, cache_dir=settings.cache_dir)
    vindex, lindex = _load_indexes(settings, embedder.id)
    depth = depth or max(50, 3 * k)
    dense = vindex.search(embedder.encode_queries([query]), depth)[0]
    lexical = lindex.search(tokenize(query), depth)
    return fuse_rrf(dense, lexical)[:k]


def fuse_rrf(
    dense: list[tuple[str, float]], lexical: list[tuple[str, float]], k: int = RRF_K
) -> list[SearchHit]:
    """Reciprocal-rank fusion ``Σ 1/(k + rank)`` of two ranked lists (rank from 1)."""
    hits: dict[str, SearchHit] = {}
    for rank, (i, s) in enumerate(dense, 1):
        hits[i] = SearchHit(i, 1 / (k + rank), rank, None, s, None)
    for rank, (i, s) in enumerate(lexical, 1):
        h = hits.setdefault(i, SearchHit(i, 0.0, None, None, None, None))
        h.score += 1 / (k + rank)
        h.lexical_rank, h.lexical_score = rank, s
    return sorted(hits.values(), key=lambda h: (-h.score, h.id))
