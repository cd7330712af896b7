"""API schemas: what clients send (``*In`` / ``*Body``) and what they get back (``*Out`` / domain records).

Domain records (Region, GapMap, Recommendation, Lead …) are reused as responses where they already are the JSON
contract; request bodies are separate models so a client can never set server-owned fields (tenant, ids of
stored rows, mapped links, timestamps).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from matcher.ranking.recommendation import MAX_K, Candidate, Filters, Recommendation
from matcher.records import Enterprise, GapType, Product, ProjectStatus, RegionLevel
from matcher.store.lead_store import LeadStatus

__all__ = [
    "CandidateOut",
    "ChainDetail",
    "ChainSummary",
    "EnterpriseBrief",
    "EnterpriseFit",
    "EnterpriseIn",
    "ErrorBody",
    "ErrorResponse",
    "EstablishedIn",
    "FactIn",
    "FitItem",
    "ImportIssue",
    "ImportResult",
    "LeadCreate",
    "LeadUpdate",
    "LinkInfo",
    "NeedIn",
    "ProjectIn",
    "RecommendBody",
    "RecommendationOut",
    "RegionCreate",
    "RegionRecommendBody",
    "RegionRecommendations",
    "RegionSummary",
    "RegionUpdate",
    "ResidentIn",
    "ShortlistBody",
    "UpsertResult",
]

REGION_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
"""Pattern of region ids."""
_Strict = ConfigDict(extra="forbid", allow_inf_nan=False)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL, a lone surrogate), or None when it is fine."""
    if "\x00" in text:
        return "含有 NUL 字符 (contains a NUL character)"
    if not text.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "含有无效的 Unicode 代理字符 (contains a lone surrogate, not valid Unicode)"
    return None


