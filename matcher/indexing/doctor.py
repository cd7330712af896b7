"""Consistency check between the store and the persisted indexes (``chainmatch doctor``), and its repair.

The store is the source of truth; the vector and lexical indexes under ``settings.index_path`` are derived
from it by :func:`matcher.indexing.build.build_index` / :func:`matcher.indexing.build.update_index`. :func:`check` reports
every way they can drift apart:

- **missing**: ids in the store that an index does not hold (an upsert never indexed, a crash before the
  index update);
- **orphans**: ids an index holds that the store no longer has (a delete never indexed);
- **stale**: indexed ids whose profile changed since it was embedded (``Store.pending_embedding``);
- **embedder mismatch**: the vector index was built with another embedder than the configured one;
- **unreadable**: no index saved yet, a checksum that does not match the manifest, a broken manifest or id
  map.

It reads the manifests and the id maps only (checksums of every file verified), never the FAISS index itself,
so a check of a million-vector index costs a hash of its files, not its memory. :func:`repair` re-embeds and
upserts what is missing or stale and removes orphans with :func:`matcher.indexing.build.update_index`; an index that
cannot be loaded at all (missing, corrupt, other embedder) is rebuilt with
:func:`matcher.indexing.build.build_index` (unchanged profiles come from the embedding cache). It then checks again.

Example:
    >>> report = check(store, settings)            # doctest: +SKIP
    >>> report.drift, report.problems()            # doctest: +SKIP
    (True, ['vector index: 3 store ids missing (e.g. demo:crm-1, …)'])
    >>> repair(store, settings).after.drift        # doctest: +SKIP
    False
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matcher.indexing.build import IndexStatus, build_index, index_dirs, update_index
from matcher.settings import Settings

__all__ = ["DoctorReport", "IndexCheck", "RepairResult", "check", "expected_embedder_id", "repair"]

logger = logging.getLogger(__name__)

EXAMPLES = 5
"""How many example ids a report shows per problem."""


@dataclass
class IndexCheck:
    """One persisted index (``vector`` or ``lexical``) compared with the store.

    ``error`` is set when the index cannot be read (``error_kind``: ``not_found``, ``checksum`` or
    ``manifest``); the id comparisons are then empty.
    """

    name: str
    path: str
    version: str | None = None
    count: int = 0
    embedder_id: str | None = None
    build_id: str | None = None
    error: str | None = None
    error_kind: str | None = None
    missing: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.error is None


@dataclass
class DoctorReport:
    """What :func:`check` found; ``drift`` is True when the indexes do not serve the store's content."""

    store: str
    store_count: int
    embedder_id: str
    vector: IndexCheck
    lexical: IndexCheck
    stale: list[str] = field(default_factory=list)
    embedder_mismatch: str | None = None  # the embedder id the vector index was built with, when it differs

    @property
    def build_mismatch(self) -> bool:
        """Both indexes readable but saved by different builds (a crash between the two saves)."""
        v, lx = self.vector, self.lexical
        return v.readable and lx.readable and bool(v.build_id) and v.build_id != lx.build_id

    @property
    def drift(self) -> bool:
        v, lx = self.vector, self.lexical
        return bool(
            not v.readable
            or not lx.readable
            or self.embedder_mismatch
            or self.stale
            or v.missing
            or v.orphans
            or lx.missing
            or lx.orphans
        )

    def problems(self) -> list[str]:
        """One line per kind of drift, with counts and a few example ids (empty when there is none)."""
        out: list[str] = []
        for ix in (self.vector, self.lexical):
            if ix.error:
                out.append(f"{ix.name} index unreadable ({ix.error_kind}): {ix.error}")
                continue
            if ix.missing:
                out.append(
                    f"{ix.name} index: {len(ix.missing)} store ids missing (e.g. {_examples(ix.missing)})"
                )
            if ix.orphans:
                out.append(
                    f"{ix.name} index: {len(ix.orphans)} ids no longer in the store "
                    f"(e.g. {_examples(ix.orphans)})"
                )
        if self.embedder_mismatch:
            out.append(
                f"vector index built with embedder {self.embedder_mismatch!r}, "
                f"configured {self.embedder_id!r}"
            )
        if self.stale:
            out.append(
                f"{len(self.stale)} indexed profiles changed since they were embedded "
                f"(e.g. {_examples(self.stale)})"
            )
        return out

    def notes(self) -> list[str]:
        """Observations that are not drift."""
        if self.build_mismatch:
            return [
                f"vector and lexical indexes come from different builds ({self.vector.build_id} vs "
                f"{self.lexical.build_id}); their contents agree with the store"
            ]
        return []

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(drift=self.drift, build_mismatch=self.build_mismatch, problems=self.problems(),
                   notes=self.notes())  # fmt: skip
        return out

    def format(self) -> str:
        """A short human-readable report: counts, then each problem with example ids."""
        lines = [
            f"store: {self.store} — {self.store_count} enterprises; configured embedder {self.embedder_id}",
        ]
        for ix in (self.vector, self.lexical):
            if ix.error:
                lines.append(f"{ix.name} index: {ix.path} — unreadable")
            else:
                lines.append(
                    f"{ix.name} index: {ix.path} — {ix.count} ids, version {ix.version}, build {ix.build_id}"
                    + (f", embedder {ix.embedder_id}" if ix.name == "vector" else "")
                )
        lines += [f"note: {n}" for n in self.notes()]
        problems = self.problems()
        if problems:
            lines.append(f"DRIFT: {len(problems)} problem(s)")
            lines += [f"  - {p}" for p in problems]
        else:
            lines.append(
                "OK: the indexes hold exactly the store's enterprises, embedded at their current content"
            )
        return "\n".join(lines)


