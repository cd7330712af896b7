"""Leads and feedback: shortlist a candidate, move it through 线索 → 已接触 → 已考察 → 已签约 / 已放弃.

Every change is kept as a feedback event (``GET /v1/feedback/events``), the training data of the learned reranker.
A lead remembers the candidate as the recommender ranked it when it was shortlisted (rank, score, features,
reasons, evidence), so exports and training see what the staff saw.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from matcher.ranking.recommendation import RecommendRequest
from matcher.store.feedback import export_training_events
from matcher.store.lead_store import (
    Lead,
    LeadEvent,
    LeadStatus,
    create_lead,
    get_lead,
    lead_events,
    list_leads,
    update_lead,
)
from service.api.deps import ApiError, ApiKeyDep, ServiceDep, TenantDep
from service.api.routes._common import find_enterprise, region_or_422, resolve_chain, resolve_link
from service.api.schemas import LeadCreate, LeadUpdate

router = APIRouter(tags=["leads 线索与反馈"])

CONTEXT_DEPTH = 100  # candidates searched for the shortlisted enterprise's ranking context


def candidate_context(
    svc: ServiceDep, tenant: str, region_id: str, chain_id: str, link_id: str, enterprise_id: str
) -> dict[str, Any]:
    """The enterprise as the recommender ranks it for this gap now (rank, score, features, reasons …)."""
    req = RecommendRequest(region=region_id, chain=chain_id, link=link_id, k=CONTEXT_DEPTH, tenant=tenant)
    with svc.index_lock.read():
        rec = svc.engine.recommend(req)
    ctx: dict[str, Any] = {
        "gap_type": rec.gap.type.value if rec.gap else None,
        "chain_name": svc.engine.catalogue.chains[chain_id].name,
        "link_name": svc.engine.catalogue.links[link_id].name,
        "scorer": rec.scorer,
    }
    for c in rec.candidates:
        if c.enterprise_id == enterprise_id:
            ctx.update(
                c.model_dump(
                    include={
                        "rank",
                        "score",
                        "features",
                        "contributions",
                        "evidence_strength",
                        "strength_rule",
                        "reasons",
                        "matched_products",
                        "province",
                        "city",
                        "aiding",
                        "chain_master_relation",
                    }
                )
            )
            return ctx
    ctx.update(
        rank=None, score=None, reasons=[f"人工添加：不在系统推荐的前 {CONTEXT_DEPTH} 名内"], manual=True
    )
    return ctx


@router.post(
    "/leads",
    response_model=Lead,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": Lead, "description": "the candidate was already a lead (unchanged)"}},
    summary="加入招商清单 Shortlist a candidate as a lead",
)
def add_lead(
    body: LeadCreate, key: ApiKeyDep, tenant: TenantDep, svc: ServiceDep, response: Response
) -> Lead:
    catalogue = svc.engine.catalogue
    region = region_or_422(svc.engine.regions(tenant), body.region, tenant)
    chain_id = resolve_chain(catalogue, body.chain)
    link_id = resolve_link(catalogue, body.link, "link", chain_id)
    try:
        ent = find_enterprise(svc.store, body.enterprise_id, tenant)
    except KeyError:
        raise ApiError(
            422,
            "unknown_enterprise",
            f"未知企业 '{body.enterprise_id}' (unknown enterprise)",
            field="enterprise_id",
            value=body.enterprise_id,
        ) from None
    existing = list_leads(svc.store, tenant, region_id=region.id, enterprise_id=ent.id)
    if any(x.chain_id == chain_id and x.link_id == link_id for x in existing):
        response.status_code = status.HTTP_200_OK
        return next(x for x in existing if x.chain_id == chain_id and x.link_id == link_id)
    ctx = candidate_context(svc, tenant, region.id, chain_id, link_id, ent.id)
    lead, created = create_lead(
        svc.store,
        tenant,
        region_id=region.id,
        chain_id=chain_id,
        link_id=link_id,
        enterprise_id=ent.id,
        enterprise_name=ent.name,
        status=LeadStatus(body.status),
        note=body.note,
        reason=body.reason,
        context=ctx,
        actor=key.name or key.id,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return lead


@router.get("/leads", response_model=list[Lead], summary="线索列表 The tenant's leads")
def get_leads(
    tenant: TenantDep,
    svc: ServiceDep,
    region: str | None = Query(None, max_length=100, description="region id, name or alias (玛纳斯县 / manas)"),
    status_: Annotated[LeadStatus | None, Query(alias="status")] = None,
    enterprise_id: str | None = Query(None, max_length=200),
) -> list[Lead]:
    """An unknown region or enterprise answers 422 naming it (not an empty list that looks like "no leads")."""
    region_id = region_or_422(svc.engine.regions(tenant), region, tenant).id if region is not None else None
    ent_id = enterprise_id
    if enterprise_id is not None:
        try:
            ent_id = find_enterprise(svc.store, enterprise_id, tenant).id
        except KeyError:
            # a deleted enterprise may still have leads: accept its id when the tenant has leads for it
            if not list_leads(svc.store, tenant, enterprise_id=enterprise_id, limit=1):
                raise ApiError(
                    422,
                    "unknown_enterprise",
                    f"未知企业 '{enterprise_id}' (unknown enterprise)",
                    field="enterprise_id",
                    value=enterprise_id,
                ) from None
    return list_leads(svc.store, tenant, region_id=region_id, status=status_, enterprise_id=ent_id)


@router.get("/leads/{lead_id}", response_model=Lead, summary="线索详情 One lead")
def read_lead(lead_id: str, tenant: TenantDep, svc: ServiceDep) -> Lead:
    return get_lead(svc.store, tenant, lead_id)


@router.patch("/leads/{lead_id}", response_model=Lead, summary="更新线索状态 Move a lead / change its note")
def patch_lead(lead_id: str, body: LeadUpdate, key: ApiKeyDep, tenant: TenantDep, svc: ServiceDep) -> Lead:
    """Invalid moves answer 422 with the allowed next statuses; 已放弃 needs a reason."""
    return update_lead(
        svc.store,
        tenant,
        lead_id,
        status=body.status,
        note=body.note,
        reason=body.reason,
        actor=key.name or key.id,
    )


@router.get("/leads/{lead_id}/events", response_model=list[LeadEvent], summary="线索历史 A lead's changes")
def read_lead_events(lead_id: str, tenant: TenantDep, svc: ServiceDep) -> list[LeadEvent]:
    return lead_events(svc.store, tenant, lead_id)


@router.get(
    "/feedback/events",
    response_model=list[dict[str, Any]],
    summary="反馈事件 The tenant's feedback events (reranker training rows)",
)
def feedback_events(tenant: TenantDep, svc: ServiceDep) -> list[dict[str, Any]]:
    return export_training_events(svc.store, tenant)