def _check_texts(value: Any, path: str) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise ValueError(f"{path or 'body'}: {problem}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_texts(k, path)
            _check_texts(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_texts(v, f"{path}[{i}]")


class InputModel(BaseModel):
    """A request body: unknown fields, NaN/Infinity, NUL and lone surrogates are rejected (422 naming the field)."""

    model_config = _Strict

    @model_validator(mode="before")
    @classmethod
    def _texts_are_storable(cls, data: Any) -> Any:
        _check_texts(data, "")
        return data


# --- errors ---------------------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """What went wrong: a stable English code, a Chinese message, and the field / value at fault when known."""

    code: str = Field(
        description="stable English code, e.g. unknown_chain, validation_error, invalid_transition"
    )
    message: str = Field(description="中文说明 (with the English detail)")
    field: str | None = None
    value: Any = None
    allowed: list[str] | None = Field(None, description="valid values, when the error is a bad choice")
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


# --- catalogue ------------------------------------------------------------------------------------------------------


class ChainSummary(BaseModel):
    id: str
    name: str
    cluster: str = ""
    links: int


class LinkInfo(BaseModel):
    id: str
    name: str
    stage: str
    aliases: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)


class ChainDetail(BaseModel):
    id: str
    name: str
    cluster: str = ""
    description: str = ""
    links: list[LinkInfo]
    edges: list[dict[str, str]]


# --- regions --------------------------------------------------------------------------------------------------------


class ResidentIn(InputModel):
    """An enterprise already in the region and the links (ids or names) it occupies."""

    model_config = _Strict

    name: str = Field(min_length=1, max_length=200)
    enterprise_id: str | None = Field(None, max_length=200)
    links: list[str] = Field(default_factory=list, max_length=50)
    chain_master: bool = False
    capacity: str = Field("", max_length=500)
    size: Literal["大", "中", "小"] | None = None
    note: str = Field("", max_length=1000)
    integrated: list[str] = Field(
        default_factory=list, max_length=50, description="links its own integrated plant covers (自备电厂…)"
    )


class FactIn(InputModel):
    """An endowment fact of the region (资源禀赋、要素条件) with its source; sub-regions inherit it."""

    model_config = _Strict

    key: str = Field(min_length=1, max_length=64, description="e.g. bauxite, coal, open_land, water_ample")
    value: bool
    note: str = Field("", max_length=500)
    source: str = Field(min_length=4, max_length=500)


class ProjectIn(InputModel):
    """A project under way: 在建/投产 fill their links, 签约 partly fills them."""

    model_config = _Strict

    name: str = Field(min_length=1, max_length=200)
    links: list[str] = Field(min_length=1, max_length=50)
    status: ProjectStatus
    capacity: str = Field("", max_length=500)
    size: Literal["大", "中", "小"] | None = None
    source: str = Field(min_length=4, max_length=500)


class EstablishedIn(InputModel):
    """Links the region has at scale by public statistics, with no single firm on file."""

    model_config = _Strict

    links: list[str] = Field(min_length=1, max_length=50)
    note: str = Field(min_length=1, max_length=500)
    source: str = Field(min_length=4, max_length=500)


class NeedIn(InputModel):
    """A need the region states (招商需求)."""

    model_config = _Strict

    text: str = Field(min_length=1, max_length=2000)
    chain: str | None = Field(None, max_length=100)
    links: list[str] = Field(default_factory=list, max_length=50)
    gap_type: GapType | None = None


class RegionUpdate(InputModel):
    """A region profile without its id (the id is in the path)."""

    model_config = _Strict

    name: str = Field(min_length=1, max_length=100)
    level: RegionLevel
    province: str = Field("新疆", max_length=20)
    parent: str | None = Field(None, max_length=64)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    target_chains: list[str] = Field(
        default_factory=list, max_length=30, description="chain ids, names or aliases"
    )
    residents: list[ResidentIn] = Field(default_factory=list, max_length=2000)
    needs: list[NeedIn] = Field(default_factory=list, max_length=200)
    endowments: list[FactIn] = Field(default_factory=list, max_length=100)
    projects: list[ProjectIn] = Field(default_factory=list, max_length=200)
    established: list[EstablishedIn] = Field(default_factory=list, max_length=100)
    aiding: list[str] = Field(
        default_factory=list, max_length=20, description="产业援疆 aiding provinces / cities"
    )
    description: str = Field("", max_length=4000)


class RegionCreate(RegionUpdate):
    """A new region (or a full replacement of the tenant's own region with this id)."""

    id: str = Field(pattern=REGION_ID, description="letters, digits, '_', '.', '-' (≤ 64)")


class RegionSummary(BaseModel):
    id: str
    name: str
    level: RegionLevel
    province: str
    parent: str | None = None
    target_chains: list[str]
    residents: int
    needs: int
    shared: bool = Field(description="true for the shared (read-only) regions, false for the tenant's own")


# --- recommendations ------------------------------------------------------------------------------------------------


class RecommendBody(InputModel):
    """One need: a known region (or ad hoc place names), a chain, optionally a link / gap type and free text."""

    model_config = _Strict

    region: str | None = Field(None, max_length=100, description="region id or name, e.g. 玛纳斯县")
    province: str | None = Field(None, max_length=20)
    prefecture: str | None = Field(None, max_length=50)
    park: str | None = Field(None, max_length=100)
    chain: str | None = Field(None, max_length=100, description="chain id / name / alias, e.g. aluminium")
    link: str | None = Field(None, max_length=100, description="link id / name / alias, e.g. aluminium_rod")
    gap_type: GapType | Literal["补链", "延链", "强链"] | None = Field(
        None, description="缺链/短链/弱链 or 补链/延链/强链"
    )
    text: str = Field("", max_length=4000, description="free-text need")
    filters: Filters = Field(default_factory=Filters)
    k: int = Field(20, ge=1, le=MAX_K)


class CandidateOut(Candidate):
    """A candidate with the tenant's lead on it, if any."""

    lead_id: str | None = None
    lead_status: LeadStatus | None = None


class RecommendationOut(Recommendation):
    candidates: list[CandidateOut] = Field(default_factory=list)  # type: ignore[assignment]


class RegionRecommendBody(InputModel):
    """A shortlist for each of a region's top gaps."""

    model_config = _Strict

    chain: str | None = Field(
        None, max_length=100, description="one chain only (default: the region's targets)"
    )
    k: int = Field(10, ge=1, le=50, description="candidates per gap")
    max_gaps: int = Field(10, ge=1, le=50)
    filters: Filters = Field(default_factory=Filters)


class RegionRecommendations(BaseModel):
    region_id: str
    region_name: str
    shortlists: list[RecommendationOut]


class FitItem(BaseModel):
    region_id: str
    region_name: str
    chain_id: str
    chain_name: str
    link_id: str
    link_name: str
    gap_type: str
    score: float
    parts: dict[str, float]
    reasons: list[str]


class EnterpriseFit(BaseModel):
    enterprise_id: str
    enterprise_name: str
    fits: list[FitItem]


# --- enterprises ----------------------------------------------------------------------------------------------------


class EnterpriseIn(InputModel):
    """An enterprise profile from a CRM. ``id`` is the CRM's own id (default: credit code, else a name hash)."""

    model_config = _Strict

    id: str | None = Field(None, min_length=1, max_length=120, pattern=r"^[^:\s/]+$")
    name: str = Field(min_length=1, max_length=200)
    credit_code: str | None = Field(None, max_length=18)
    aliases: list[str] = Field(default_factory=list, max_length=20)
    province: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=50)
    county: str | None = Field(None, max_length=50)
    gbt_codes: list[str] = Field(default_factory=list, max_length=20)
    sw_industry: str | None = Field(None, max_length=100)
    products: list[Product] = Field(default_factory=list, max_length=100)
    scope: str = Field("", max_length=20000)
    registered_capital: float | None = Field(None, ge=0, le=1e10, strict=True, description="万元")
    employees: int | None = Field(None, ge=0, le=10_000_000, strict=True)
    revenue: float | None = Field(None, ge=0, le=1e6, strict=True, description="亿元")
    stock_code: str | None = Field(None, max_length=32)
    parent_group: str | None = Field(None, max_length=200)
    sites: list[str] = Field(default_factory=list, max_length=50,
                             description="生产基地: places of the firm's plants (e.g. 新疆昌吉州玛纳斯县)")  # fmt: skip
    tags: list[str] = Field(default_factory=list, max_length=50)
    extra: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=50)


