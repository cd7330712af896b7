"""Expansion signals: dated events of a firm's moves (签约, 开工, 投产, 募投项目, 定增 …) with their sources
(Alembic revision 0004).

An event is shared (``tenant`` None, e.g. the starter set or a public-announcement feed) or private to a tenant
(its own imports, and its CRM leads that reached 已考察 / 已签约). The same event reported by several sources —
same firm, kind, link (else product), province and month — is stored once, with every source kept
(:func:`event_key`); re-importing a source is idempotent.

Example:
    >>> upsert_signals(store, [SignalEvent(firm="某锂电", day=date(2023, 5, 1), kind="签约")])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import Date, DateTime, Float, Index, String, Text, bindparam, insert, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from matcher.store.database import analyze, bulk_write_cache
from matcher.store.db_models import JSON_TYPE, Base
from matcher.store.tenancy import check_tenant

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = [
    "EXPANSION_KINDS",
    "KINDS",
    "SignalEvent",
    "SignalRow",
    "SignalSource",
    "UpsertSignalsSummary",
    "event_key",
    "lead_outcome_event",
    "row_key",
    "signals_of",
    "upsert_signal_rows",
    "upsert_signals",
]

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = (
    "签约",
    "开工",
    "投产",
    "募投项目",
    "定增",
    "对外投资",
    "扩产公告",
    "新设子公司",
    "收购",
    "考察",
)
"""Event kinds; 考察 comes from a CRM lead that reached 已考察 (interest, not yet an expansion)."""

EXPANSION_KINDS: frozenset[str] = frozenset(KINDS) - {"考察"}
"""Kinds that count as an expansion move in the features."""

KIND_ALIASES: dict[str, str] = {
    "签署": "签约",
    "签约落地": "签约",
    "开工建设": "开工",
    "奠基": "开工",
    "竣工投产": "投产",
    "募投": "募投项目",
    "募集资金投资项目": "募投项目",
    "非公开发行": "定增",
    "定向增发": "定增",
    "投资": "对外投资",
    "扩产": "扩产公告",
    "新设": "新设子公司",
    "设立子公司": "新设子公司",
    "并购": "收购",
    "已考察": "考察",
    "已签约": "签约",
}


class SignalSource(BaseModel):
    """Where an event was reported: a URL or a document (announcement number, file name), with a title."""

    url: str = ""
    document: str = ""
    title: str = ""

    def label(self) -> str:
        """The short text a reason cites."""
        return self.title or self.document or self.url


class SignalEvent(BaseModel):
    """One event of a firm. ``amount`` is in 万元; ``day`` may be the first of the month when only the month
    is known; ``confidence`` in [0, 1] (an official announcement 1.0, a news report 0.8, a CRM note 0.6)."""

    id: str = ""
    tenant: str | None = None
    enterprise_id: str | None = None
    firm: str = Field(min_length=1, max_length=400)
    group: str | None = None
    day: date
    kind: str
    product: str = ""
    link_id: str | None = None
    province: str | None = None
    region: str = ""
    amount: float | None = Field(default=None, ge=0)
    confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    origin: str = "import"  # import | api | lead | deal (evaluation only)
    sources: list[SignalSource] = Field(default_factory=list)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        value = KIND_ALIASES.get(value.strip(), value.strip())
        if value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; expected one of {', '.join(KINDS)}")
        return value

    @property
    def month(self) -> str:
        return self.day.strftime("%Y-%m")

    def reason(self) -> str:
        """One line for an explanation: "2023-05 在甘肃签约 年产 10 万吨负极材料项目（来源：…）"."""
        where = f"在{self.region or self.province}" if (self.region or self.province) else ""
        amount = f"，投资 {self.amount / 10_000:g} 亿元" if self.amount and self.amount >= 10_000 else (
            f"，投资 {self.amount:g} 万元" if self.amount else ""
        )
        src = "；".join(s.label() for s in self.sources[:2] if s.label())
        return f"{self.month} {where}{self.kind} {self.product}{amount}" + (f"（来源：{src}）" if src else "")


class SignalRow(Base):
    """One stored event (deduplicated; ``sources`` lists every report of it)."""

    __tablename__ = "signals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    firm: Mapped[str] = mapped_column(String(400))
    group_name: Mapped[str | None] = mapped_column(String(400), nullable=True)
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(Text, default="")
    link_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    province: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str] = mapped_column(String(200), default="")
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float] = mapped_column(Float)
    origin: Mapped[str] = mapped_column(String(16))
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON_TYPE)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_signals_enterprise", "enterprise_id", "day"),
        Index("ix_signals_tenant", "tenant"),
        Index("ix_signals_group", "group_name"),
    )


def event_key(event: SignalEvent, tenant: str | None) -> str:
    """The de-duplication key: tenant + firm (id, else name) + kind + link (else product) + province + month."""
    return _key(tenant, event.enterprise_id or event.firm, event.kind, event.link_id or event.product,
                event.province, event.day)  # fmt: skip


def _key(tenant: str | None, firm: str, kind: str, what: str, province: str | None, day: date) -> str:
    raw = "\x1f".join((tenant or "", firm, kind, what, province or "", day.isoformat()[:7]))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=16).hexdigest()


def row_key(row: dict[str, Any]) -> str:
    """:func:`event_key` of an event already in row form (:func:`_to_row`)."""
    return _key(row["tenant"], row["enterprise_id"] or row["firm"], row["kind"], row["link_id"] or row["product"],
                row["province"], row["day"])  # fmt: skip


def _to_row(e: SignalEvent, tenant: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": e.id,
        "tenant": tenant,
        "enterprise_id": e.enterprise_id,
        "firm": e.firm,
        "group_name": e.group,
        "day": e.day,
        "kind": e.kind,
        "product": e.product,
        "link_id": e.link_id,
        "province": e.province,
        "region": e.region,
        "amount": e.amount,
        "confidence": e.confidence,
        "origin": e.origin,
        "sources": [{"url": s.url, "document": s.document, "title": s.title} for s in e.sources],
        "updated_at": now,
    }


def _from_row(r: SignalRow) -> SignalEvent:
    return SignalEvent(
        id=r.id,
        tenant=r.tenant,
        enterprise_id=r.enterprise_id,
        firm=r.firm,
        group=r.group_name,
        day=r.day,
        kind=r.kind,
        product=r.product,
        link_id=r.link_id,
        province=r.province,
        region=r.region,
        amount=r.amount,
        confidence=r.confidence,
        origin=r.origin,
        sources=[SignalSource(**s) for s in r.sources],
    )


def _merge_sources(a: list[dict[str, Any]], b: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {(s.get("url", ""), s.get("document", "")) for s in a}
    out = list(a)
    for s in b:
        k = (s.get("url", ""), s.get("document", ""))
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out


@dataclass
class UpsertSignalsSummary:
    """Events new to the store, input rows merged into another event as a new source, and repeats that added
    nothing."""

    inserted: int = 0
    merged: int = 0
    unchanged: int = 0


_CHUNK = 500
_LOOKUP_CHUNK = 5000  # ids per existence look-up (well under SQLite's 32,766 bound parameters)


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert rows with Core executemany; on SQLite straight through the driver, each value converted by its column
    type's own bind processor (stored exactly as through SQLAlchemy), a value repeated from the row before
    (``updated_at``) converted once."""
    table = SignalRow.__table__
    conn = session.connection()
    dialect = conn.dialect
    if dialect.name != "sqlite" or len(rows) < 1000:
        for i in range(0, len(rows), 5000):  # Core executemany: no ORM bookkeeping per row
            session.execute(insert(table), rows[i : i + 5000])
        return
    compiled = insert(table).compile(dialect=dialect, column_keys=[c.name for c in table.columns])
    order = list(compiled.positiontup or [])
    get = operator.itemgetter(*order)
    convert = [(i, table.c[k].type.dialect_impl(dialect).bind_processor(dialect)) for i, k in enumerate(order)]
    convert = [(i, p) for i, p in convert if p is not None]
    last: dict[int, tuple[Any, Any]] = {}
    sql = str(compiled)
    for start in range(0, len(rows), 5000):
        batch = []
        for r in rows[start : start + 5000]:
            values = list(get(r))
            for i, process in convert:
                v = values[i]
                if v is None:
                    continue
                seen = last.get(i)
                if seen is not None and seen[0] is v:
                    values[i] = seen[1]
                else:
                    values[i] = process(v)
                    last[i] = (v, values[i])
            batch.append(tuple(values))
        conn.exec_driver_sql(sql, batch)


