"""The import pipeline: rows -> link mapping (batched, in a forked worker from the second batch on) -> store
upserts, atomic or batch by batch (:func:`import_file`, :func:`read_enterprises`)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matcher.errors import ImportFileError
from matcher.knowledge.catalogue import default_catalogue
from matcher.records import Enterprise, LinkMatch, Product
from matcher.store.database import analyze, paused_gc
from matcher.store.identity import same_firm

if TYPE_CHECKING:
    from matcher.knowledge.mapping import LinkMapper
    from matcher.store.store import Store
from matcher.store.importer.formats import _open
from matcher.store.importer.groups import GroupResolver
from matcher.store.importer.report import ImportReport, RowIssue, write_rejects
from matcher.store.importer.rows import _cell_text, _Column, _RowBuilder
from matcher.store.importer.skip import RowSkipper

__all__ = ["default_mapper", "import_file", "read_enterprises"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None"], None]




@lru_cache(maxsize=1)
def default_mapper() -> LinkMapper:
    """The product → link mapper over the default catalogue, built once per process."""
    from matcher.knowledge.mapping import LinkMapper

    return LinkMapper(default_catalogue())


MappingInput = tuple[tuple[tuple[str, float | None], ...], str, tuple[str, ...]]


LinkTuple = tuple[str, float, str, str, float | None]


def mapping_input(e: Enterprise) -> MappingInput:
    """Everything :meth:`LinkMapper.map` reads of a profile (products with shares, scope, GB/T codes): the cache
    key, and the payload sent to a mapping worker. Keep it in step with the mapper."""
    return tuple((p.name, p.share) for p in e.products), e.scope, tuple(e.gbt_codes)


class _CachedMapper:
    """Memoises ``mapper.map`` on :func:`mapping_input`; results as plain tuples (cheap to send between processes)."""

    def __init__(self, mapper: LinkMapper) -> None:
        self.mapper = mapper
        self._cache: dict[MappingInput, list[LinkTuple]] = {}

    def map_input(self, key: MappingInput) -> list[LinkTuple]:
        hit = self._cache.get(key)
        if hit is None:
            products, scope, gbt = key
            probe = Enterprise(
                id="-",
                name="-",
                products=[Product(name=n, share=s) for n, s in products],
                scope=scope,
                gbt_codes=list(gbt),
            )
            hit = [(m.link_id, m.score, m.method, m.evidence, m.share) for m in self.mapper.map(probe)]
            if len(self._cache) >= 20_000:  # keys hold whole scope texts: bound the memory, keep recent ones
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def links(self, e: Enterprise) -> list[LinkMatch]:
        return _link_matches(self.map_input(mapping_input(e)))


_LINK_MEMO: dict[LinkTuple, LinkMatch] = {}


def _link_matches(tuples: list[LinkTuple]) -> list[LinkMatch]:
    """LinkMatch objects of mapped tuples; one object per distinct match, shared by the profiles of an import (they
    are serialised, never changed in place), so a 100k-row import builds thousands instead of ~400k models."""
    out: list[LinkMatch] = []
    for t in tuples:
        m = _LINK_MEMO.get(t)
        if m is None:
            if len(_LINK_MEMO) >= 50_000:
                _LINK_MEMO.clear()
            lid, score, method, evidence, share = t
            m = _LINK_MEMO[t] = LinkMatch.model_construct(
                link_id=lid, score=score, method=method, evidence=evidence, share=share
            )
        out.append(m)
    return out


def _die_with_parent(parent_pid: int) -> None:
    """In the mapping worker: ask the kernel to SIGKILL this process when its parent dies (Linux
    ``PR_SET_PDEATHSIG``), so a killed import leaves no worker holding memory and the database files."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown still ends the worker
        logger.debug("PR_SET_PDEATHSIG unavailable; the mapping worker relies on the pool's shutdown")
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


_WORKER_MAPPER: _CachedMapper | None = None  # set in the parent before forking the mapping worker


def _worker_map(inputs: list[MappingInput]) -> list[list[LinkTuple]]:
    """Runs in the forked mapping worker: links of a batch of mapping inputs."""
    assert _WORKER_MAPPER is not None
    return [_WORKER_MAPPER.map_input(key) for key in inputs]


