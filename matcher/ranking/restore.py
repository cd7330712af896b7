"""Start from saved state: the engine's recommender is loaded from its snapshot and brought up to the store through
the change feed, or fitted and saved when no usable snapshot exists (see :mod:`matcher.ranking.snapshot`).

Served = stored: a loaded snapshot is used only after every store change made since it was saved has been applied
(changes are read from the feed; an upsert is re-read from the store, so replaying one already applied is
harmless). When the feed no longer covers that span (pruned), or the span is large enough that a fit is cheaper,
or the row count still disagrees with the store afterwards, the engine refits instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from matcher.ranking.snapshot import STATE_VERSION, Stamp, digest, load_snapshot, save_snapshot, snapshot_path

if TYPE_CHECKING:
    from matcher.ranking.recommender import Recommender

__all__ = ["SnapshotKeeper", "replay_feed", "replay_limit"]

logger = logging.getLogger(__name__)

LOAD_MS, REPLAY_MS, FIT_MS = 0.08, 0.17, 0.19
"""CPU-ms of a start, measured on 13–42k firms (hash vectors, PostgreSQL; ``chainmatch bench start``): loading
the snapshot, per snapshot row; replaying the feed, per changed firm; a fit, per stored firm (store reads
included; above 50k firms a fit also builds the HNSW graph, about 0.24 ms a firm more, left out here). A start
replays while that is the cheaper start (:func:`replay_limit`) and refits beyond."""

MIN_DRIFT = 1000  # fewer changed firms never call for a refit, whatever the corpus size
MAX_DRIFT_SHARE = 0.5
"""Corpus statistics (IDF, the TF-IDF vocabulary, the product space) are refreshed only by a fit: once the firms
changed since the last fit pass this share of the corpus, a server refits in the background and swaps the result
in (:meth:`SnapshotKeeper.drifted`)."""


class SnapshotKeeper:
    """Loads, catches up and saves one engine's recommender snapshot."""

    def __init__(self, engine: Any) -> None:
        """``engine``: the :class:`~matcher.ranking.engine.Engine` whose recommender this keeps."""
        self.engine = engine
        self.seq = 0  # change-feed position the in-memory state is known to include
        self.saved_seq = -1  # change-feed position of the snapshot on disk (-1: none written by this process)
        self.defer_save = False  # a server saves after start-up off the start path (see save_in_child)
        self.dirty = False  # state worth saving that the feed position does not show (new query vectors)
        self.outcome = ""  # "restored" or "fitted", once the recommender exists
        self.reason = (
            ""  # why a snapshot was not used (stale, unreadable, pruned, behind, too_many, count, none)
        )
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
            catalogue=digest(
                (
                    [(cid, repr(c)) for cid, c in sorted(cat.chains.items())],
                    [(lid, repr(link)) for lid, link in sorted(cat.links.items())],
                )
            ),  # fmt: skip
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
        logger.info(
            "recommender restored from snapshot (seq %d) + %d changes from the feed", stamp.seq, replayed
        )
        self.outcome, self.replayed, self.saved_seq = "restored", replayed, stamp.seq
        if replayed and not self.defer_save:
            self.save(rec)
        return rec

    def _catch_up(self, rec: Recommender, stamp: Stamp) -> int | None:
        """Apply the store's changes after ``stamp.seq``; returns how many firms changed, None when a refit is
        needed (the feed was pruned past the snapshot, or too much changed)."""
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
            logger.info(
                "change feed pruned past the snapshot (oldest seq %d > %d): refitting", oldest, stamp.seq + 1
            )
            self.reason = "pruned"
            return None
        from matcher.store.tenancy import ALL_TENANTS

        limit = replay_limit(stamp.rows, store.count_enterprises(ALL_TENANTS))
        replayed = replay_feed(rec, store, stamp.seq, cache=self.engine.embedding_cache, limit=limit, upto=now)
        if replayed is None:
            logger.info("%d+ firms changed since the snapshot: refitting", limit)
            self.reason = "too_many"
            return None
        cursor, n = replayed
        self.seq = cursor
        return n

    def fit(self, rec: Recommender, progress) -> Recommender:
        """Fit ``rec`` on every stored enterprise and save the snapshot."""
        store = self.engine.ws.store
        self.seq = (
            store.last_change_seq()
        )  # read before the store: a change racing the fit is replayed next time
        rec.fit(self.engine.all_enterprises(), progress=progress, cache=self.engine.embedding_cache)
        self.outcome = "fitted"
        if self.enabled and not self.defer_save:
            self.save(rec)
        return rec

    def save(self, rec: Recommender) -> None:
        """Save ``rec`` (whose state includes the feed up to ``self.seq``) in this thread."""
        if not self.enabled:
            return
        try:
            save_snapshot(rec, self.path, self._stamp(rec, self.seq, len(rec.enterprises_)))
            self.saved_seq, self.dirty = self.seq, False
        except OSError as exc:  # a full or read-only disk: serving goes on, the next start refits
            logger.warning("recommender snapshot not saved (%s)", exc)

    def drifted(self, rec: Recommender) -> bool:
        """True when ``rec``'s corpus statistics are stale enough for a refit (see :data:`MAX_DRIFT_SHARE`)."""
        changed = int(rec.__dict__.get("changed_since_fit_", 0))
        return changed > max(MIN_DRIFT, MAX_DRIFT_SHARE * len(rec.enterprises_))

    def covered_seq(self, applied: Collection[int], awaited: Collection[int], upto: int) -> int:
        """The furthest change-feed position ``p ≤ upto`` such that every change in ``(self.seq, p]`` is in
        ``applied`` (the sequence numbers the server's in-memory index has applied); ``awaited`` are numbers a
        follower skipped over and still waits for (they may yet commit), which the position cannot pass."""
        store = self.engine.ws.store
        pos = self.seq
        wait = min((w for w in awaited if w > pos), default=None)
        while pos < upto:
            page = [c for c in store.changes_since(pos, limit=10_000) if c.seq <= upto]
            if not page:
                break
            for c in page:
                if (wait is not None and c.seq > wait) or c.seq not in applied:
                    return pos
                pos = c.seq
        return pos

    def save_in_child(
        self, rec: Recommender, seq: int, hold: Callable[[], AbstractContextManager[Any]]
    ) -> bool:
        """Save ``rec`` stamped at feed position ``seq`` from a forked child process: the fork happens inside
        ``hold()`` (the lock that keeps index swaps out), so the child writes exactly the state it saw while the
        server's threads go on at once; pickling a large corpus takes seconds and would otherwise stall them.
        Falls back to saving in this thread where ``fork`` is not available. Returns True when written."""
        if not self.enabled:
            return False
        t0 = time.perf_counter()
        stamp = self._stamp(rec, seq, len(rec.enterprises_))
        if not hasattr(os, "fork"):
            with hold():
                save_snapshot(rec, self.path, stamp)
            self.saved_seq, self.dirty = seq, False
            return True
        with hold():
            pid = os.fork()
            if pid == 0:  # the child: no logging or locks (another thread may have held them at the fork)
                code = 1
                try:
                    _die_with_parent()
                    save_snapshot(rec, self.path, stamp, quiet=True)
                    code = 0
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            logger.warning("recommender snapshot at seq %d not saved (child exit status %s)", seq, status)
            return False
        self.saved_seq, self.dirty = seq, False
        logger.info("recommender snapshot saved at seq %d (%d rows) in %.1f s, written by a child process", seq,
                    stamp.rows, time.perf_counter() - t0)  # fmt: skip
        return True


