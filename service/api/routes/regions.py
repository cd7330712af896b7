"""Regions: list, read, create / replace / delete the tenant's own, gap diagnosis (JSON and SVG)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query, Response, status

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gap_view import concise
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.located import located_lookup
from matcher.records import Established, Fact, GapMap, Need, Project, Region, Resident
from matcher.store.tenancy import SharedCorpusReadOnlyError
from service.api.deps import ApiError, ServiceDep, TenantDep
from service.api.routes._common import region_or_404, resolve_chain, resolve_link
from service.api.routes._gapmap import render_gap_map
from service.api.schemas import REGION_ID, RegionCreate, RegionSummary, RegionUpdate

router = APIRouter(prefix="/regions", tags=["regions 地区"])


def _validated(
    body: RegionUpdate, region_id: str, tenant: str, catalogue: Catalogue, known: dict[str, str | None]
) -> Region:
    """The body as a Region with chain / link names resolved to ids; 422 naming the first unknown one."""
    chains = [resolve_chain(catalogue, c, f"target_chains[{i}]") for i, c in enumerate(body.target_chains)]
    residents = []
    for i, r in enumerate(body.residents):
        links = [resolve_link(catalogue, x, f"residents[{i}].links[{j}]") for j, x in enumerate(r.links)]
        plant = [resolve_link(catalogue, x, f"residents[{i}].integrated[{j}]") for j, x in enumerate(r.integrated)]
        residents.append(
            Resident(
                **r.model_dump(exclude={"links", "integrated"}),
                links=list(dict.fromkeys(links)),
                integrated=list(dict.fromkeys(plant)),
            )
        )
    projects = [
        Project(**p.model_dump(exclude={"links"}),
                links=[resolve_link(catalogue, x, f"projects[{i}].links[{j}]") for j, x in enumerate(p.links)])
        for i, p in enumerate(body.projects)
    ]  # fmt: skip
    established = [
        Established(**e.model_dump(exclude={"links"}),
                    links=[resolve_link(catalogue, x, f"established[{i}].links[{j}]") for j, x in enumerate(e.links)])
        for i, e in enumerate(body.established)
    ]  # fmt: skip
    needs = []
    for i, n in enumerate(body.needs):
        chain_id = resolve_chain(catalogue, n.chain, f"needs[{i}].chain") if n.chain else None
        links = [
            resolve_link(catalogue, x, f"needs[{i}].links[{j}]", chain_id) for j, x in enumerate(n.links)
        ]
        needs.append(Need(text=n.text, chain=chain_id, links=links, gap_type=n.gap_type))
    if body.parent is not None:
        if body.parent == region_id:
            raise ApiError(
                422,
                "invalid_parent",
                "上级地区不能是自身 (a region cannot be its own parent)",
                field="parent",
                value=body.parent,
            )
        if body.parent not in known:
            raise ApiError(
                422,
                "unknown_region",
                f"未知上级地区 '{body.parent}' (unknown parent region)",
                field="parent",
                value=body.parent,
            )
        path, up = [region_id, body.parent], known.get(body.parent)
        while up is not None and up not in path:
            path.append(up)
            up = known.get(up)
        if up is not None:
            raise ApiError(
                422,
                "invalid_parent",
                f"上级地区形成循环：{' → '.join([*path, up])} (the parent chain would loop back)",
                field="parent",
                value=body.parent,
            )
    return Region(
        id=region_id,
        name=body.name,
        level=body.level,
        province=body.province,
        parent=body.parent,
        aliases=body.aliases,
        target_chains=list(dict.fromkeys(chains)),
        residents=residents,
        needs=needs,
        endowments=[Fact(**f.model_dump()) for f in body.endowments],
        projects=projects,
        established=established,
        aiding=body.aiding,
        tenant=tenant,
        description=body.description,
    )


def _parents(book) -> dict[str, str | None]:
    return {rid: r.parent for rid, r in book.regions.items()}


def _save(svc: ServiceDep, region: Region) -> None:
    svc.store.upsert_region(region)
    with svc.index_lock.write():
        svc.engine.region_changed(region.id, region.tenant)


@router.get("", response_model=list[RegionSummary], summary="地区列表 List the regions the tenant can see")
def list_regions(tenant: TenantDep, svc: ServiceDep) -> list[RegionSummary]:
    book = svc.engine.regions(tenant)
    return [
        RegionSummary(
            id=r.id,
            name=r.name,
            level=r.level,
            province=r.province,
            parent=r.parent,
            target_chains=r.target_chains,
            residents=len(r.residents),
            needs=len(r.needs),
            shared=r.tenant is None,
        )
        for r in sorted(book, key=lambda r: (r.province, r.parent or "", r.id))
        if r.tenant is None or r.tenant == tenant
    ]


@router.get("/{region_id}", response_model=Region, summary="地区详情 One region")
def get_region(region_id: str, tenant: TenantDep, svc: ServiceDep) -> Region:
    return region_or_404(svc.engine.regions(tenant), region_id, tenant)


@router.post(
    "", response_model=Region, status_code=status.HTTP_201_CREATED, summary="新建地区 Create a region"
)
def create_region(body: RegionCreate, tenant: TenantDep, svc: ServiceDep) -> Region:
    book = svc.engine.regions(tenant)
    if body.id in book.regions:
        raise ApiError(
            409,
            "region_exists",
            f"地区 '{body.id}' 已存在，请用 PUT 修改 (region exists; use PUT)",
            field="id",
            value=body.id,
        )
    region = _validated(body, body.id, tenant, svc.engine.catalogue, _parents(book))
    _save(svc, region)
    return region


@router.put(
    "/{region_id}", response_model=Region, summary="新建或替换地区 Create or replace the tenant's region"
)
def put_region(
    body: RegionUpdate,
    tenant: TenantDep,
    svc: ServiceDep,
    region_id: str = Path(pattern=REGION_ID, description="letters, digits, '_', '.', '-' (≤ 64)"),
) -> Region:
    """A shared region with this id is not changed: the tenant gets its own version that overrides it."""
    book = svc.engine.regions(tenant)
    region = _validated(body, region_id, tenant, svc.engine.catalogue, _parents(book))
    _save(svc, region)
    return region


@router.delete(
    "/{region_id}", status_code=status.HTTP_204_NO_CONTENT, summary="删除地区 Delete the tenant's region"
)
def delete_region(region_id: str, tenant: TenantDep, svc: ServiceDep) -> Response:
    book = svc.engine.regions(tenant)
    region = region_or_404(book, region_id, tenant)
    if region.tenant != tenant:
        raise SharedCorpusReadOnlyError("region", region.id, tenant)
    svc.store.delete_region(region.id, tenant)
    with svc.index_lock.write():
        svc.engine.region_changed(region.id, tenant)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _gap_map(
    svc: ServiceDep, tenant: str, region_id: str, chain: str | None, include_infeasible: bool = False,
    include_delegated: bool = False, per_chain: int = 0,
) -> tuple[Region, GapMap, str | None]:
    book = svc.engine.regions(tenant)
    region = region_or_404(book, region_id, tenant)
    chain_id = resolve_chain(svc.engine.catalogue, chain) if chain else None
    # presence by location (issue #16), for the region and the sub-regions its delegation consults
    located = located_lookup(lambda p: svc.store.enterprises_in_province(p, tenant), svc.engine.catalogue, book)
    gm = diagnose(
        region, svc.engine.catalogue, chain=chain_id, book=book, include_infeasible=include_infeasible,
        include_delegated=include_delegated, located=located,
    )
    return region, concise(gm, per_chain), chain_id


@router.get(
    "/{region_id}/gaps", response_model=GapMap, summary="缺口诊断 The region's chain gaps (缺链/短链/弱链)"
)
def region_gaps(
    region_id: str,
    tenant: TenantDep,
    svc: ServiceDep,
    chain: str | None = Query(
        None, max_length=100, description="one chain (id / name); default: target chains"
    ),
    include_infeasible: bool = Query(False, description="also list the gaps flagged 不宜引进 (feasible=false)"),
    include_delegated: bool = Query(
        False,
        description="also list, as pointer rows (delegated_to = the sub-region), the gaps whose whole evidence sits "
        "in one sub-region that lists them as its own; by default they are left out and named in `delegated`",
    ),
    per_chain: int = Query(
        0, ge=0, le=1000,
        description="the concise view: at most this many rows per chain, in priority order (`trimmed` counts the "
        "rest); 0 = every row (the API default; `chainmatch gaps` shows 5 unless --all)",
    ),
) -> GapMap:
    return _gap_map(svc, tenant, region_id, chain, include_infeasible, include_delegated, per_chain)[1]


@router.get(
    "/{region_id}/gapmap.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "the gap map drawn as SVG"}},
    summary="缺口图 The gap map of one chain as SVG",
)
def region_gap_map_svg(
    region_id: str,
    tenant: TenantDep,
    svc: ServiceDep,
    chain: str | None = Query(
        None, max_length=100, description="chain id / name; default: first target chain"
    ),
) -> Response:
    book = svc.engine.regions(tenant)
    region = region_or_404(book, region_id, tenant)
    catalogue = svc.engine.catalogue
    if chain:
        chain_id = resolve_chain(catalogue, chain)
    else:
        gm_all = diagnose(region, catalogue, book=book)
        if not gm_all.chains:
            raise ApiError(
                422,
                "no_chain",
                "该地区没有目标产业链，请指定 chain (region has no target chain)",
                field="chain",
                value=None,
                allowed=sorted(catalogue.chains),
            )
        chain_id = gm_all.chains[0]
    located = located_lookup(lambda p: svc.store.enterprises_in_province(p, tenant), catalogue, book)
    gm = diagnose(region, catalogue, chain=chain_id, book=book, located=located)  # as /gaps shows it
    svg = render_gap_map(region, gm, catalogue, chain_id, book)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})
