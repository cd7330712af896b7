"""Leads (招商线索) and their feedback events, stored beside the enterprises (Alembic revision 0002).

A lead is one candidate a tenant's promotion staff act on: (region, chain, link, enterprise). It moves through

    线索 → 已接触 → 已考察 → 已签约
      ↘        ↘        ↘
                 已放弃 (a reason is required; 已放弃 → 线索 reopens it)

Every change (creation, status move, note) is appended to ``lead_events``; those events are the CRM feedback the
learned reranker trains on (:func:`matcher.store.feedback.export_training_events`). Leads and events are private to
their tenant: every function takes the tenant and never returns another tenant's rows (unknown ids and other
tenants' ids fail the same way, :class:`UnknownLeadError`).

The functions take a :class:`matcher.store.store.Store` and join its current transaction (``store.transaction()``).

Example:
    >>> lead, created = create_lead(store, "acme", region_id="manas", chain_id="aluminium",   # doctest: +SKIP
    ...                             link_id="aluminium_rod", enterprise_id="e1", enterprise_name="某铝业")
    >>> update_lead(store, "acme", lead.id, status=LeadStatus.CONTACTED, note="已电话联系")   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from matcher.errors import ChainMatchError, InvalidRequestError
from matcher.store.db_models import JSON_TYPE, Base
from matcher.store.signals import lead_outcome_event

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = [
    "TRANSITIONS",
    "InvalidTransitionError",
    "Lead",
    "LeadEvent",
    "LeadEventRow",
    "LeadRow",
    "LeadStatus",
    "UnknownLeadError",
    "create_lead",
    "get_lead",
    "iter_events",
    "lead_events",
    "list_leads",
    "update_lead",
]

logger = logging.getLogger(__name__)

MAX_NOTE = 2000


class LeadStatus(StrEnum):
    """Stages of a lead."""

    LEAD = "线索"
    CONTACTED = "已接触"
    VISITED = "已考察"
    SIGNED = "已签约"
    DROPPED = "已放弃"


TRANSITIONS: dict[LeadStatus, tuple[LeadStatus, ...]] = {
    LeadStatus.LEAD: (LeadStatus.CONTACTED, LeadStatus.DROPPED),
    LeadStatus.CONTACTED: (LeadStatus.VISITED, LeadStatus.DROPPED),
    LeadStatus.VISITED: (LeadStatus.SIGNED, LeadStatus.DROPPED),
    LeadStatus.SIGNED: (),
    LeadStatus.DROPPED: (LeadStatus.LEAD,),
}
"""Allowed next statuses of each status."""

INITIAL: tuple[LeadStatus, ...] = (LeadStatus.LEAD, LeadStatus.DROPPED)
"""Statuses a lead may be created with (shortlisted, or dismissed straight away with a reason)."""


class UnknownLeadError(ChainMatchError, KeyError):
    """No lead with this id for this tenant."""

    code = "unknown_lead"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"unknown lead '{key}'")

    def __str__(self) -> str:
        return str(self.args[0])


class InvalidTransitionError(ChainMatchError, ValueError):
    """A status move the lead workflow does not allow."""

    code = "invalid_transition"

    def __init__(
        self, current: LeadStatus | None, requested: LeadStatus, allowed: tuple[LeadStatus, ...]
    ) -> None:
        self.current, self.requested, self.allowed = current, requested, allowed
        where = f"from '{current.value}'" if current else "for a new lead"
        options = ", ".join(s.value for s in allowed) or "none (final status)"
        super().__init__(f"cannot move {where} to '{requested.value}'; expected one of: {options}")

    def __str__(self) -> str:
        return str(self.args[0])


# --- tables ---------------------------------------------------------------------------------------------------------


class LeadRow(Base):
    """One lead of one tenant."""

    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    region_id: Mapped[str] = mapped_column(String(128))
    chain_id: Mapped[str] = mapped_column(String(128))
    link_id: Mapped[str] = mapped_column(String(128))
    enterprise_id: Mapped[str] = mapped_column(String(200))
    enterprise_name: Mapped[str] = mapped_column(String(400))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[dict[str, Any]] = mapped_column(JSON_TYPE)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeadEventRow(Base):
    """One change of a lead (the feedback the reranker learns from)."""

    __tablename__ = "lead_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(String(36), ForeignKey("leads.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- records --------------------------------------------------------------------------------------------------------


class Lead(BaseModel):
    """A lead as the API and the export see it."""

    id: str
    tenant: str
    region_id: str
    chain_id: str
    link_id: str
    enterprise_id: str
    enterprise_name: str
    status: LeadStatus
    note: str = ""
    reason: str = ""
    context: dict[str, Any] = Field(
        default_factory=dict, description="the candidate as ranked when shortlisted"
    )
    created_at: datetime
    updated_at: datetime
    allowed_next: list[LeadStatus] = Field(default_factory=list, description="statuses this lead may move to")

    @classmethod
    def from_row(cls, row: LeadRow) -> Lead:
        status = LeadStatus(row.status)
        return cls(
            id=row.id,
            tenant=row.tenant,
            region_id=row.region_id,
            chain_id=row.chain_id,
            link_id=row.link_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            status=status,
            note=row.note or "",
            reason=row.reason or "",
            context=dict(row.context or {}),
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            allowed_next=list(TRANSITIONS[status]),
        )


class LeadEvent(BaseModel):
    """One recorded change of a lead."""

    id: int
    lead_id: str
    from_status: LeadStatus | None = None
    to_status: LeadStatus
    note: str = ""
    reason: str = ""
    actor: str = ""
    created_at: datetime

    @classmethod
    def from_row(cls, row: LeadEventRow) -> LeadEvent:
        return cls(
            id=row.id,
            lead_id=row.lead_id,
            from_status=LeadStatus(row.from_status) if row.from_status else None,
            to_status=LeadStatus(row.to_status),
            note=row.note or "",
            reason=row.reason or "",
            actor=row.actor or "",
            created_at=_aware(row.created_at),
        )


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


def _text(field: str, value: str | None) -> str:
    value = (value or "").strip()
    if len(value) > MAX_NOTE:
        raise InvalidRequestError(
            field, f"{value[:20]}…", f"expected at most {MAX_NOTE} characters, got {len(value)}"
        )
    return value


def _check_move(current: LeadStatus | None, requested: LeadStatus, reason: str) -> None:
    allowed = INITIAL if current is None else TRANSITIONS[current]
    if requested not in allowed:
        raise InvalidTransitionError(current, requested, allowed)
    if requested is LeadStatus.DROPPED and not reason:
        raise InvalidRequestError("reason", reason, "a reason is required when a lead is abandoned (已放弃)")


# --- operations -----------------------------------------------------------------------------------------------------


def create_lead(
    store: Store,
    tenant: str,
    *,
    region_id: str,
    chain_id: str,
    link_id: str,
    enterprise_id: str,
    enterprise_name: str,
    status: LeadStatus = LeadStatus.LEAD,
    note: str = "",
    reason: str = "",
    context: dict[str, Any] | None = None,
    actor: str = "",
) -> tuple[Lead, bool]:
    """Shortlist a candidate (idempotent: the same candidate returns the existing lead).

    Args:
        store: the store.
        tenant: the owning tenant.
        region_id: region id; chain_id / link_id: catalogue ids; enterprise_id: stored enterprise id.
        enterprise_name: name shown in lists and exports.
        status: 线索 (default) or 已放弃 (dismiss with a reason).
        note: free note; reason: why (required for 已放弃).
        context: the candidate as the recommender ranked it (rank, score, features, reasons …).
        actor: who did it (API key name).

    Returns:
        The lead and whether it was created now (False: it already existed, unchanged).

    Raises:
        InvalidTransitionError: ``status`` is not a starting status.
        InvalidRequestError: 已放弃 without a reason, or a note / reason too long.
    """
    status = LeadStatus(status)
    note, reason = _text("note", note), _text("reason", reason)
    with store.transaction() as session:
        existing = session.execute(
            select(LeadRow).where(
                LeadRow.tenant == tenant,
                LeadRow.region_id == region_id,
                LeadRow.chain_id == chain_id,
                LeadRow.link_id == link_id,
                LeadRow.enterprise_id == enterprise_id,
            )
        ).scalar_one_or_none()
        if existing is not None:
            return Lead.from_row(existing), False
        _check_move(None, status, reason)
        now = _now()
        row = LeadRow(
            id=uuid.uuid4().hex,
            tenant=tenant,
            region_id=region_id,
            chain_id=chain_id,
            link_id=link_id,
            enterprise_id=enterprise_id,
            enterprise_name=enterprise_name,
            status=status.value,
            note=note,
            reason=reason,
            context=dict(context or {}),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        session.add(
            LeadEventRow(
                lead_id=row.id,
                tenant=tenant,
                from_status=None,
                to_status=status.value,
                note=note,
                reason=reason,
                actor=actor,
                created_at=now,
            )
        )
        lead = Lead.from_row(row)
    logger.info(
        "lead %s created (%s, %s/%s/%s → %s)",
        lead.id,
        tenant,
        region_id,
        link_id,
        enterprise_id,
        status.value,
    )
    return lead, True


def _row(session, tenant: str, lead_id: str, lock: bool = False) -> LeadRow:
    stmt = select(LeadRow).where(LeadRow.id == lead_id, LeadRow.tenant == tenant)
    if lock:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise UnknownLeadError(lead_id)
    return row


def get_lead(store: Store, tenant: str, lead_id: str) -> Lead:
    """One of the tenant's leads.

    Raises:
        UnknownLeadError: no such lead for this tenant.
    """
    with store.transaction(write=False) as session:
        return Lead.from_row(_row(session, tenant, lead_id))


def list_leads(
    store: Store,
    tenant: str,
    *,
    region_id: str | None = None,
    status: LeadStatus | None = None,
    enterprise_id: str | None = None,
    limit: int = 1000,
) -> list[Lead]:
    """The tenant's leads, newest change first, optionally for one region / status / enterprise."""
    stmt = select(LeadRow).where(LeadRow.tenant == tenant)
    if region_id is not None:
        stmt = stmt.where(LeadRow.region_id == region_id)
    if status is not None:
        stmt = stmt.where(LeadRow.status == LeadStatus(status).value)
    if enterprise_id is not None:
        stmt = stmt.where(LeadRow.enterprise_id == enterprise_id)
    stmt = stmt.order_by(LeadRow.updated_at.desc(), LeadRow.id).limit(limit)
    with store.transaction(write=False) as session:
        return [Lead.from_row(r) for r in session.execute(stmt).scalars()]


