"""The chain catalogue (read-only): chains, their links and edges."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import ApiError, ServiceDep
from service.api.schemas import ChainDetail, ChainSummary, LinkInfo

router = APIRouter(prefix="/chains", tags=["catalogue 产业链"])


@router.get("", response_model=list[ChainSummary], summary="产业链列表 The chains of the catalogue")
def list_chains(svc: ServiceDep) -> list[ChainSummary]:
    chains = svc.engine.catalogue.chains.values()
    return [ChainSummary(id=c.id, name=c.name, cluster=c.cluster, links=len(c.link_ids)) for c in chains]


@router.get(
    "/{chain_id}",
    response_model=ChainDetail,
    summary="产业链详情 One chain: links (upstream first) and edges",
)
def get_chain(chain_id: str, svc: ServiceDep) -> ChainDetail:
    catalogue = svc.engine.catalogue
    try:
        chain = catalogue.chain(chain_id)
    except KeyError:
        raise ApiError(
            404,
            "unknown_chain",
            f"未找到产业链 '{chain_id}' (unknown chain)",
            field="chain_id",
            value=chain_id,
            allowed=sorted(catalogue.chains),
        ) from None
    links = [catalogue.links[lid] for lid in catalogue.ordered_links(chain.id)]
    return ChainDetail(
        id=chain.id,
        name=chain.name,
        cluster=chain.cluster,
        description=chain.description,
        links=[
            LinkInfo(
                id=x.id, name=x.name, stage=x.stage.value, aliases=list(x.aliases), products=list(x.products)
            )
            for x in links
        ],
        edges=[{"from": e.source, "to": e.target, "flow": e.flow} for e in chain.edges],
    )
