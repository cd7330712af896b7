"""Helpers shared by the routers: resolving request names against the catalogue, regions and the store."""

from __future__ import annotations

from matcher.errors import UnknownChainError, UnknownEnterpriseError, UnknownLinkError, UnknownRegionError
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.geo import CAPITALS, province_short
from matcher.knowledge.regions import RegionBook
from matcher.ranking.recommendation import Filters, Recommendation
from matcher.records import Enterprise, Region
from matcher.store.lead_store import Lead, list_leads
from matcher.store.store import Store
from matcher.store.tenancy import scoped_id
from service.api.deps import ApiError, ServiceState
from service.api.schemas import CandidateOut, RecommendationOut


def resolve_chain(catalogue: Catalogue, key: str, field: str = "chain") -> str:
    """A chain id from an id / name / alias; 422 naming the field and the value when unknown."""
    try:
        return catalogue.chain(key).id
    except UnknownChainError:
        raise ApiError(
            422,
            "unknown_chain",
            f"未知产业链 '{key}' (unknown chain)",
            field=field,
            value=key,
            allowed=sorted(catalogue.chains),
        ) from None


def resolve_link(catalogue: Catalogue, key: str, field: str = "link", chain_id: str | None = None) -> str:
    """A link id from an id / name / alias (inside ``chain_id`` when given); 422 when unknown or outside the chain."""
    try:
        link_id = catalogue.link(key).id
    except UnknownLinkError:
        allowed = list(catalogue.chains[chain_id].link_ids) if chain_id else None
        raise ApiError(
            422,
            "unknown_link",
            f"未知产业链环节 '{key}' (unknown link)",
            field=field,
            value=key,
            allowed=allowed,
        ) from None
    if chain_id is not None and link_id not in catalogue.chains[chain_id].link_ids:
        raise ApiError(
            422,
            "link_not_in_chain",
            f"环节 '{key}' 不属于产业链 '{chain_id}' (link is not in the chain)",
            field=field,
            value=key,
            allowed=list(catalogue.chains[chain_id].link_ids),
        )
    return link_id


def region_or_404(book: RegionBook, key: str, tenant: str) -> Region:
    """A region the tenant can see (404 when unknown or another tenant's)."""
    try:
        return book.get(key, tenant)
    except UnknownRegionError:
        raise ApiError(
            404, "unknown_region", f"未找到地区 '{key}' (unknown region)", field="region_id", value=key
        ) from None


def region_or_422(book: RegionBook, key: str, tenant: str, field: str = "region") -> Region:
    """A region named in a request body (422 naming the field when unknown)."""
    try:
        return book.get(key, tenant)
    except UnknownRegionError:
        raise ApiError(
            422, "unknown_region", f"未知地区 '{key}' (unknown region)", field=field, value=key
        ) from None


def check_filters(filters: Filters, field: str = "filters") -> None:
    """422 naming every unknown province of ``filters.provinces`` (instead of an empty list of candidates)."""
    unknown = [(i, p) for i, p in enumerate(filters.provinces) if province_short(p) is None]
    if unknown:
        names = "、".join(p for _, p in unknown)
        raise ApiError(
            422,
            "unknown_province",
            f"未知省份：{names} (unknown province in {field}.provinces)",
            field=f"{field}.provinces[{unknown[0][0]}]",
            value=unknown[0][1],
            allowed=sorted(CAPITALS),
        )


def find_enterprise(store: Store, key: str, tenant: str) -> Enterprise:
    """An enterprise visible to the tenant by stored id, or by the tenant's own (unscoped) id.

    Raises:
        UnknownEnterpriseError: not found, or another tenant's.
    """
    for candidate in dict.fromkeys((scoped_id(key, tenant), key)):
        try:
            return store.get_enterprise(candidate, tenant)
        except UnknownEnterpriseError:
            continue
    raise UnknownEnterpriseError(key)


def enterprise_or_404(store: Store, key: str, tenant: str) -> Enterprise:
    try:
        return find_enterprise(store, key, tenant)
    except UnknownEnterpriseError:
        raise ApiError(
            404,
            "unknown_enterprise",
            f"未找到企业 '{key}' (unknown enterprise)",
            field="enterprise_id",
            value=key,
        ) from None


def leads_by_candidate(
    store: Store, tenant: str, region_id: str | None
) -> dict[tuple[str, str, str, str], Lead]:
    """The tenant's leads of a region keyed by (region, chain, link, enterprise)."""
    if not region_id:
        return {}
    return {
        (x.region_id, x.chain_id, x.link_id, x.enterprise_id): x
        for x in list_leads(store, tenant, region_id=region_id)
    }


def with_leads(rec: Recommendation, leads: dict[tuple[str, str, str, str], Lead]) -> RecommendationOut:
    """The recommendation with each candidate's lead (id and status) when the tenant has one."""
    out = []
    for c in rec.candidates:
        lead = leads.get(
            (rec.region_id or "", rec.chain_id or "", rec.link_id or c.link_id or "", c.enterprise_id)
        )
        out.append(
            CandidateOut(
                **c.model_dump(), lead_id=lead.id if lead else None, lead_status=lead.status if lead else None
            )
        )
    return RecommendationOut(**rec.model_dump(exclude={"candidates"}), candidates=out)


def engine_regions(svc: ServiceState, tenant: str) -> RegionBook:
    return svc.engine.regions(tenant)