class _Mapping:
    """Maps batches of enterprises onto links: in this process, or — for big files on a machine with two or more
    cores — in one forked worker process while this one keeps parsing and writing (a two-stage pipeline).

    The worker inherits the already-built mapper by ``fork``; where ``fork`` is unavailable, or when called from a
    thread other than the main one (a web server's request thread), mapping stays in-process.
    """

    def __init__(self, mapper: LinkMapper, parallel: bool) -> None:
        self.cached = _CachedMapper(mapper)
        self.parallel = parallel
        self._pool: Any = None

    def start_worker(self) -> bool:
        """Fork the worker (once); False when running serially."""
        global _WORKER_MAPPER
        if self._pool is not None:
            return True
        if not self.parallel:
            return False
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork only from the main thread (the CLI): in a server's worker thread another thread could hold a lock
        # the child would inherit locked (e.g. the mapper's cache lock), so imports there map in-process
        if (
            (os.cpu_count() or 1) < 2
            or "fork" not in multiprocessing.get_all_start_methods()
            or threading.current_thread() is not threading.main_thread()
        ):
            self.parallel = False
            return False
        _WORKER_MAPPER = self.cached
        self._pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        return True

    def submit(self, batch: list[Enterprise]) -> Any:
        """A handle whose ``result()`` gives the batch's links, computed now (serial) or in the worker."""
        inputs = [mapping_input(e) for e in batch]
        if self._pool is None:
            return _Done([self.cached.map_input(key) for key in inputs])
        return self._pool.submit(_worker_map, inputs)

    def close(self) -> None:
        global _WORKER_MAPPER
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        _WORKER_MAPPER = None


class _Done:
    def __init__(self, value: list[list[LinkTuple]]) -> None:
        self.value = value

    def result(self) -> list[list[LinkTuple]]:
        return self.value


class _Identity:
    """What the in-file dedupe remembers of a kept row (not the whole profile, so memory stays flat)."""

    __slots__ = ("row", "fingerprint", "name", "normalized_name", "province", "credit_code", "stock_code")

    def __init__(self, row: int, fingerprint: bytes, e: Any) -> None:
        """``e``: the row's profile, or the stored row it left unchanged (same identity columns)."""
        self.row, self.fingerprint = row, fingerprint
        self.name, self.normalized_name, self.province = e.name, e.normalized_name, e.province
        self.credit_code, self.stock_code = e.credit_code, e.stock_code


def _fingerprint(cells: list[tuple[_Column, Any]]) -> bytes:
    try:  # text files: every cell is a str
        text = "\x1f".join([v.strip() for _, v in cells])
    except AttributeError:
        text = "\x1f".join([_cell_text(v, c.field).strip() for c, v in cells])
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Dedupe:
    """The in-file duplicate rule: an identical repeat of a kept row is merged, a repeat with other values rejected."""

    def __init__(self) -> None:
        self.by_code: dict[str, _Identity] = {}
        self.by_name: dict[tuple[str, str | None], list[_Identity]] = {}

    def check(self, row: int, cells: list[tuple[_Column, Any]], e: Any, report: ImportReport) -> bool:
        """True (and the row remembered) when ``e`` is the first of its firm in the file; else the repeat is
        counted (identical) or rejected (different values) in ``report`` and False returned."""
        first = self.by_code.get(e.credit_code) if e.credit_code else None
        reason = "same credit code"
        if first is None:
            reason = "same name and province"
            for cand in self.by_name.get((e.normalized_name, e.province), []):
                if same_firm(e, cand):  # the store's identity rule, so file and store agree
                    first = cand
                    break
        fingerprint = _fingerprint(cells)
        if first is not None:
            if first.fingerprint == fingerprint:
                report.duplicates += 1
                report.warnings.append(RowIssue(row, "-", f"identical duplicate of row {first.row}; merged"))
            else:
                name_header = next((c.header for c, _ in cells if c.field == "name"), "-")
                reason = f"duplicate of row {first.row} ({reason}) with different values"
                report.rejects.append(RowIssue(row, name_header, reason, e.name))
            return False
        identity = _Identity(row, fingerprint, e)
        if e.credit_code:
            self.by_code[e.credit_code] = identity
        self.by_name.setdefault((e.normalized_name, e.province), []).append(identity)
        return True