def update_lead(
    store: Store,
    tenant: str,
    lead_id: str,
    *,
    status: LeadStatus | None = None,
    note: str | None = None,
    reason: str | None = None,
    actor: str = "",
) -> Lead:
    """Move a lead to a new status and/or change its note; every call that changes something adds an event.

    Raises:
        UnknownLeadError: no such lead for this tenant.
        InvalidTransitionError: the workflow does not allow the move (the error lists the allowed statuses).
        InvalidRequestError: 已放弃 without a reason, or a note / reason too long.
    """
    new_note = None if note is None else _text("note", note)
    new_reason = None if reason is None else _text("reason", reason)
    with store.transaction() as session:
        row = _row(session, tenant, lead_id, lock=True)
        current = LeadStatus(row.status)
        target = LeadStatus(status) if status is not None else current
        if target is not current:
            _check_move(current, target, new_reason if new_reason is not None else "")
        changed = (
            target is not current
            or (new_note is not None and new_note != row.note)
            or (new_reason is not None and new_reason != row.reason)
        )
        if not changed:
            return Lead.from_row(row)
        now = _now()
        row.status = target.value
        if new_note is not None:
            row.note = new_note
        if new_reason is not None:
            row.reason = new_reason
        elif target is not current:
            row.reason = ""  # a reason belongs to the move that gave it
        row.updated_at = now
        session.add(
            LeadEventRow(
                lead_id=row.id,
                tenant=tenant,
                from_status=current.value,
                to_status=target.value,
                note=new_note or "",
                reason=row.reason,
                actor=actor,
                created_at=now,
            )
        )
        if target is not current and target in (LeadStatus.VISITED, LeadStatus.SIGNED):
            lead_outcome_event(
                session,
                tenant=tenant,
                enterprise_id=row.enterprise_id,
                firm=row.enterprise_name,
                status=target.value,
                link_id=row.link_id,
                region_id=row.region_id,
                lead_id=row.id,
                when=now,
            )
        session.flush()
        lead = Lead.from_row(row)
    logger.info("lead %s: %s → %s", lead_id, current.value, target.value)
    return lead