def replay_limit(snapshot_rows: int, stored_rows: int, margin: float = 0.8) -> int:
    """The most changed firms a start replays on a snapshot of ``snapshot_rows`` before a fit of the
    ``stored_rows`` is the cheaper start (``margin`` of the break-even point; never below 1,000)."""
    even = (FIT_MS * stored_rows - LOAD_MS * snapshot_rows) / REPLAY_MS
    return max(1000, int(margin * even))


def replay_feed(
    rec: Recommender, store: Any, after: int, cache: Any = None, limit: int | None = None, upto: int | None = None
) -> tuple[int, int] | None:
    """Apply to ``rec`` every store change after feed position ``after`` (up to ``upto``, default the end), each
    firm re-read from the store once (a replay is idempotent). Returns (the last position read, firms upserted or
    removed), or None when more than ``limit`` firms changed (nothing applied: the caller refits)."""
    from matcher.gc_pause import paused_gc

    with paused_gc():
        return _replay(rec, store, after, cache, limit, upto)


def _replay(
    rec: Recommender, store: Any, after: int, cache: Any, limit: int | None, upto: int | None
) -> tuple[int, int] | None:
    latest: dict[str, None] = {}
    cursor = after
    while upto is None or cursor < upto:
        page = store.changes_since(cursor, limit=10_000)
        if not page:
            break
        latest.update((c.enterprise_id, None) for c in page)
        cursor = page[-1].seq
        if limit is not None and len(latest) > limit:
            return None
    found = store.enterprises_by_id(latest)
    present = [found[i] for i in latest if i in found]
    gone = [i for i in latest if i not in found and i in rec.id_to_idx_]
    if present or gone:
        rec.update(present, gone, cache=cache)
    return cursor, len(present) + len(gone)


def _die_with_parent() -> None:
    """Linux: the snapshot child is killed with its parent (no orphan writer after a ``kill -9``)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
