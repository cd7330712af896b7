"""CRM feedback as training data for the learned reranker.

Every lead change (:mod:`matcher.store.lead_store`) is one event. :func:`export_training_events` flattens them, with the
candidate as the recommender ranked it when it was shortlisted (rank, score, feature vector), into plain dicts::

    {
      "event_id": 7, "created_at": "2024-11-30T08:00:00+00:00", "tenant": "acme", "actor": "crm",
      "lead_id": "…", "region_id": "manas", "chain_id": "aluminium", "link_id": "aluminium_rod",
      "gap_type": "短链", "enterprise_id": "e1", "enterprise_name": "某铝业有限公司",
      "from_status": "已接触", "to_status": "已考察", "note": "…", "reason": "",
      "grade": 3,        # 已放弃 0 · 线索 1 · 已接触 2 · 已考察 3 · 已签约 4 (how far the lead got)
      "label": None,     # 1 = 已签约, 0 = 已放弃, None = still open (no outcome yet)
      "final": False,    # this is the lead's latest event
      "rank": 2, "score": 0.71, "scorer": "default", "features": {"dense": 0.8, …},
    }

A need is (tenant, region_id, chain_id, link_id): group rows by it to train per-need rankings; take the rows with
``final`` true for one outcome per lead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matcher.store.lead_store import LeadStatus, iter_events

if TYPE_CHECKING:
    from matcher.store.store import Store

__all__ = ["GRADES", "export_training_events", "outcome_label"]

GRADES: dict[LeadStatus, int] = {
    LeadStatus.DROPPED: 0,
    LeadStatus.LEAD: 1,
    LeadStatus.CONTACTED: 2,
    LeadStatus.VISITED: 3,
    LeadStatus.SIGNED: 4,
}
"""How far a lead got, as a graded relevance label."""


def outcome_label(status: LeadStatus) -> int | None:
    """1 for 已签约, 0 for 已放弃, None while the lead is still open."""
    if status is LeadStatus.SIGNED:
        return 1
    if status is LeadStatus.DROPPED:
        return 0
    return None


def export_training_events(store: Store, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every lead event as a flat dict (oldest first), ready for reranker training.

    Args:
        store: the store holding leads (revision 0002).
        tenant: one tenant's events only; default every tenant's.

    Returns:
        One dict per event (see the module docstring for the keys).
    """
    pairs = iter_events(store, tenant)
    last: dict[str, int] = {}
    for ev, lead in pairs:
        last[lead.id] = ev.id
    out: list[dict[str, Any]] = []
    for ev, lead in pairs:
        ctx = lead.context
        out.append(
            {
                "event_id": ev.id,
                "created_at": ev.created_at.isoformat(),
                "tenant": lead.tenant,
                "actor": ev.actor,
                "lead_id": lead.id,
                "region_id": lead.region_id,
                "chain_id": lead.chain_id,
                "link_id": lead.link_id,
                "gap_type": ctx.get("gap_type"),
                "enterprise_id": lead.enterprise_id,
                "enterprise_name": lead.enterprise_name,
                "from_status": ev.from_status.value if ev.from_status else None,
                "to_status": ev.to_status.value,
                "note": ev.note,
                "reason": ev.reason,
                "grade": GRADES[ev.to_status],
                "label": outcome_label(ev.to_status),
                "final": last[lead.id] == ev.id,
                "rank": ctx.get("rank"),
                "score": ctx.get("score"),
                "scorer": ctx.get("scorer"),
                "features": dict(ctx.get("features") or {}),
            }
        )
    return out