def lead_events(store: Store, tenant: str, lead_id: str | None = None) -> list[LeadEvent]:
    """The tenant's lead events (of one lead when ``lead_id`` is given), oldest first.

    Raises:
        UnknownLeadError: ``lead_id`` is not one of the tenant's leads.
    """
    with store.transaction(write=False) as session:
        stmt = select(LeadEventRow).where(LeadEventRow.tenant == tenant)
        if lead_id is not None:
            _row(session, tenant, lead_id)
            stmt = stmt.where(LeadEventRow.lead_id == lead_id)
        return [LeadEvent.from_row(r) for r in session.execute(stmt.order_by(LeadEventRow.id)).scalars()]


def iter_events(store: Store, tenant: str | None = None) -> list[tuple[LeadEvent, Lead]]:
    """Every event with its lead as it is now (all tenants when ``tenant`` is None), oldest first."""
    stmt = select(LeadEventRow, LeadRow).join(LeadRow, LeadRow.id == LeadEventRow.lead_id)
    if tenant is not None:
        stmt = stmt.where(LeadEventRow.tenant == tenant)
    with store.transaction(write=False) as session:
        return [
            (LeadEvent.from_row(ev), Lead.from_row(lead))
            for ev, lead in session.execute(stmt.order_by(LeadEventRow.id))
        ]