@dataclass
class RepairResult:
    """What :func:`repair` did: the report before, the action taken, the index status and the report after."""

    before: DoctorReport
    action: str  # "none" | "update" | "rebuild"
    status: IndexStatus | None
    after: DoctorReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "status": self.status.as_dict() if self.status else None,
            "before": self.before.as_dict(),
            "after": self.after.as_dict(),
        }


def _examples(ids: list[str]) -> str:
    shown = ", ".join(ids[:EXAMPLES])
    return shown + (", …" if len(ids) > EXAMPLES else "")


def expected_embedder_id(settings: Settings) -> str:
    """The id of the vectors the configured embedder makes, without loading a model."""
    from models.embedders import EMBEDDER_IDS, EmbedderName

    return EMBEDDER_IDS[EmbedderName.parse(settings.embedder).value]


def _read_ids(name: str, folder: Path, settings: Settings | None = None) -> tuple[IndexCheck, set[str]]:
    """The saved index's manifest facts and ids (checksums verified; the FAISS file is not loaded, a Milvus
    collection is read for its ids)."""
    from index.errors import IndexManifestError, IndexNotFoundError, VectorIndexError
    from index.lexical import DOCS_FILE
    from index.storage import load_current
    from index.vector_io import IDS_FILE

    ix = IndexCheck(name=name, path=str(folder))
    try:
        vdir, manifest = load_current(folder, verify=True)
        if name == "vector" and manifest.get("kind") == "milvus":
            ids = _milvus_ids(folder, settings)
        elif name == "vector":
            ids = json.loads((vdir / IDS_FILE).read_text(encoding="utf-8"))["ids"]
        else:
            with open(vdir / DOCS_FILE, encoding="utf-8") as fh:
                ids = [json.loads(line)[0] for line in fh if line.strip()]
    except IndexNotFoundError as exc:
        ix.error, ix.error_kind = str(exc), "not_found"
        return ix, set()
    except IndexManifestError as exc:
        ix.error, ix.error_kind = str(exc), "checksum" if "sha256" in str(exc) else "manifest"
        return ix, set()
    except (VectorIndexError, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        ix.error, ix.error_kind = f"{type(exc).__name__}: {exc}", "manifest"
        return ix, set()
    extra = manifest.get("extra", {})
    ix.version = vdir.name
    ix.count = len(ids)
    ix.build_id = extra.get("build_id")
    ix.embedder_id = manifest.get("embedder_id") or extra.get("embedder_id")
    if manifest.get("count") != len(ids):
        ix.error = f"{vdir}: id map has {len(ids)} ids, manifest says {manifest.get('count')}"
        ix.error_kind = "manifest"
        return ix, set()
    return ix, set(ids)


def _milvus_ids(folder: Path, settings: Settings | None) -> list[str]:
    from index.errors import IndexManifestError
    from index.milvus import MilvusVectorIndex

    try:
        index = MilvusVectorIndex.load(folder, token=settings.milvus_token if settings else None)
    except Exception as exc:  # unreachable server, dropped collection: the saved index cannot be used
        raise IndexManifestError(f"{folder}: Milvus collection not readable ({type(exc).__name__}: {exc})") from exc
    try:
        return index.ids
    finally:
        index.close()


def check(store, settings: Settings, embedder_id: str | None = None) -> DoctorReport:
    """Compare the store with the persisted vector and lexical indexes.

    Args:
        store: A :class:`matcher.store.store.Store`.
        settings: Where the indexes are (``index_path``) and which embedder is configured.
        embedder_id: The expected embedder id (default: the configured embedder's).

    Returns:
        The :class:`DoctorReport`; ``report.drift`` says whether anything is out of step.
    """
    from matcher.store.tenancy import ALL_TENANTS

    embedder_id = embedder_id or expected_embedder_id(settings)
    vdir, ldir = index_dirs(settings)
    vector, vids = _read_ids("vector", vdir, settings)
    lexical, lids = _read_ids("lexical", ldir)
    store_ids = set(store.enterprise_ids(ALL_TENANTS))
    report = DoctorReport(store=repr(store), store_count=len(store_ids), embedder_id=embedder_id,
                          vector=vector, lexical=lexical)  # fmt: skip
    for ix, ids in ((vector, vids), (lexical, lids)):
        if ix.readable:
            ix.missing = sorted(store_ids - ids)
            ix.orphans = sorted(ids - store_ids)
    if vector.readable and vector.embedder_id != embedder_id:
        report.embedder_mismatch = vector.embedder_id or "(none recorded)"
    elif vector.readable:
        report.stale = sorted(set(store.pending_embedding(embedder_id)) & vids)
    logger.info("doctor: drift=%s %s", report.drift, "; ".join(report.problems()) or "none")
    return report


REPAIR_CHUNK = 2000  # ids re-embedded and saved per step of a repair


def _merged(a: IndexStatus, b: IndexStatus) -> IndexStatus:
    """The status of two consecutive updates: the later index, the summed work."""
    import dataclasses

    return dataclasses.replace(b, embedded=a.embedded + b.embedded, cached=a.cached + b.cached,
                               removed=a.removed + b.removed, seconds=a.seconds + b.seconds)  # fmt: skip


def repair(
    store, settings: Settings, embedder=None, report: DoctorReport | None = None, catalogue=None,
    progress: Callable[[int, int], None] | None = None, chunk: int = REPAIR_CHUNK,
) -> RepairResult:
    """Bring the indexes back in step with the store, then check again.

    Unreadable indexes or an embedder mismatch → full rebuild (:func:`build_index`, cache-aware); otherwise
    the missing, stale and orphaned ids are refreshed in place (:func:`update_index`) in chunks of ``chunk`` ids,
    each saved as a new index version before the next starts: an interrupted repair keeps what it finished, and
    ``progress(done, total)`` is called after each chunk.

    Args:
        store: A :class:`matcher.store.store.Store`.
        settings: Index location and embedder.
        embedder: Default: the configured embedder.
        report: A fresh :func:`check` result to act on (default: checks first).
        catalogue: For the profile texts (default: the packaged catalogue).
        progress: Called as ``progress(ids done, ids to repair)``.
        chunk: Ids refreshed (and saved) per step.
    """
    if embedder is None:
        from models.embedders import get_embedder

        embedder = get_embedder(settings.embedder, cache_dir=settings.cache_dir)
    before = report or check(store, settings, embedder.id)
    status: IndexStatus | None = None
    action = "none"
    if not before.vector.readable or not before.lexical.readable or before.embedder_mismatch:
        action = "rebuild"
        status = build_index(store, embedder, settings, catalogue=catalogue)
    elif before.drift:
        action = "update"
        ids = set(before.stale)
        for ix in (before.vector, before.lexical):
            ids.update(ix.missing, ix.orphans)
        todo = sorted(ids)
        for start in range(0, len(todo), max(1, chunk)):
            part = update_index(store, todo[start : start + chunk], embedder=embedder, settings=settings,
                                catalogue=catalogue)  # fmt: skip
            status = part if status is None else _merged(status, part)
            if progress:
                progress(min(start + chunk, len(todo)), len(todo))
    after = check(store, settings, embedder.id)
    logger.info("doctor repair: %s; drift after: %s", action, after.drift)
    return RepairResult(before=before, action=action, status=status, after=after)