def _iter_rows(
    path: Path, report: ImportReport, progress: ProgressCallback | None, skipper: RowSkipper | None = None
) -> Iterator[tuple[int, Enterprise, str | None]]:
    """``(row, enterprise, source hash)`` of every good row, streaming; rejects, warnings and counts go into
    ``report``. With a ``skipper``, rows the store holds unchanged are counted (``unchanged``, ``skipped``) and not
    built; the hash is None for rows that must not be skipped next time (they warn, or no skipper)."""
    source = _open(path, report)
    report.columns = {c.header: (c.field or "extra") for c in source.columns}
    builder = _RowBuilder(
        f"import:{path.name}", report.encoding, surrogates=source.surrogates, controls=source.controls
    )
    dedupe = _Dedupe()
    if skipper is not None:
        skipper.start(source.columns)
        records: Iterator[tuple[Any, str | None, Any]] = skipper.resolve(source.records)
    else:
        records = ((r, None, None) for r in source.records)
    for record, source_hash, stored in records:
        report.rows += 1
        if progress is not None and report.rows % 1000 == 0:
            progress(report.rows, source.total)
        if record.cells is None:
            if record.issue:
                report.rejects.append(record.issue)
            continue
        if stored is not None:  # the store holds what this row wrote: nothing to build, map or write
            if dedupe.check(record.row, record.cells, stored, report):
                report.unchanged += 1
                report.skipped += 1
            continue
        enterprise, rejects, warnings = builder.build(record.row, record.cells)
        report.warnings.extend(warnings)
        if enterprise is None:
            report.rejects.extend(rejects)
            continue
        if dedupe.check(record.row, record.cells, enterprise, report):
            yield record.row, enterprise, None if warnings else source_hash
    if report.rows == 0:
        raise ImportFileError(f"{path.name}: no data rows below the header")
    if progress is not None:
        progress(report.rows, report.rows)


def read_enterprises(
    path: str | Path,
    progress: ProgressCallback | None = None,
    report: ImportReport | None = None,
) -> tuple[list[tuple[int, Enterprise]], ImportReport]:
    """Parse and validate a file without touching any store.

    Args:
        path: the file.
        progress: called as ``progress(rows_done, total_or_None)`` while reading.
        report: a report to fill (a new one by default).

    Returns:
        ``[(row, enterprise)]`` for the good rows (exact repeats merged) and the report with rejects and warnings.

    Raises:
        ImportFileError: the file cannot be read at all (missing, empty, unsupported, no name column).
    """
    path = Path(path)
    report = report or ImportReport(path=str(path), format="?")
    return [(row, e) for row, e, _ in _iter_rows(path, report, progress)], report


_BATCH = 5_000


class _Rollback(Exception):
    """Raised inside the import transaction to undo it (an atomic import with rejected rows)."""


