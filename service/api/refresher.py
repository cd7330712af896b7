"""The server's index refresher: API writes reach the in-memory index and the saved index off the request path.

An upsert or import commits to the store and answers at once (``index: "pending"``); its ids are queued here.
One worker thread then brings them into the fitted recommender: the costly part (re-map, re-embed, lexical
index, per-firm arrays) runs beside searches and only the swap holds the write lock. Refreshes start at most
once per ``refresh_interval_s``: the first change after a quiet spell is picked up at once, changes arriving
while one runs are merged into the next, so a burst of upserts costs a few refreshes, not one each.

Writes from other processes — a ``chainmatch import`` beside the server, another server process on the same
store — reach the index through the store's change log: :meth:`IndexRefresher.follow` polls it once per
refresh interval and queues what other origins committed (the server's own writes are already queued).

Every ``snapshot_interval_s`` (and on shutdown) the served recommender is saved as the start-up snapshot
(:mod:`matcher.ranking.restore`), stamped with the furthest change-feed position it is known to include: every
write arrives with the sequence numbers of its feed entries, and the position advances only over entries whose
refresh succeeded, so a restart (clean or ``kill -9``) loads the snapshot and replays just the tail. The snapshot
is written by a forked child (copy-on-write), so serving never waits for the pickling.

Every ``index_persist_interval_s`` (and on shutdown) the changed ids are also written into the saved index
under ``settings.index_path`` (:func:`matcher.indexing.build.update_index`), so ``chainmatch doctor`` finds the saved
index in step with the store without a repair. After start-up the refresher catches the saved index up with
changes a crash left out (the store is the truth; nothing is lost, only re-embedded).

Example:
    >>> ref = IndexRefresher(engine, lock, refresh_interval=1.0, persist_interval=30.0)   # doctest: +SKIP
    >>> ref.submit([("acme:1", "acme")]).result(timeout=30)                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matcher.indexing.build import IndexStatus
    from matcher.ranking.engine import Engine

__all__ = ["IndexRefresher"]

logger = logging.getLogger(__name__)

GAP_WAIT_S = 60.0
"""How long a skipped sequence number is asked for again before it is taken for a rolled-back write."""
MAX_GAPS = 1000
PRUNE_EVERY_S = 3600.0
KEEP_CHANGES_DAYS = 7

Change = tuple[str, "str | None"]
"""An enterprise id and the tenant that owns it (None: the shared corpus)."""


class IndexRefresher:
    """Queues changed enterprise ids and refreshes the in-memory and saved indexes on one worker thread.

    Args:
        engine: The engine whose fitted recommender is refreshed.
        write_lock: Called for a context manager that keeps searches out during the swap.
        refresh_interval: Least seconds between the starts of two refreshes (0 = back to back).
        persist_interval: Seconds between writes of changes into the saved index (0 = never).
        snapshot_interval: Least seconds between two saves of the start-up snapshot (0 = only at shutdown).
    """

    def __init__(
        self,
        engine: Engine,
        write_lock: Callable[[], AbstractContextManager[None]],
        refresh_interval: float = 1.0,
        persist_interval: float = 30.0,
        snapshot_interval: float = 0.0,
    ) -> None:
        self.engine = engine
        self._write_lock = write_lock
        self.refresh_interval = refresh_interval
        self.persist_interval = persist_interval
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainmatch-refresh")
        # writes into the saved index (persist, the start-up catch-up) run apart from in-memory refreshes, so a
        # long catch-up never holds back new writes from being served
        self._saver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainmatch-persist")
        self._lock = threading.Lock()
        self._queued: list[tuple[list[Change], Future[None], list[int]]] = []
        self._since: list[float] = []  # monotonic submit time of each queued or running batch (lag)
        self._pending = 0
        self._last_start = float("-inf")
        self._unsaved: set[str] = set()
        self._timer: threading.Timer | None = None
        self._closed = False
        self.refreshes = 0
        self.persists = 0
        self.on_refresh: Callable[[float], None] | None = None  # seconds of each refresh (metrics)
        self.origin = f"serve-{uuid.uuid4().hex[:12]}"  # this process's mark in the store's change log
        self.followed = 0
        self._cursor = 0
        self._gaps: dict[int, float] = {}
        self._follow_store: Any = None
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self.snapshot_interval = snapshot_interval
        self._snapshotter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chainmatch-snapshot")
        self._applied: set[int] = (
            set()
        )  # change-feed seqs applied to the in-memory index, not yet in a snapshot
        self._snapshot_busy = False
        self._next_snapshot = 0.0  # monotonic time before which no snapshot starts (rate limit)
        self.snapshots = 0
        self._refitting = False
        self.refits = 0  # background refits swapped in (corpus statistics refreshed)

    @property
    def pending(self) -> int:
        """Changed enterprises submitted and not yet served by the in-memory index."""
        return self._pending

    @property
    def lag_seconds(self) -> float:
        """Seconds since the oldest change the in-memory index does not serve yet was submitted (0 = none)."""
        with self._lock:
            return time.monotonic() - self._since[0] if self._since else 0.0

    @property
    def unsaved(self) -> int:
        """Enterprises the in-memory index serves but the saved index does not hold yet."""
        return len(self._unsaved)

    def submit(self, changes: Sequence[Change], seqs: Sequence[int] = ()) -> Future[None]:
        """Queue ``(id, tenant)`` changes; the future completes when the in-memory index serves them.
        ``seqs``: the change-feed sequence numbers the write appended (known applied once the refresh succeeds;
        a write submitted without them only holds the snapshot's position back until a later one covers it)."""
        changes = list(dict.fromkeys(changes))
        future: Future[None] = Future()
        if not changes:
            future.set_result(None)
            return future
        with self._lock:
            if self._closed:
                raise RuntimeError("the index refresher is closed")
            self._pending += len(changes)
            self._queued.append((changes, future, list(seqs)))
            self._since.append(time.monotonic())
        self._pool.submit(self._run)
        return future

    def _run(self) -> None:
        """Run every queued change as one refresh (on the worker thread), no sooner than the interval allows."""
        with self._lock:
            if not self._queued:
                return  # an earlier run took these
        delay = self._last_start + self.refresh_interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # changes arriving meanwhile join this refresh
        with self._lock:
            batch, self._queued = self._queued, []
        if not batch:
            return
        self._last_start = time.monotonic()
        changes = list(dict.fromkeys(c for pairs, _, _ in batch for c in pairs))
        try:
            apply = self.engine.prepare_refresh(changes)
            if apply is not None:
                with self._write_lock():
                    apply()
            self.refreshes += 1
            if self.on_refresh is not None:
                self.on_refresh(time.monotonic() - self._last_start)
        except Exception as exc:
            logger.exception("index refresh of %d enterprises failed", len(changes))
            for _, future, _ in batch:
                future.set_exception(exc)
        else:
            with self._lock:
                self._applied.update(seq for _, _, seqs in batch for seq in seqs)
            for _, future, _ in batch:
                future.set_result(None)
            self._note_unsaved(eid for eid, _ in changes)
        finally:
            with self._lock:
                self._pending -= sum(len(pairs) for pairs, _, _ in batch)
                del self._since[: len(batch)]

    # ------------------------------------------------------------------------------------ other processes
    def follow(self, store: Any, after: int) -> None:
        """Follow ``store``'s change log from sequence ``after`` (read before the index was fitted) on a
        background thread: changes other origins commit are queued like API writes."""
        self._follow_store, self._cursor = store, after
        self._follower = threading.Thread(target=self._follow_loop, name="chainmatch-follow", daemon=True)
        self._follower.start()

    def _follow_loop(self) -> None:
        interval = max(self.refresh_interval, 0.2)
        last_prune = time.monotonic()
        while not self._stop.wait(interval):
            try:
                self.poll_changes()
                self._snapshot_if_due()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    self._follow_store.prune_changes(datetime.now(UTC) - timedelta(days=KEEP_CHANGES_DAYS))
            except Exception:  # a store hiccup: the next poll retries from the same cursor
                logger.exception("reading the store's change log failed")

    def poll_changes(self, submit: bool = True) -> int:
        """Read the change log once and queue other origins' changes; returns how many were queued
        (``submit=False``: only move the cursor, at shutdown).

        A sequence number can commit after a higher one (concurrent writers on PostgreSQL), so numbers skipped
        over are asked for again for ``GAP_WAIT_S`` seconds before they are taken for rolled back.
        """
        rows = self._follow_store.changes_since(self._cursor, also=sorted(self._gaps))
        now = time.monotonic()
        changes: list[Change] = []
        seqs: list[int] = []
        for r in rows:
            self._gaps.pop(r.seq, None)
            if r.seq > self._cursor:
                for missing in range(max(self._cursor + 1, r.seq - MAX_GAPS), r.seq):
                    self._gaps.setdefault(missing, now)
                self._cursor = r.seq
            if r.origin != self.origin:
                changes.append((r.enterprise_id, r.tenant))
                seqs.append(r.seq)
        self._gaps = {seq: t for seq, t in self._gaps.items() if now - t < GAP_WAIT_S}
        if changes and submit:
            self.followed += len(changes)
            self.submit(changes, seqs)
        return len(changes)

    # ------------------------------------------------------------------------------------ start-up snapshot
    def _snapshot_if_due(self) -> None:
        """Start a snapshot on its own thread when the interval has passed and applied changes are unsaved; start
        a background refit when the corpus statistics have drifted too far (many firms changed since the fit)."""
        rec = getattr(self.engine, "_recommender", None)
        if rec is not None and not self._refitting and self.engine.snapshots.drifted(rec):
            self.refit_soon()
        if self.snapshot_interval <= 0 or self._snapshot_busy or time.monotonic() < self._next_snapshot:
            return
        with self._lock:
            if (not self._applied and not self.engine.snapshots.dirty) or self._closed:
                return
            self._snapshot_busy = True
        self._snapshotter.submit(self.snapshot)

    def snapshot_soon(self) -> None:
        """Queue a snapshot now (after start-up: a fit, or a restore that replayed changes, is not on disk yet)."""
        with self._lock:
            if self._snapshot_busy or self._closed:
                return
            self._snapshot_busy = True
        self._snapshotter.submit(self.snapshot)

    def snapshot(self) -> bool:
        """Save the served recommender as the start-up snapshot now, stamped with the furthest change-feed
        position it is known to include; True when a snapshot was written. The next one waits at least
        ``snapshot_interval`` and twice this one's duration (saving takes at most a third of the time)."""
        t0 = time.monotonic()
        try:
            return self._snapshot()
        except Exception:  # the snapshot is a cache: serving goes on, the next start replays more
            logger.exception("saving the start-up snapshot failed")
            return False
        finally:
            took = time.monotonic() - t0
            self._next_snapshot = time.monotonic() + max(self.snapshot_interval, 2 * took)
            self._snapshot_busy = False

    def _snapshot(self) -> bool:
        eng = self.engine
        rec = getattr(eng, "_recommender", None)
        if rec is None or self._follow_store is None:
            return False
        keeper = eng.snapshots
        with self._lock:
            applied, awaited, upto = set(self._applied), set(self._gaps), self._cursor
        seq = keeper.covered_seq(applied, awaited, upto)
        if seq <= keeper.saved_seq and not keeper.dirty:
            return False
        # a refresh is swapped in before its seqs join ``_applied``, so the image forked below holds at least
        # what ``seq`` claims; refreshes swapped in meanwhile are in the image too and are merely replayed
        written = keeper.save_in_child(rec, seq, self._write_lock)
        if written:
            keeper.seq = max(keeper.seq, seq)
            with self._lock:
                self._applied = {s for s in self._applied if s > seq}
            self.snapshots += 1
        return written

    # ------------------------------------------------------------------------------------ background refit
    def refit_soon(self) -> None:
        """Refit the recommender from the store on a background thread and swap it in, serving the current one
        meanwhile: a start that replayed many changes, or a long run of writes, leaves IDF, the TF-IDF vocabulary
        and the product space stale until a fit."""
        with self._lock:
            if self._refitting or self._closed:
                return
            self._refitting = True
        threading.Thread(target=self._refit, name="chainmatch-refit", daemon=True).start()

    def _refit(self) -> None:
        eng = self.engine
        try:
            t0 = time.monotonic()
            seq0 = eng.ws.store.last_change_seq()  # read before the fit reads the store: later changes replay
            logger.info("background refit: corpus statistics drifted; fitting a new recommender")
            new = eng.unfitted_recommender()
            new.fit(eng.all_enterprises(), cache=eng.embedding_cache)
            self._pool.submit(self._swap_in, new, seq0).result()  # serialised with the refreshes
            self.refits += 1
            logger.info("background refit swapped in after %.1f s", time.monotonic() - t0)
        except Exception:  # the served recommender stays; the next drift check retries
            logger.exception("background refit failed")
        finally:
            self._refitting = False

    def _swap_in(self, new: Any, seq0: int) -> None:
        """On the refresh worker: replay onto ``new`` every change since ``seq0`` (the fit may have read some of
        them already: replaying is harmless), then swap it in under the write lock."""
        from matcher.ranking.restore import replay_feed

        eng = self.engine
        replayed = replay_feed(new, eng.ws.store, seq0, cache=eng.embedding_cache)  # no limit: always applied
        cursor = replayed[0] if replayed else seq0
        new.changed_since_fit_ = 0
        old = eng._recommender
        with old._qlock:
            new._qcache.update(old.__dict__.get("_qcache") or {})
        keeper = eng.snapshots
        with self._write_lock():
            with eng._lock:
                eng._recommender = new
        with self._lock:  # the new state holds every change up to here that the follower has seen
            waiting = min((g for g in self._gaps if g > keeper.seq), default=cursor + 1)
            keeper.seq = max(keeper.seq, min(cursor, self._cursor, waiting - 1))
        keeper.dirty = True

    # ------------------------------------------------------------------------------------ saved index
    def _note_unsaved(self, ids: Iterator[str]) -> None:
        if self.persist_interval <= 0:
            return
        with self._lock:
            self._unsaved.update(ids)
            if self._timer is None and not self._closed:
                self._timer = threading.Timer(self.persist_interval, self._persist_soon)
                self._timer.daemon = True
                self._timer.start()

    def _persist_soon(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed:
                return
        self._saver.submit(self.persist)

    def persist(self) -> int:
        """Write the changed ids into the saved index now; returns how many. Call on the worker (or at close)."""
        with self._lock:
            ids, self._unsaved = sorted(self._unsaved), set()
        if not ids:
            return 0
        self._update_saved(ids)
        return len(ids)

    def catch_up(self) -> Future[IndexStatus | None]:
        """Queue a catch-up of the saved index with the store (what a crash left unsaved) on the worker."""
        return self._saver.submit(self._update_saved, None)

    def _update_saved(self, ids: list[str] | None) -> IndexStatus | None:
        """Upsert ``ids`` (None: whatever the store has changed or dropped) into the saved index, if one exists."""
        from index.errors import IndexNotFoundError
        from matcher.indexing.build import update_index

        eng = self.engine
        try:
            status = update_index(
                eng.ws.store, ids, embedder=eng.embedder, settings=eng.settings, catalogue=eng.catalogue
            )
        except IndexNotFoundError:
            logger.debug("no saved index at %s: nothing to keep in step", eng.settings.index_path)
            return None
        except Exception:  # doctor reports the drift; the in-memory index is unaffected
            logger.exception("saving index changes failed (run `chainmatch doctor --repair`)")
            return None
        self.persists += 1
        return status

    def close(self, timeout: float | None = None) -> bool:
        """Finish queued refreshes, write what the saved index lacks, stop the workers.

        Args:
            timeout: seconds to wait at most (None: until done). Stopping early is safe: the store holds every
                acknowledged write and the saved index is replaced atomically, so the next start catches up.

        Returns:
            True when everything finished within ``timeout``.
        """
        self._stop.set()
        if self._follower is not None:
            self._follower.join(min(timeout, 2.0) if timeout is not None else 10)
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

        def finish() -> None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._snapshotter.shutdown(wait=True, cancel_futures=True)
            if self.snapshot_interval > 0 and self._applied and self._follow_store is not None:
                self.poll_changes(submit=False)
                self.snapshot()  # a clean restart replays nothing
            self._saver.submit(self.persist)
            self._saver.shutdown(wait=True, cancel_futures=False)

        if timeout is None:
            finish()
            return True
        closer = threading.Thread(target=finish, name="chainmatch-close", daemon=True)
        closer.start()
        closer.join(timeout)
        if closer.is_alive():
            logger.warning(
                "shutdown: index work still running after %.0f s; stopping without it (the next start catches up)",
                timeout,
            )
            return False
        return True
