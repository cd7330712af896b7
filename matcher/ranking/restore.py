"""Start from saved state: the engine's recommender is loaded from its snapshot and brought up to the store through
the change feed, or fitted and saved when no usable snapshot exists (see :mod:`matcher.ranking.snapshot`).

Served = stored: a loaded snapshot is used only after every store change made since it was saved has been applied
(changes are read from the feed; an upsert is re-read from the store, so replaying one already applied is
harmless). When the feed no longer covers that span (pruned), or the span is large enough that a fit is cheaper,
or the row count still disagrees with the store afterwards, the engine refits instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from matcher.ranking.snapshot import STATE_VERSION, Stamp, digest, load_snapshot, save_snapshot, snapshot_path

if TYPE_CHECKING:
    from matcher.ranking.recommender import Recommender

__all__ = ["SnapshotKeeper"]

logger = logging.getLogger(__name__)

MAX_REPLAY_SHARE = 0.05  # beyond this share of the corpus changed, refit: corpus statistics (IDF, product
#                         space) are only refreshed by a fit, and a large replay costs about as much


class SnapshotKeeper:
    """Loads, catches up and saves one engine's recommender snapshot."""

    def __init__(self, engine: Any) -> None:
        """``engine``: the :class:`~matcher.ranking.engine.Engine` whose recommender this keeps."""
        self.engine = engine
        self.seq = 0  # change-feed position the in-memory state is known to include
        self.outcome = ""  # "restored" or "fitted", once the recommender exists
        self.reason = ""  # why a snapshot was not used (stale, unreadable, pruned, behind, too_many, count, none)
        self.replayed = 0  # store changes applied on top of the snapshot

    @property
    def enabled(self) -> bool:
        return bool(self.engine.settings.snapshots)

    @property
    def path(self):
        return snapshot_path(self.engine.settings.data_dir)

    def _stamp(self, rec: Recommender, seq: int, rows: int) -> Stamp:
        cat = rec.catalogue
        return Stamp(
            version=STATE_VERSION,
            store=str(self.engine.settings.database_url),
            embedder=rec.embedder.id,
            catalogue=digest(([(cid, repr(c)) for cid, c in sorted(cat.chains.items())],
                              [(lid, repr(link)) for lid, link in sorted(cat.links.items())])),  # fmt: skip
            settings=digest((rec.index_factory, rec.embedder.dim)),
            seq=seq,
            rows=rows,
        )

    def restore(self, rec: Recommender) -> Recommender | None:
        """``rec`` loaded from the snapshot and caught up with the store, or None (the caller fits)."""
        if not self.enabled:
            return None
        store = self.engine.ws.store
        stamp = load_snapshot(rec, self.path, self._stamp(rec, 0, 0))
        if stamp is None:
            self.reason = "none" if not self.path.exists() else "stale_or_unreadable"
            return None
        try:
            replayed = self._catch_up(rec, stamp)
        except Exception:  # anything odd in the feed: a fit is always correct
            logger.exception("snapshot catch-up failed; refitting")
            replayed = None
        if replayed is None:
            return None
        from matcher.store.tenancy import ALL_TENANTS

        if len(rec.enterprises_) != store.count_enterprises(ALL_TENANTS):
            self.reason = "count"
            logger.warning("snapshot + change feed hold %d enterprises, the store %d: refitting",
                           len(rec.enterprises_), store.count_enterprises(ALL_TENANTS))  # fmt: skip
            return None
        logger.info("recommender restored from snapshot (seq %d) + %d changes from the feed", stamp.seq, replayed)
        self.outcome, self.replayed = "restored", replayed
        if replayed:
            self.save(rec)
        return rec

    def _catch_up(self, rec: Recommender, stamp: Stamp) -> int | None:
        """Apply the store's changes after ``stamp.seq``; returns how many firms changed, None when a refit is
        needed (the feed was pruned past the snapshot, or too much changed)."""
        from matcher.errors import UnknownEnterpriseError
        from matcher.store.db_models import EnterpriseChangeRow

        store = self.engine.ws.store
        now = store.last_change_seq()
        if now < stamp.seq:  # the feed was emptied or reset since the snapshot: its changes cannot be listed
            logger.info("change feed behind the snapshot (seq %d < %d): refitting", now, stamp.seq)
            self.reason = "behind"
            return None
        if now == stamp.seq:
            self.seq = stamp.seq
            return 0
        with store._reader() as session:
            oldest = session.execute(select(func.min(EnterpriseChangeRow.seq))).scalar() or 0
        if oldest > stamp.seq + 1:
            logger.info("change feed pruned past the snapshot (oldest seq %d > %d): refitting", oldest, stamp.seq + 1)
            self.reason = "pruned"
            return None
        latest: dict[str, tuple[str | None, str]] = {}
        cursor = stamp.seq
        limit = max(1000, int(MAX_REPLAY_SHARE * stamp.rows))
        while cursor < now:
            page = store.changes_since(cursor, limit=10_000)
            if not page:
                break
            for c in page:
                latest[c.enterprise_id] = (c.tenant, c.op)
            cursor = page[-1].seq
            if len(latest) > limit:
                logger.info("%d+ firms changed since the snapshot: refitting", len(latest))
                self.reason = "too_many"
                return None
        present: list[Any] = []
        gone: list[str] = []
        for eid, (tenant, _op) in latest.items():
            try:
                present.append(store.get_enterprise(eid, tenant))
            except UnknownEnterpriseError:
                gone.append(eid)
        gone = [g for g in gone if g in rec.id_to_idx_]
        if present or gone:
            rec.update(present, gone, cache=self.engine.embedding_cache)
        self.seq = cursor
        return len(present) + len(gone)

    def fit(self, rec: Recommender, progress) -> Recommender:
        """Fit ``rec`` on every stored enterprise and save the snapshot."""
        store = self.engine.ws.store
        self.seq = store.last_change_seq()  # read before the store: a change racing the fit is replayed next time
        rec.fit(self.engine.all_enterprises(), progress=progress, cache=self.engine.embedding_cache)
        self.outcome = "fitted"
        if self.enabled:
            self.save(rec)
        return rec

    def save(self, rec: Recommender) -> None:
        if not self.enabled:
            return
        try:
            save_snapshot(rec, self.path, self._stamp(rec, self.seq, len(rec.enterprises_)))
        except OSError as exc:  # a full or read-only disk: serving goes on, the next start refits
            logger.warning("recommender snapshot not saved (%s)", exc)
