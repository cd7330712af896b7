"""Shortlist exports (XLSX / CSV) for a region, ready to hand to a leader.

``GET`` exports the tenant's leads of the region (已放弃 left out unless asked), ranked as when they were
shortlisted; a region without leads exports the current recommendations (top ``k`` per gap) instead.
``POST`` exports exactly the enterprises given, in that order.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from matcher.ranking.recommendation import Candidate, Recommendation, RecommendRequest
from matcher.errors import UnknownEnterpriseError
from matcher.records import Enterprise, Region
from matcher.store.lead_store import Lead, LeadStatus, list_leads
from service.api.deps import ApiError, ServiceDep, TenantDep, charge_work
from service.api.disconnect import check_client
from service.api.export import ShortlistRow, to_csv, to_xlsx
from service.api.routes._common import find_enterprise, region_or_404, resolve_chain, resolve_link
from service.api.schemas import ShortlistBody

router = APIRouter(tags=["exports 导出"])

_MEDIA = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
_STATUS_ORDER = {
    LeadStatus.SIGNED: 0,
    LeadStatus.VISITED: 1,
    LeadStatus.CONTACTED: 2,
    LeadStatus.LEAD: 3,
    LeadStatus.DROPPED: 4,
}


def _row_from_lead(lead: Lead, rank: int, ent: Enterprise | None = None) -> ShortlistRow:
    ctx = lead.context
    return ShortlistRow(
        rank=rank,
        name=lead.enterprise_name,
        province=ctx.get("province") or "",
        city=ctx.get("city") or "",
        chain=ctx.get("chain_name") or lead.chain_id,
        link=ctx.get("link_name") or lead.link_id,
        gap_type=ctx.get("gap_type") or "",
        products=[str(p[0]) for p in ctx.get("matched_products") or []],
        evidence_strength=ctx.get("evidence_strength") or "",
        score=ctx.get("score"),
        reasons=list(ctx.get("reasons") or []),
        status=lead.status.value,
        note=lead.note,
        enterprise_id=lead.enterprise_id,
        **(_provenance(ent) if ent is not None else {}),
    )


def _row_from_candidate(
    c: Candidate, rec: Recommendation, rank: int, chain_name: str, status: str
) -> ShortlistRow:
    return ShortlistRow(
        rank=rank,
        name=f"{c.name}（虚构示例）" if c.fictional else c.name,
        province=c.province or "",
        city=c.city or "",
        chain=chain_name,
        link=rec.gap.link_name if rec.gap else (c.link_name or ""),
        gap_type=rec.gap.type.value if rec.gap else "",
        products=[p[0] for p in c.matched_products],
        evidence_strength=c.evidence_strength,
        score=c.score,
        reasons=c.reasons,
        status=status,
        enterprise_id=c.enterprise_id,
        stock_code=c.stock_code or "",
        listing_status=c.listing_status or "",
        group=c.group or "",
        fictional=c.fictional,
        sources=c.sources,
        as_of=c.as_of or "",
    )


def _provenance(ent: Enterprise) -> dict[str, Any]:
    """The provenance cells of a stored firm (for rows not built from a ranked candidate)."""
    return {
        "stock_code": ent.stock_code or "",
        "listing_status": ent.extra.get("listing_status") or ("listed" if ent.listed else ""),
        "group": ent.parent_group or "",
        "fictional": ent.fictional,
        "sources": list(ent.extra.get("sources") or ([ent.source] if ent.source else [])),
        "as_of": ent.updated_at.date().isoformat(),
    }


def _lead_rows(svc: ServiceDep, tenant: str, region: Region, include_dropped: bool) -> list[ShortlistRow]:
    leads = [
        x
        for x in list_leads(svc.store, tenant, region_id=region.id)
        if include_dropped or x.status is not LeadStatus.DROPPED
    ]
    leads.sort(key=lambda x: (_STATUS_ORDER[x.status], x.context.get("rank") or 10_000, x.created_at))
    return [_row_from_lead(x, i, _stored(svc, tenant, x.enterprise_id)) for i, x in enumerate(leads, start=1)]


def _stored(svc: ServiceDep, tenant: str, enterprise_id: str) -> Enterprise | None:
    """The lead's firm as stored now (None once deleted: the row keeps what the lead recorded)."""
    try:
        return svc.store.get_enterprise(enterprise_id, tenant)
    except UnknownEnterpriseError:
        return None


def _recommended_rows(
    svc: ServiceDep, tenant: str, region: Region, k: int, max_gaps: int, request: Request | None = None
) -> list[ShortlistRow]:
    from matcher.knowledge.gaps import diagnose

    book = svc.engine.regions(tenant)
    rows: list[ShortlistRow] = []
    for g in diagnose(region, svc.engine.catalogue, book=book).gaps[:max_gaps]:
        if request is not None:
            check_client(request, "shortlist_export")
        req = RecommendRequest(
            region=region.id, chain=g.chain_id, link=g.link_id, gap_type=g.type, k=k, tenant=tenant
        )
        with svc.index_lock.read():
            rec = svc.engine.recommend(req)
        for c in rec.candidates:
            rows.append(_row_from_candidate(c, rec, len(rows) + 1, g.chain_name, "未跟进"))
    return rows


