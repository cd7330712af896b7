"""The engine: a workspace plus a fitted recommender and gap index, kept current as the store changes.

Jobs (CLI, service) open one Engine per process::

    engine = Engine.open()                 # settings from env; loads the demo corpus into an empty store
    rec = engine.recommend(RecommendRequest(region="玛纳斯县", chain="aluminium", link="aluminium_rod"))
    engine.refresh(["id1", "id2"])         # after upserts/deletes: re-map, re-embed and replace in the index
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import cached_property

from matcher.knowledge.aiding import aiding_for
from matcher.knowledge.regions import RegionBook
from matcher.ranking.fit import GapIndex, RegionFit
from matcher.ranking.ltr import apply_saved_ranker
from matcher.ranking.recommendation import Recommendation, RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.ranking.scoring import ScoringWeights
from matcher.records import Enterprise
from matcher.settings import Settings, get_settings
from matcher.store.workspace import Workspace

logger = logging.getLogger(__name__)


class Engine:
    """Workspace + fitted Recommender + GapIndex, with a lock around updates."""

    def __init__(self, workspace: Workspace, embedder=None, weights: ScoringWeights | None = None) -> None:
        self.ws = workspace
        self._embedder = embedder
        self.weights = weights
        self._lock = threading.RLock()  # the recommender's fit and refreshes
        self._gap_lock = threading.RLock()  # the gap indexes (their build must not hold up index refreshes)
        self._recommender: Recommender | None = None
        self._gap_index: GapIndex | None = None
        self._tenant_gap_index: dict[str, GapIndex] = {}  # each tenant's own regions, built on first use

    @classmethod
    def open(cls, settings: Settings | None = None, embedder=None) -> Engine:
        return cls(Workspace.open(settings or get_settings()), embedder)

    @property
    def settings(self) -> Settings:
        return self.ws.settings

    @property
    def catalogue(self):
        return self.ws.catalogue

    @cached_property
    def embedder(self):
        if self._embedder is not None:
            return self._embedder
        from models.embedders import LazyEmbedder

        emb = LazyEmbedder(self.settings.embedder, cache_dir=self.settings.cache_dir)  # loads on first encode
        logger.info("embedder: %s (dim %d)", emb.id, emb.dim)
        return emb

    @cached_property
    def embedding_cache(self):
        from models.cache import EmbeddingCache

        self.settings.ensure_dirs()
        return EmbeddingCache(self.settings.cache_dir / "embeddings.sqlite")

    def ensure_corpus(self) -> int:
        """Load the embedded demo enterprises into an empty store (when settings allow); returns the count."""
        store = self.ws.store
        n = store.count_enterprises()
        if n == 0 and self.settings.demo_on_empty:
            from matcher.knowledge.mapping import LinkMapper
            from matcher.store.demo import load_demo_enterprises

            mapper = LinkMapper(self.catalogue)
            demo = load_demo_enterprises()
            for e in demo:
                e.links = mapper.map(e)
            summary = store.upsert_enterprises(demo)
            logger.info("empty store: loaded the embedded demo corpus (%d enterprises)", summary.inserted)
            n = store.count_enterprises()
        return n

    def all_enterprises(self) -> list[Enterprise]:
        """Every enterprise in the store: the shared corpus and all tenants' private rows (masked per request)."""
        from matcher.gc_pause import paused_gc
        from matcher.store.tenancy import ALL_TENANTS

        with paused_gc():
            return list(self.ws.store.iter_enterprises(ALL_TENANTS))

    def regions(self, tenant: str | None = None) -> RegionBook:
        return self.ws.regions(tenant)

    def recommender(self, progress: Callable[[int, int], None] | None = None) -> Recommender:
        """The fitted recommender: loaded from the saved snapshot plus the store's changes since (the change
        feed), else fitted from the store (embeddings from the cache) and saved as the next snapshot."""
        with self._lock:
            if self._recommender is None:
                self.ensure_corpus()
                rec = self.unfitted_recommender()
                self._recommender = self._snapshots.restore(rec) or self._snapshots.fit(rec, progress)
            return self._recommender

    def unfitted_recommender(self) -> Recommender:
        """A new recommender with this engine's catalogue, embedder, weights, learned ranker and signals."""
        rec = Recommender(
            self.catalogue, self.embedder, weights=self.weights, index_factory=self.settings.index_factory
        )
        rec.reranker = self._load_reranker()
        apply_saved_ranker(rec, self.settings.data_dir / "ranker")
        rec.signals = self._load_signals()
        rec.query_cache = self.embedding_cache  # need vectors persist across processes
        return rec

    @cached_property
    def _snapshots(self):
        from matcher.ranking.restore import SnapshotKeeper

        return SnapshotKeeper(self)

    @property
    def snapshots(self):
        """The :class:`~matcher.ranking.restore.SnapshotKeeper` of this engine's recommender."""
        return self._snapshots

    def save_snapshot(self) -> None:
        """Save the fitted recommender (with its warmed query cache) for the next process to load."""
        with self._lock:
            if self._recommender is None:
                return
            if self._snapshots.defer_save:  # a server: its refresher saves from a forked child
                self._snapshots.dirty = True
                return
            self._snapshots.save(self._recommender)

    def _load_signals(self):
        """The shared corpus's expansion signals as a SignalBook (None when there are none); tenants' private
        events show on their firms' timelines but do not reach the shared ranking."""
        from matcher.ranking.signals_features import SignalBook
        from matcher.store.signals import signals_of

        try:
            events = signals_of(self.ws.store, None, None)
        except Exception as exc:  # a store without the signals table must not take the service down
            logger.warning("signals not loaded (%s)", exc)
            return None
        if not events:
            return None
        logger.info("expansion signals loaded: %d shared events", len(events))
        return SignalBook(events, self.catalogue)

    def _load_reranker(self):
        from matcher.ranking.reranker import Reranker

        path = self.settings.data_dir / "reranker"
        if (path / "reranker.json").exists():
            try:
                rr = Reranker.load(path)
                logger.info("learned reranker loaded: %s", rr.version)
                return rr
            except Exception as exc:  # a broken artefact must not take the service down
                logger.warning("reranker at %s not usable (%s); using the default scorer", path, exc)
        return None

    def warm_queries(self) -> int:
        """Embed the query of every catalogue need (each link and each chain) into the recommender's query
        cache, so no request pays for a model call on a catalogue gap; returns how many needs."""
        rec = self.recommender()
        needs: list[tuple[str | None, str | None]] = []
        for chain_id, chain in self.catalogue.chains.items():
            needs.append((chain_id, None))
            needs.extend((chain_id, link_id) for link_id in chain.link_ids)
        before = len(rec.__dict__.get("_qcache") or ())
        for start in range(0, len(needs), 256):
            rec.prefetch_needs(needs[start : start + 256])
        if len(rec.__dict__.get("_qcache") or ()) > before:  # new query vectors: the next start loads them
            self.save_snapshot()
        return len(needs)

    def gap_index(self) -> GapIndex:
        with self._gap_lock:
            if self._gap_index is None:
                self._gap_index = GapIndex(self.catalogue, self.embedder).build(self.regions())
            return self._gap_index

    def recommend(self, req: RecommendRequest) -> Recommendation:
        book = self.regions(req.tenant)
        rec = self.recommender()
        aiding = None
        if req.region:
            aiding = aiding_for(book.get(req.region, req.tenant), book)
        elif req.prefecture:
            from matcher.knowledge.aiding import load_aiding

            aiding = load_aiding().get(req.prefecture, [])
        return rec.recommend(req, book, aiding=aiding)

    def recommend_region(self, region: str, k: int = 10, max_gaps: int = 10, tenant: str | None = None,
                         chain: str | None = None) -> list[Recommendation]:
        book = self.regions(tenant)
        reg = book.get(region, tenant)
        rec = self.recommender()
        from matcher.knowledge.gaps import diagnose

        out = []
        gaps = diagnose(reg, self.catalogue, chain=chain, book=book).gaps[:max_gaps]
        rec.prefetch_needs([(g.chain_id, g.link_id) for g in gaps])
        for g in gaps:
            req = RecommendRequest(region=reg.id, chain=g.chain_id, link=g.link_id, gap_type=g.type, k=k, tenant=tenant)
            out.append(rec.recommend(req, book, aiding=aiding_for(reg, book)))
        return out

    def fit_regions(self, enterprise_key: str, k: int = 10, tenant: str | None = None) -> tuple[Enterprise, list[RegionFit]]:
        """Regions whose gaps an enterprise (id or name) fits best."""
        store = self.ws.store
        try:
            ent = store.get_enterprise(enterprise_key, tenant)
        except KeyError:
            found = store.find_enterprises(enterprise_key, tenant, limit=1)
            if not found:
                from matcher.errors import UnknownEnterpriseError

                raise UnknownEnterpriseError(enterprise_key) from None
            ent = found[0]
        if not ent.links:
            from matcher.knowledge.mapping import LinkMapper

            ent.links = LinkMapper(self.catalogue).map(ent)
        shared = self.gap_index()
        if tenant is None:
            return ent, shared.fit(ent, k=k)
        own, tindex = self._tenant_gaps(tenant)
        return ent, shared.fit(ent, k=k, exclude=own, also=[tindex] if own else [])

    def _tenant_gaps(self, tenant: str) -> tuple[set[str], GapIndex]:
        """Ids of the tenant's own regions (which override shared ones of the same id) and their gap index."""
        book = self.regions(tenant)
        own = {r.id for r in book if r.tenant == tenant}
        with self._gap_lock:
            tindex = self._tenant_gap_index.get(tenant)
            if tindex is None:
                tindex = GapIndex(self.catalogue, self.embedder).build(book, only=own)
                self._tenant_gap_index[tenant] = tindex
        return own, tindex

    def refresh(self, ids: Sequence[str], tenant: str | None = None) -> None:
        """Bring changed / deleted enterprises into the fitted recommender without a full rebuild."""
        apply = self.prepare_refresh([(eid, tenant) for eid in ids])
        if apply is not None:
            apply()

    def prepare_refresh(self, changes: Sequence[tuple[str, str | None]]) -> Callable[[], None] | None:
        """The costly part of :meth:`refresh` for ``(enterprise id, tenant)`` pairs (read, re-map, re-embed,
        patch the per-firm arrays), done while searches go on; returns the quick swap to run where
        searches are kept out (None before the recommender is fitted). Prepare and apply one at a time."""
        with self._lock:
            rec = self._recommender
        if rec is None:
            return None
        from matcher.gc_pause import paused_gc

        ids = list(dict.fromkeys(eid for eid, _ in changes))
        with paused_gc():
            found = self.ws.store.enterprises_by_id(ids)  # one query per 500 ids, not one per firm
            present = [found[i] for i in ids if i in found]
            gone = [i for i in ids if i not in found]
            prepared = rec.prepare_update(present, gone, cache=self.embedding_cache)
        return lambda: rec.apply_update(prepared)

    def region_changed(self, region_id: str, tenant: str | None = None) -> None:
        """Keep the gap indexes current after a region of ``tenant`` (None: shared) was saved or deleted."""
        with self._gap_lock:
            if tenant is not None:
                self._tenant_gap_index.pop(tenant, None)  # a tenant has a few regions: rebuilt on next use
                return
            if self._gap_index is not None:
                self._gap_index.update_region(region_id, self.regions())
            self._tenant_gap_index.clear()  # tenants' regions may be diagnosed against shared ones

