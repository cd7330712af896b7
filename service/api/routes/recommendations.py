"""Recommendations: one need (a gap or free text), a whole region (a shortlist per gap), an enterprise's fit."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from matcher.knowledge.gaps import diagnose
from matcher.ranking.recommendation import RecommendRequest
from service.api.deps import ServiceDep, TenantDep, charge_work
from service.api.disconnect import check_client
from service.api.routes._common import (
    check_filters,
    enterprise_or_404,
    leads_by_candidate,
    region_or_404,
    region_or_422,
    resolve_chain,
    resolve_link,
    with_leads,
)
from service.api.schemas import (
    EnterpriseFit,
    FitItem,
    RecommendationOut,
    RecommendBody,
    RegionRecommendations,
    RegionRecommendBody,
)

router = APIRouter(tags=["recommendations 推荐"])


@router.post(
    "/recommendations",
    response_model=RecommendationOut,
    summary="推荐企业 Rank enterprises for one need (a region's gap, or a free-text need)",
)
def recommend(body: RecommendBody, tenant: TenantDep, svc: ServiceDep) -> RecommendationOut:
    """Every candidate carries its reasons (推荐理由), evidence strength and the tenant's lead status."""
    catalogue = svc.engine.catalogue
    check_filters(body.filters)
    chain_id = resolve_chain(catalogue, body.chain) if body.chain else None
    link_id = resolve_link(catalogue, body.link, "link", chain_id) if body.link else None
    region_id = None
    if body.region:
        region_id = region_or_422(svc.engine.regions(tenant), body.region, tenant).id
    req = RecommendRequest(
        **body.model_dump(exclude={"chain", "link", "region", "filters"}),
        region=region_id,
        chain=chain_id,
        link=link_id,
        filters=body.filters,
        tenant=tenant,
    )
    with svc.index_lock.read():
        rec = svc.engine.recommend(req)
    return with_leads(rec, leads_by_candidate(svc.store, tenant, rec.region_id))


@router.post(
    "/regions/{region_id}/recommendations",
    response_model=RegionRecommendations,
    summary="地区整体推荐 A shortlist for each of a region's top gaps",
)
def recommend_region(
    request: Request, region_id: str, body: RegionRecommendBody, tenant: TenantDep, svc: ServiceDep
) -> RegionRecommendations:
    book = svc.engine.regions(tenant)
    region = region_or_404(book, region_id, tenant)
    check_filters(body.filters)
    chain_id = resolve_chain(svc.engine.catalogue, body.chain) if body.chain else None
    gm = diagnose(region, svc.engine.catalogue, chain=chain_id, book=book)
    leads = leads_by_candidate(svc.store, tenant, region.id)
    charge_work(request, svc, min(body.max_gaps, len(gm.gaps)), f"{min(body.max_gaps, len(gm.gaps))} 个缺口")
    out = []
    for g in gm.gaps[: body.max_gaps]:
        check_client(request, "region_recommendations")
        req = RecommendRequest(
            region=region.id,
            chain=g.chain_id,
            link=g.link_id,
            gap_type=g.type,
            k=body.k,
            filters=body.filters,
            tenant=tenant,
        )
        with svc.index_lock.read():
            rec = svc.engine.recommend(req)
        out.append(with_leads(rec, leads))
    return RegionRecommendations(region_id=region.id, region_name=region.name, shortlists=out)


@router.get(
    "/enterprises/{enterprise_id}/fit",
    response_model=EnterpriseFit,
    summary="企业适配地区 Regions whose gaps an enterprise fits",
)
def enterprise_fit(
    enterprise_id: str, tenant: TenantDep, svc: ServiceDep, k: int = Query(10, ge=1, le=100)
) -> EnterpriseFit:
    ent = enterprise_or_404(svc.store, enterprise_id, tenant)
    with svc.index_lock.read():
        ent, fits = svc.engine.fit_regions(ent.id, k=k, tenant=tenant)
    visible = svc.engine.regions(tenant)
    items = [FitItem(**f.to_dict()) for f in fits if f.region_id in visible.regions]
    return EnterpriseFit(enterprise_id=ent.id, enterprise_name=ent.name, fits=items)