class EnterpriseRecord(Enterprise):
    """An enterprise as the API shows it: the stored profile plus its provenance and status, spelled out."""

    sources: list[str] = Field(default_factory=list, description="every source that described the firm")
    as_of: str = Field("", description="date of the newest stored fact (YYYY-MM-DD)")
    listing_status: str | None = Field(None, description="listed / delisted (A-share data); null when unknown")
    former_names: list[str] = Field(default_factory=list, description="曾用名")
    group: str | None = Field(None, description="所属集团 (parent group), when known")

    @classmethod
    def of(cls, e: Enterprise) -> EnterpriseRecord:
        return cls(
            **{k: getattr(e, k) for k in Enterprise.model_fields},
            sources=list(e.extra.get("sources") or ([e.source] if e.source else [])),
            as_of=e.updated_at.date().isoformat(),
            listing_status=e.extra.get("listing_status") or ("listed" if e.listed else None),
            former_names=list(e.extra.get("former_names") or []),
            group=e.parent_group,
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fictional(self) -> bool:
        """An authored example firm (demo data), never a real enterprise."""
        return bool(Enterprise.fictional.fget(self))


class EnterpriseBrief(BaseModel):
    id: str
    name: str
    province: str | None = None
    city: str | None = None
    stock_code: str | None = None
    listing_status: str | None = None
    fictional: bool = False
    products: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    shared: bool

    @classmethod
    def of(cls, e: Enterprise) -> EnterpriseBrief:
        return cls(
            id=e.id,
            name=e.name,
            province=e.province,
            city=e.city,
            stock_code=e.stock_code,
            listing_status=e.extra.get("listing_status") or ("listed" if e.listed else None),
            fictional=e.fictional,
            products=[p.name for p in e.products[:10]],
            links=[m.link_id for m in e.links[:10]],
            shared=e.tenant is None,
        )


class ItemError(BaseModel):
    """Why one item of a bulk upsert was rejected."""

    field: str = Field(description="the item's field, e.g. 'credit_code' ('item' for the whole item)")
    reason: str
    value: str | None = None


class UpsertItem(BaseModel):
    """The outcome of one input item: its stored id, or the error that rejected it (``on_error=skip``)."""

    index: int = Field(description="position of the item in the request body")
    id: str | None = Field(None, description="stored id (None when rejected)")
    error: ItemError | None = None


class UpsertResult(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    ids: list[str] = Field(description="stored id of every stored input item, in order")
    changed_ids: list[str]
    index: Literal["updated", "pending"] = Field(description="whether the index already serves the changes")
    rejected: int = Field(0, description="items rejected (only with on_error=skip; atomic batches answer 422)")
    items: list[UpsertItem] = Field(
        default_factory=list, description="one result per input item, in order: its id or its error"
    )


class ImportIssue(BaseModel):
    row: int
    field: str
    reason: str
    value: str = ""


class ImportResult(BaseModel):
    filename: str
    format: str
    encoding: str | None = None
    rows: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    rejected: int
    committed: bool
    rejects: list[ImportIssue]
    warnings: list[ImportIssue]
    changed_ids: list[str]
    index: Literal["updated", "pending", "unchanged"]


# --- leads ----------------------------------------------------------------------------------------------------------


class LeadCreate(InputModel):
    """Put a candidate on the shortlist (线索), or dismiss it straight away (已放弃, with a reason)."""

    model_config = _Strict

    region: str = Field(min_length=1, max_length=100)
    chain: str = Field(min_length=1, max_length=100)
    link: str = Field(min_length=1, max_length=100)
    enterprise_id: str = Field(min_length=1, max_length=200)
    status: Literal["线索", "已放弃"] = "线索"
    note: str = Field("", max_length=2000)
    reason: str = Field("", max_length=2000)


class LeadUpdate(InputModel):
    """Move a lead on and/or change its note; 已放弃 needs a reason."""

    model_config = _Strict

    status: LeadStatus | None = None
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000)


class ShortlistBody(InputModel):
    """Export exactly these enterprises (in this order) for a region."""

    model_config = _Strict

    enterprise_ids: list[str] = Field(min_length=1, max_length=1000)
    chain: str | None = Field(None, max_length=100)
    link: str | None = Field(None, max_length=100)