def _file(rows: list[ShortlistRow], region: Region, fmt: str) -> Response:
    data = to_xlsx(rows, title=f"{region.name}招商清单") if fmt == "xlsx" else to_csv(rows)
    filename = f"{region.name}_招商清单.{fmt}"
    disposition = f"attachment; filename=\"shortlist-{region.id}.{fmt}\"; filename*=UTF-8''{quote(filename)}"
    return Response(
        data,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


_FILE_RESPONSES = {
    200: {"content": {_MEDIA["xlsx"]: {}, _MEDIA["csv"]: {}}, "description": "the shortlist file"}
}


@router.get(
    "/regions/{region_id}/shortlist.{fmt}",
    response_class=Response,
    responses=_FILE_RESPONSES,
    summary="导出招商清单 Export the region's shortlist (xlsx / csv)",
)
def export_shortlist(
    request: Request,
    region_id: str,
    fmt: Literal["xlsx", "csv"],
    tenant: TenantDep,
    svc: ServiceDep,
    include_abandoned: bool = Query(False, description="also list leads marked 已放弃"),
    k: int = Query(5, ge=1, le=50, description="without leads: candidates per gap"),
    max_gaps: int = Query(10, ge=1, le=50, description="without leads: gaps exported"),
) -> Response:
    region = region_or_404(svc.engine.regions(tenant), region_id, tenant)
    rows = _lead_rows(svc, tenant, region, include_abandoned)
    if not rows and not list_leads(svc.store, tenant, region_id=region.id, limit=1):
        charge_work(request, svc, max_gaps, f"{max_gaps} 个缺口")
        rows = _recommended_rows(svc, tenant, region, k, max_gaps, request)
    return _file(rows, region, fmt)


@router.post(
    "/regions/{region_id}/shortlist.{fmt}",
    response_class=Response,
    responses=_FILE_RESPONSES,
    summary="导出指定企业 Export a shortlist of the given enterprises (xlsx / csv)",
)
def export_selected(
    region_id: str,
    fmt: Literal["xlsx", "csv"],
    tenant: TenantDep,
    svc: ServiceDep,
    body: ShortlistBody,
) -> Response:
    """Each enterprise is described by its lead in this region when there is one, else by its ranking for
    ``chain`` / ``link`` when given, else by its profile alone."""
    catalogue = svc.engine.catalogue
    region = region_or_404(svc.engine.regions(tenant), region_id, tenant)
    chain_id = resolve_chain(catalogue, body.chain) if body.chain else None
    link_id = resolve_link(catalogue, body.link, "link", chain_id) if body.link else None
    leads: dict[str, Lead] = {}
    for x in list_leads(svc.store, tenant, region_id=region.id):
        if (chain_id is None or x.chain_id == chain_id) and (link_id is None or x.link_id == link_id):
            leads.setdefault(x.enterprise_id, x)
    ranked: dict[str, tuple[Candidate, Recommendation]] = {}
    if link_id:
        req = RecommendRequest(region=region.id, chain=chain_id, link=link_id, k=200, tenant=tenant)
        with svc.index_lock.read():
            rec = svc.engine.recommend(req)
        ranked = {c.enterprise_id: (c, rec) for c in rec.candidates}
    rows: list[ShortlistRow] = []
    for i, key in enumerate(dict.fromkeys(body.enterprise_ids), start=1):
        try:
            ent = find_enterprise(svc.store, key, tenant)
        except KeyError:
            raise ApiError(
                422,
                "unknown_enterprise",
                f"未知企业 '{key}' (unknown enterprise)",
                field=f"enterprise_ids[{i - 1}]",
                value=key,
            ) from None
        if ent.id in leads:
            rows.append(_row_from_lead(leads[ent.id], i, ent))
        elif ent.id in ranked:
            c, rec = ranked[ent.id]
            chain_name = catalogue.chains[rec.chain_id].name if rec.chain_id else ""
            rows.append(_row_from_candidate(c, rec, i, chain_name, "未跟进"))
        else:
            rows.append(
                ShortlistRow(
                    rank=i,
                    name=ent.name,
                    province=ent.province or "",
                    city=ent.city or "",
                    chain=catalogue.chains[chain_id].name if chain_id else "",
                    link=catalogue.links[link_id].name if link_id else "",
                    products=[p.name for p in ent.products[:5]],
                    reasons=["人工选择"],
                    enterprise_id=ent.id,
                    **_provenance(ent),
                )
            )
    return _file(rows, region, fmt)
