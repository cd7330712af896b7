"""Skipping unchanged rows on a re-import: each source row's hash (its raw cells, the file's columns and source
label, the tenant and the link mapper) is stored with the profile it wrote (``enterprises.source_hash``); a row
whose hash the store holds in the import's scope is counted unchanged without being rebuilt, mapped or written.

The store clears or replaces the hash whenever anything else changes the profile, so a skip always stands for
"re-importing this row would leave the stored profile as it is". Bump :data:`ROW_FORMAT` when row building or
link mapping changes what a row turns into, so the next import rebuilds every row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from matcher.store.database import _chunks
from matcher.store.db_models import EnterpriseRow
from matcher.store.importer.formats import _Record
from matcher.store.importer.rows import _cell_text, _Column

if TYPE_CHECKING:
    from matcher.knowledge.mapping import LinkMapper
    from matcher.store.store import Store

__all__ = ["ROW_FORMAT", "RowSkipper", "mapper_signature"]

ROW_FORMAT = "1"
"""Version of what an import row turns into (row building + mapping): part of every row hash."""

_BLOCK = 2_000  # records looked up per query


def mapper_signature(mapper: LinkMapper) -> str:
    """What a mapper's results depend on: its catalogue's links and its thresholds (and embedder, if any)."""
    cached = getattr(mapper, "_import_signature", None)
    if cached is not None:
        return str(cached)
    h = hashlib.blake2b(digest_size=16)
    for link in mapper.catalogue.links.values():
        h.update(repr(link).encode("utf-8"))
    embedder = mapper.embedder
    model = getattr(embedder, "model_id", type(embedder).__name__) if embedder is not None else ""
    h.update(repr((mapper.min_score, mapper.scope_weight, mapper.embedding_threshold, model)).encode("utf-8"))
    signature = h.hexdigest()
    mapper._import_signature = signature  # type: ignore[attr-defined]  # the catalogue is immutable
    return signature


def _cell_key(value: Any, column: _Column) -> str:
    if type(value) is str:
        return value
    return f"\x1e{type(value).__name__}:{_cell_text(value, column.field)}"


class RowSkipper:
    """Hashes source rows and finds those whose profile the store already holds as that row wrote it."""

    def __init__(self, store: Store, tenant: str | None, source: str, mapper: LinkMapper) -> None:
        self.store, self.tenant, self.source = store, tenant, source
        self.signature = mapper_signature(mapper)
        self._salt = b""

    def start(self, columns: Sequence[_Column]) -> None:
        """Fix the file's part of every row hash (its columns) once the header is known."""
        head = repr((ROW_FORMAT, self.source, self.tenant or "", self.signature,
                     [(c.header, c.field, c.unit) for c in columns]))  # fmt: skip
        self._salt = hashlib.blake2b(head.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def row_hash(self, cells: list[tuple[_Column, Any]]) -> str:
        """The hash of one record (32 hex)."""
        try:  # text files: every cell is a str
            text = "\x1f".join([v for _, v in cells])
        except TypeError:
            text = "\x1f".join([_cell_key(v, c) for c, v in cells])
        h = hashlib.blake2b(self._salt, digest_size=16)
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    def known(self, hashes: Iterable[str]) -> dict[str, Any]:
        """Stored rows of the scope by source hash: hash -> row (id, name, normalized_name, province, codes)."""
        e = EnterpriseRow
        cols = (e.id, e.tenant, e.name, e.normalized_name, e.province, e.credit_code, e.stock_code, e.source_hash)
        found: dict[str, Any] = {}
        with self.store.transaction(write=False) as session:  # joins the import's transaction when atomic
            for chunk in _chunks(sorted(set(hashes)), 1000):
                for row in session.execute(select(*cols).where(e.source_hash.in_(chunk))):
                    if row.tenant == self.tenant:
                        found.setdefault(row.source_hash, row)
        return found

    def resolve(self, records: Iterator[_Record]) -> Iterator[tuple[_Record, str | None, Any]]:
        """``(record, hash or None, stored row or None)``, looked up a block of records at a time."""
        block: list[tuple[_Record, str | None]] = []
        for record in records:
            block.append((record, self.row_hash(record.cells) if record.cells is not None else None))
            if len(block) >= _BLOCK:
                yield from self._flush(block)
                block = []
        if block:
            yield from self._flush(block)

    def _flush(self, block: list[tuple[_Record, str | None]]) -> Iterator[tuple[_Record, str | None, Any]]:
        known = self.known(h for _, h in block if h is not None)
        for record, h in block:
            yield record, h, known.get(h) if h is not None else None