def import_file(
    path: str | Path,
    store: Store,
    tenant: str | None = None,
    atomic: bool = True,
    rejects: str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    mapper: LinkMapper | None = None,
    parallel: bool = True,
    skip_unchanged: bool = True,
) -> ImportReport:
    """Import an enterprise list into ``store``.

    Args:
        path: a ``.csv`` / ``.tsv`` / ``.xlsx`` / ``.jsonl`` file.
        store: the target store.
        tenant: ``None`` for the shared corpus, else the tenant's private rows.
        atomic: when True (default) any rejected row means nothing is written; when False the good rows are.
        rejects: where to write the rejected rows as CSV (row, field, reason, value); written whenever given.
        progress: called as ``progress(rows_done, total_or_None)``.
        mapper: the product → link mapper (default: one over the default catalogue, built once per process).
        parallel: for files of more than two batches (10,000 rows), map links in a forked worker process while
            this one parses and writes (needs ``fork`` and two cores; otherwise serial).
        skip_unchanged: count rows whose stored profile this same row wrote (same cells, columns, file name,
            tenant and mapper: :mod:`~matcher.store.importer.skip`) as unchanged without rebuilding them.

    Returns:
        The report: counts, rejects, warnings, changed ids, whether anything was committed.

    Raises:
        ImportFileError: the file cannot be read at all (missing, empty, unsupported format, no 企业名称 column).
    """
    from matcher.store.tenancy import check_tenant

    t0 = time.perf_counter()
    check_tenant(tenant)
    report = ImportReport(path=str(path), format="?", tenant=tenant, atomic=atomic)
    spent = {"map": 0.0, "write": 0.0}
    stats = {"next": 10_000, "last": 0}  # inserted rows at which planner statistics are refreshed next / were last
    big_file = Path(path).is_file() and Path(path).stat().st_size > 5_000_000  # ≈ 10,000 export rows
    mapping: list[_Mapping] = []  # built at the first batch, so an unreadable file fails fast
    pending: deque[tuple[list[Enterprise], list[str | None], Any]] = deque()  # batches being mapped
    groups = GroupResolver(store, tenant)
    mapper = mapper or default_mapper()
    skipper = RowSkipper(store, tenant, f"import:{Path(path).name}", mapper) if skip_unchanged else None

    def submit(batch: list[Enterprise], hashes: list[str | None]) -> None:
        if not mapping:
            mapping.append(_Mapping(mapper, parallel))
        if pending or (big_file and len(batch) >= _BATCH):
            mapping[0].start_worker()  # a second batch, or a big file: worth a worker process
        t = time.perf_counter()
        pending.append((batch, hashes, mapping[0].submit(batch)))
        spent["map"] += time.perf_counter() - t
        while len(pending) > 2:  # keep at most two batches in flight
            drain()

    def refresh_stats() -> None:
        with store.transaction() as session:
            analyze(session, ("enterprises",))
        stats["last"] = report.inserted

    def drain() -> None:
        batch, hashes, handle = pending.popleft()
        t = time.perf_counter()
        links = handle.result()
        for e, ls in zip(batch, links, strict=True):  # the batch's profiles are this import's own: set in place
            e.links = _link_matches(ls)
        mapped = batch
        spent["map"] += time.perf_counter() - t
        t = time.perf_counter()
        groups.resolve(mapped)
        # a parent_group resolved from another firm's record may change with that record: never skipped
        hashes = [None if e.extra.get("parent_credit_code") else h for e, h in zip(mapped, hashes, strict=True)]
        summary = store.upsert_enterprises(mapped, tenant=tenant, source_hashes=hashes)
        spent["write"] += time.perf_counter() - t
        report.inserted += summary.inserted
        if report.inserted >= stats["next"]:  # PostgreSQL: keep the planner's row counts near the truth
            refresh_stats()
            stats["next"] *= 4
        report.updated += summary.updated
        report.unchanged += summary.unchanged
        report.merged += summary.merged
        for f, n in summary.conflicts.items():
            report.conflicts[f] = report.conflicts.get(f, 0) + n
        report.changed_ids.extend(summary.changed_ids)
        report.change_seqs.extend(summary.change_seqs)

    # Good rows are mapped and written in batches (memory stays flat on big files). An atomic import writes them
    # inside one transaction: when it meets a rejected row it stops writing, reads on to report every reject,
    # then rolls back. A --no-atomic import commits batch by batch, so it never holds SQLite's write lock long.
    outer = store.in_transaction  # called inside the caller's transaction: undo only our part (a SAVEPOINT)
    try:
        with paused_gc(), store.transaction() if atomic or outer else nullcontext() as session:
            with session.begin_nested() if outer else nullcontext():
                batch: list[Enterprise] = []
                hashes: list[str | None] = []
                for _row, enterprise, source_hash in _iter_rows(Path(path), report, progress, skipper):
                    if atomic and report.rejects:
                        continue
                    batch.append(enterprise)
                    hashes.append(source_hash)
                    if len(batch) >= _BATCH:
                        submit(batch, hashes)
                        batch, hashes = [], []
                if atomic and report.rejects:
                    raise _Rollback
                if batch:
                    submit(batch, hashes)
                while pending:
                    drain()
                if report.inserted >= 10_000 and report.inserted > 2 * stats["last"]:
                    refresh_stats()
    except _Rollback:
        report.inserted = report.updated = report.unchanged = report.skipped = 0
        report.changed_ids, report.change_seqs = [], []
        logger.warning("%s: %d rows rejected; atomic import wrote nothing", path, report.rejected)
    else:
        report.committed = True
    finally:
        if mapping:
            mapping[0].close()
    if rejects is not None:
        write_rejects(rejects, report.rejects)
    report.seconds = time.perf_counter() - t0
    report.timings = {"read": report.seconds - spent["map"] - spent["write"], **spent}
    logger.info("%s", report.summary())
    return report
