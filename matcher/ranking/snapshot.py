"""The fitted recommender saved to disk, so a CLI call or a server start loads it instead of refitting.

A fit maps, embeds (from the cache), tokenises, builds the BM25, TF-IDF, ANN and product-space indexes and the
per-firm arrays: tens of seconds on the A-share corpus, paid on every ``chainmatch recommend`` and every server
start before this. :func:`save_snapshot` writes that fitted state (with the query vectors of the catalogue needs
already embedded) to ``{data_dir}/state/recommender.pkl``, stamped with what it was fitted from: the store, its
change-feed position and row count, the embedder, the catalogue and the ranking settings.
:func:`load_snapshot` returns it only when the stamp still matches; the engine then applies the store's changes
made after the snapshot (the change feed) before serving, or refits when the feed no longer covers them.

The file is written to a temporary name and renamed (a crash never leaves half a snapshot); it is a cache of data
the store and the catalogue define, so deleting it is always safe.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["STATE_VERSION", "Stamp", "load_snapshot", "save_snapshot", "snapshot_path"]

STATE_VERSION = 1
"""Bumped whenever the fitted state's layout changes: older snapshots are ignored."""

_SKIP = frozenset({"mapper", "catalogue", "embedder", "reranker", "ltr", "signals", "_qlock"})


@dataclass(frozen=True)
class Stamp:
    """What a snapshot was fitted from; a snapshot is used only when everything but ``seq``/``rows`` matches."""

    version: int
    store: str
    embedder: str
    catalogue: str  # digest of the catalogue's content
    settings: str  # digest of the ranking settings that shape the fitted state
    seq: int  # the store's change-feed position read before the fit read the store
    rows: int  # enterprises fitted

    def same_source(self, other: Stamp) -> bool:
        a, b = asdict(self), asdict(other)
        return all(a[k] == b[k] for k in ("version", "store", "embedder", "catalogue", "settings"))


def digest(value: Any) -> str:
    """A short content digest of a picklable value (the catalogue, the ranking settings)."""
    return hashlib.sha256(pickle.dumps(value, protocol=5)).hexdigest()[:16]


def snapshot_path(data_dir: Path) -> Path:
    return Path(data_dir) / "state" / "recommender.pkl"


def save_snapshot(rec: Any, path: Path, stamp: Stamp, quiet: bool = False) -> Path:
    """Write ``rec``'s fitted state and query cache atomically to ``path``; returns the path. ``quiet``: no
    logging (a forked child must not touch logging locks another thread may have held at the fork)."""
    t0 = time.perf_counter()
    state = {k: v for k, v in rec.__dict__.items() if k.endswith("_") and k not in _SKIP}
    state["_qcache"] = OrderedDict(rec.__dict__.get("_qcache") or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_orphans(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        pickle.dump({"stamp": asdict(stamp), "state": state}, f, protocol=5)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if quiet:
        return path
    logger.info("recommender snapshot saved: %s (%d rows, seq %d, %.1f MB, %.1f s)", path, stamp.rows, stamp.seq,
                path.stat().st_size / 1e6, time.perf_counter() - t0)  # fmt: skip
    return path


def _drop_orphans(path: Path) -> None:
    """Remove half-written snapshots of processes that died mid-write (a ``kill -9``, a child stopped at shutdown);
    another live process's temporary file is left alone (several workers may save at once)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)  # raises when no such process
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def load_snapshot(rec: Any, path: Path, expected: Stamp) -> Stamp | None:
    """Load the snapshot at ``path`` into the unfitted ``rec`` when it comes from the same source as ``expected``
    (same store, embedder, catalogue and settings); returns its stamp, or None (nothing loaded) when there is no
    usable snapshot."""
    if not path.exists():
        return None
    t0 = time.perf_counter()
    try:
        from matcher.gc_pause import paused_gc

        with path.open("rb") as f, paused_gc():
            body = pickle.load(f)  # noqa: S301 — our own file under the data dir, written by save_snapshot
        stamp = Stamp(**body["stamp"])
    except Exception as exc:  # a truncated or foreign file: refit (the snapshot is only a cache)
        logger.warning("recommender snapshot %s unreadable (%s); refitting", path, exc)
        return None
    if not stamp.same_source(expected):
        logger.info("recommender snapshot %s is stale (fitted from another store, embedder, catalogue or settings)",
                    path)  # fmt: skip
        return None
    import threading

    rec.__dict__.update(body["state"])
    rec.__dict__["_qlock"] = threading.Lock()
    logger.info("recommender snapshot loaded: %d rows at seq %d in %.1f s", stamp.rows, stamp.seq,
                time.perf_counter() - t0)  # fmt: skip
    return stamp