def upsert_signals(
    store: Store, events: Iterable[SignalEvent], tenant: str | None = None
) -> UpsertSignalsSummary:
    """Store events for ``tenant`` (None = shared), merging duplicates (:func:`event_key`) and their sources.

    All-or-nothing: joins the store's current transaction, else runs in its own.
    """
    check_tenant(tenant)
    now = datetime.now(UTC)
    return upsert_signal_rows(store, (_to_row(e, tenant, now) for e in events), tenant, now)


def upsert_signal_rows(
    store: Store, rows: Iterable[dict[str, Any]], tenant: str | None, now: datetime
) -> UpsertSignalsSummary:
    """:func:`upsert_signals` of events already in row form (``_to_row``'s keys, ``tenant`` and ``updated_at``
    set): the file importer builds them directly, without a validated model per event."""
    batch: dict[str, dict[str, Any]] = {}
    summary = UpsertSignalsSummary()
    n_input = 0
    for new in rows:
        n_input += 1
        key = row_key(new)
        row = batch.get(key)
        if row is None:
            new["id"] = key
            batch[key] = new
            continue
        row["sources"] = _merge_sources(row["sources"], new["sources"])
        row["confidence"] = max(row["confidence"], new["confidence"])
        row["amount"] = row["amount"] if row["amount"] is not None else new["amount"]
    keys = list(batch)
    with store.transaction() as session:
        existing: dict[str, tuple[list[dict[str, Any]], float]] = {}
        cols = (SignalRow.id, SignalRow.sources, SignalRow.confidence)
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[i : i + _LOOKUP_CHUNK]
            for rid, sources, confidence in session.execute(select(*cols).where(SignalRow.id.in_(chunk))):
                existing[rid] = (sources, confidence)
        fresh, changed = [], []
        for key, row in batch.items():
            old = existing.get(key)
            if old is None:
                fresh.append(row)
                summary.merged += max(len(row["sources"]) - 1, 0)
                continue
            merged = _merge_sources(old[0], row["sources"])
            if len(merged) == len(old[0]):
                continue
            summary.merged += len(merged) - len(old[0])
            changed.append({"b_id": key, "sources": merged, "confidence": max(old[1], row["confidence"]),
                            "updated_at": now})  # fmt: skip
        if changed:
            t = SignalRow.__table__
            stmt = update(t).where(t.c.id == bindparam("b_id"))
            session.execute(stmt.values(sources=bindparam("sources"), confidence=bindparam("confidence"),
                                        updated_at=bindparam("updated_at")), changed)  # fmt: skip
        fresh.sort(key=lambda r: r["id"])  # key order: the primary-key index grows at its end, not at random pages
        with bulk_write_cache(session):
            _insert_rows(session, fresh)
        summary.inserted = len(fresh)
        if len(fresh) >= 10_000:
            analyze(session, ("signals",))
    summary.unchanged = max(n_input - summary.inserted - summary.merged, 0)
    logger.info(
        "signals (%s): inserted %d, merged %d, unchanged %d",
        tenant or "shared",
        summary.inserted,
        summary.merged,
        summary.unchanged,
    )
    return summary


