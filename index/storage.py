"""Crash-safe on-disk layout shared by the vector and lexical indexes.

An index directory holds immutable version folders and a one-line pointer file::

    index_dir/
      CURRENT              -> "v1732370000123456789-4242"
      v1732370000123456789-4242/
        manifest.json      written last; sha256 of every other file
        index.faiss, ids.json, ...

:func:`save_version` writes a new version into a hidden temporary folder (every file fsynced), renames it into
place, then swaps ``CURRENT`` with ``os.replace`` (atomic) and fsyncs the directory. A process killed at any
point leaves ``CURRENT`` naming a complete earlier version; leftovers are removed by the next save. Writers
serialise on an ``flock``; readers take no lock and never see a mixed state.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.errors import IndexManifestError, IndexNotFoundError

logger = logging.getLogger(__name__)

POINTER = "CURRENT"
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def fsync_path(path: Path) -> None:
    """fsync a file or a directory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON and fsync it."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False, separators=(",", ":"))
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Exclusive lock for writers of one index directory."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_version(root: Path) -> Path:
    """The folder ``CURRENT`` points at; IndexNotFoundError if there is none."""
    root = Path(root)
    pointer = root / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFoundError(root, "build one first (`chainmatch index build`)") from None
    vdir = root / name
    if not name or not (vdir / MANIFEST).is_file():
        raise IndexManifestError(f"{pointer} names {name!r}, which has no {MANIFEST}")
    return vdir


def save_version(
    root: Path,
    write_files: Callable[[Path], None],
    manifest: dict[str, Any],
    keep: int = 2,
    primary: str | None = None,
) -> Path:
    """Write a new version of an index directory and make it current.

    Args:
        root: The index directory (created if missing).
        write_files: Writes the data files into the folder it is given (they are fsynced and hashed after).
        manifest: Extra manifest fields; ``files`` (sha256 per file), ``format`` and ``created_at`` are added.
        keep: How many versions to keep (the current one and ``keep - 1`` earlier ones).
        primary: The main data file; its sha256 is also stored as the manifest's top-level ``sha256``.

    Returns:
        The new version folder.
    """
    root = Path(root)
    with writer_lock(root):
        name = f"v{time.time_ns()}-{os.getpid()}"
        tmp = root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        try:
            write_files(tmp)
            files = {}
            for f in sorted(p for p in tmp.iterdir() if p.is_file()):
                fsync_path(f)
                files[f.name] = sha256_file(f)
            full = {
                "format": FORMAT_VERSION,
                **manifest,
                **({"sha256": files[primary]} if primary else {}),
                "files": files,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            write_json(tmp / MANIFEST, full)
            fsync_path(tmp)
            vdir = root / name
            os.rename(tmp, vdir)
            pointer_tmp = root / f".{POINTER}.tmp"
            with open(pointer_tmp, "w", encoding="utf-8") as fh:
                fh.write(name + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(pointer_tmp, root / POINTER)
            fsync_path(root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _prune(root, name, keep)
    logger.debug("saved %s", vdir)
    return vdir


def _prune(root: Path, current: str, keep: int) -> None:
    """Remove temporary leftovers and versions beyond the ``keep`` newest (the lock is held)."""
    versions = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("v")), key=_version_key)
    stale = [p for p in versions if p.name != current][: max(0, len(versions) - keep)]
    stale += [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)


def _version_key(p: Path) -> int:
    try:
        return int(p.name[1:].split("-", 1)[0])
    except ValueError:
        return 0


def read_manifest(vdir: Path, verify: bool = True) -> dict[str, Any]:
    """A version's manifest; with ``verify`` every listed file's sha256 is checked (IndexManifestError)."""
    try:
        manifest = json.loads((vdir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexManifestError(f"{vdir / MANIFEST}: unreadable ({exc})") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexManifestError(
            f"{vdir / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT_VERSION}"
        )
    if verify:
        for fname, expected in manifest.get("files", {}).items():
            f = vdir / fname
            if not f.is_file():
                raise IndexManifestError(f"{f} listed in the manifest is missing")
            actual = sha256_file(f)
            if actual != expected:
                raise IndexManifestError(
                    f"{f}: sha256 {actual[:16]}… does not match the manifest ({expected[:16]}…)"
                )
    return manifest


def load_current(root: Path, verify: bool = True, retries: int = 3) -> tuple[Path, dict[str, Any]]:
    """(version folder, manifest) of the current version; retries if a concurrent save swapped it."""
    root = Path(root)
    for attempt in range(retries):
        before = _pointer(root)
        try:
            vdir = current_version(root)
            return vdir, read_manifest(vdir, verify)
        except IndexManifestError:
            if attempt == retries - 1 or _pointer(root) == before:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _pointer(root: Path) -> str | None:
    try:
        return (root / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None


def load_manifest(
    path: Path | str, kind: str, expected_embedder_id: str | None, *, what: str, verify: bool = True
) -> tuple[Path, dict[str, Any]]:
    """(version folder, manifest) of the current version, checked to be of ``kind`` and embedder.

    Args:
        path: The index directory.
        kind: The manifest's required ``kind`` (``"faiss"``, ``"milvus"`` …).
        expected_embedder_id: Refuse an index built with another embedder (``None``: no check).
        what: What the index is, for the wrong-kind error ("a FAISS vector index").
        verify: Check every file's sha256 against the manifest.

    Raises:
        IndexNotFoundError: nothing saved at ``path``.
        IndexManifestError: unreadable or corrupt manifest, another kind or another embedder.
    """
    vdir, manifest = load_current(Path(path), verify=verify)
    if manifest.get("kind") != kind:
        raise IndexManifestError(f"{vdir}: not {what} (kind {manifest.get('kind')!r})")
    found = manifest.get("embedder_id")
    if expected_embedder_id is not None and found != expected_embedder_id:
        raise IndexManifestError(
            f"the index at {path} holds vectors of embedder {found!r}, "
            f"expected {expected_embedder_id!r}; "
            "rebuild it (`chainmatch index build`) or configure the embedder it was built with"
        )
    return vdir, manifest
