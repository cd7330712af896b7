"""The change feed of the store: every enterprise write is logged with a sequence number; servers and the
index follow it (``changes_since``) to bring their in-memory and saved indexes up to date."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from matcher.store.database import _chunks
from matcher.store.db_models import EnterpriseChangeRow, EnterpriseRow

__all__ = ["ChangeFeed", "EnterpriseChange"]


@dataclass(frozen=True)
class EnterpriseChange:
    """One entry of the enterprise change log (see :meth:`Store.changes_since`)."""

    seq: int
    enterprise_id: str
    tenant: str | None
    op: str  # "upsert" | "delete"
    origin: str | None


class ChangeFeed:
    """The enterprise change log (what other processes follow) and the embedding bookkeeping of :class:`Store`.

    A mixin: it relies on the store's ``transaction()``, ``_reader()`` and ``origin``.
    """

    # --- change log --------------------------------------------------------------------------------------------
    def _log_changes(
        self, session: Session, ids: Sequence[str], tenant: str | None, op: str, at: datetime
    ) -> list[int]:
        """Append one change per id in ``session``'s transaction; returns their sequence numbers, so a server can
        tell exactly which feed entries its in-memory index has applied (the snapshot's position)."""
        rows = [{"enterprise_id": i, "tenant": tenant, "op": op, "origin": self.origin, "at": at} for i in ids]
        stmt = EnterpriseChangeRow.__table__.insert().returning(EnterpriseChangeRow.__table__.c.seq)
        seqs: list[int] = []
        for chunk in _chunks(rows, 5000):
            seqs.extend(int(s) for s in session.execute(stmt, list(chunk)).scalars())
        return seqs

    def last_change_seq(self) -> int:
        """The newest change's sequence number (0 when nothing changed yet): where a follower starts."""
        with self._reader() as session:
            return int(session.execute(select(func.max(EnterpriseChangeRow.seq))).scalar() or 0)

    def changes_since(
        self, after: int, also: Iterable[int] = (), limit: int = 10_000
    ) -> list[EnterpriseChange]:
        """Committed enterprise changes with ``seq > after`` (plus the seqs in ``also``: gaps a follower still
        waits for, since a sequence number can commit after a higher one), oldest first, at most ``limit``."""
        c = EnterpriseChangeRow
        also = list(also)
        cond = c.seq > after if not also else or_(c.seq > after, c.seq.in_(also))
        with self._reader() as session:
            rows = session.execute(
                select(c.seq, c.enterprise_id, c.tenant, c.op, c.origin).where(cond).order_by(c.seq).limit(limit)
            )
            return [EnterpriseChange(r.seq, r.enterprise_id, r.tenant, r.op, r.origin) for r in rows]

    def prune_changes(self, older_than: datetime) -> int:
        """Drop change-log entries older than ``older_than`` (followers read within seconds); returns how many."""
        with self.transaction() as session:
            res = session.execute(delete(EnterpriseChangeRow).where(EnterpriseChangeRow.at < older_than))
            return int(res.rowcount or 0)

    def pending_embedding(self, model_id: str) -> list[str]:
        """Ids (all tenants) whose content changed since they were last embedded with ``model_id``."""
        e = EnterpriseRow
        marker = literal(f"{model_id}:") + e.content_hash
        with self._reader() as session:
            rows = session.execute(
                select(e.id).where(or_(e.embedded_hash.is_(None), e.embedded_hash != marker)).order_by(e.id)
            )
            return [r.id for r in rows]

    def mark_embedded(self, ids: Sequence[str], model_id: str) -> None:
        """Record that ``ids`` are embedded, with ``model_id``, at their current content."""
        e = EnterpriseRow
        ids = list(ids)
        with self.transaction() as session:
            for chunk in _chunks(ids):
                session.execute(
                    update(e)
                    .where(e.id.in_(chunk))
                    .values(embedded_hash=literal(f"{model_id}:") + e.content_hash)
                )