def signals_of(
    store: Store,
    enterprise_ids: Sequence[str] | None = None,
    tenant: str | None = None,
    *,
    groups: Sequence[str] = (),
    before: date | None = None,
) -> list[SignalEvent]:
    """Events visible to ``tenant`` (shared + own) of some firms (all when None) or their groups, oldest first;
    ``before`` keeps only events dated strictly earlier."""
    stmt = select(SignalRow)
    stmt = stmt.where(SignalRow.tenant.is_(None) if tenant is None else or_(
        SignalRow.tenant.is_(None), SignalRow.tenant == tenant
    ))
    if before is not None:
        stmt = stmt.where(SignalRow.day < before)
    out: list[SignalEvent] = []
    with store.transaction(write=False) as session:
        if enterprise_ids is None:
            out = [_from_row(r) for r in session.execute(stmt).scalars()]
        else:
            ids, grp = list(enterprise_ids), list(groups)
            for i in range(0, max(len(ids), len(grp)), _CHUNK):
                cond = [SignalRow.enterprise_id.in_(ids[i : i + _CHUNK])]
                if grp[i : i + _CHUNK]:
                    cond.append(SignalRow.group_name.in_(grp[i : i + _CHUNK]))
                out.extend(_from_row(r) for r in session.execute(stmt.where(or_(*cond))).scalars())
    uniq = {e.id: e for e in out}
    return sorted(uniq.values(), key=lambda e: (e.day, e.id))


def lead_outcome_event(
    session: Session,
    *,
    tenant: str,
    enterprise_id: str,
    firm: str,
    status: str,
    link_id: str,
    region_id: str,
    lead_id: str,
    when: datetime,
) -> None:
    """A CRM lead that reached 已考察 / 已签约 becomes an event of its tenant (inside the lead's transaction)."""
    kind = KIND_ALIASES.get(status)
    if kind is None:
        return
    event = SignalEvent(
        enterprise_id=enterprise_id,
        firm=firm,
        day=when.date(),
        kind=kind,
        link_id=link_id,
        region=region_id,
        confidence=0.6 if kind == "考察" else 0.9,
        origin="lead",
        sources=[SignalSource(document=f"lead:{lead_id}", title=f"招商线索{status}")],
    )
    key = event_key(event, tenant)
    if session.get(SignalRow, key) is None:
        session.add(SignalRow(**_to_row(event.model_copy(update={"id": key}), tenant, when)))
