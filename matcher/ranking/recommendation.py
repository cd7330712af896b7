"""Request and result records of the recommender (the JSON contract of `recommend` and the API)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from matcher.records import Gap, GapType

MAX_K = 200
_ACTIONS = {"补链": GapType.MISSING, "延链": GapType.SHORT, "强链": GapType.WEAK}


class Filters(BaseModel):
    """Hard filters: candidates failing any are never returned."""

    provinces: list[str] = Field(default_factory=list, description="home provinces allowed (short or full names)")
    size: list[Literal["大", "中", "小"]] = Field(default_factory=list, description="size brackets by employees")
    listed_only: bool = False
    exclude_ids: list[str] = Field(default_factory=list)
    aiding_only: bool = Field(False, description="only firms from the region's 产业援疆 aiding provinces")
    include_delisted: bool = Field(False, description="also list firms whose shares were delisted (退市)")
    recent_expansion: bool = Field(
        False, description="近两年有扩张动作: only firms (or their groups) with an expansion event in the two years before as_of"
    )


class RecommendRequest(BaseModel):
    """One need: a known region (or ad hoc place names), a chain, optionally a link, a gap type and free text."""

    region: str | None = Field(None, description="known region id or name, e.g. 玛纳斯县")
    province: str | None = Field(None, description="ad hoc region: province (when no known region)")
    prefecture: str | None = None
    park: str | None = None
    chain: str | None = Field(None, description="chain id, name or alias, e.g. aluminium / 铝产业链")
    link: str | None = Field(None, description="link id, name or alias, e.g. aluminium_rod / 铝棒")
    gap_type: GapType | None = Field(None, description="缺链/短链/弱链 or 补链/延链/强链")
    text: str = Field("", description="free-text need (products, project description)", max_length=4000)
    filters: Filters = Field(default_factory=Filters)
    k: int = Field(20, ge=1, le=MAX_K)
    tenant: str | None = None
    as_of: date | None = Field(None, description="expansion signals dated before this day count (default today)")

    @field_validator("gap_type", mode="before")
    @classmethod
    def _action_alias(cls, v: object) -> object:
        if isinstance(v, str) and v in _ACTIONS:
            return _ACTIONS[v]
        if v in ("", "unknown", None):
            return None
        return v


class SignalReason(BaseModel):
    """One of the candidate's earlier expansion events, as a reason with its sources."""

    month: str  # YYYY-MM
    kind: str
    text: str  # "2023-05 在甘肃签约 年产10万吨负极材料项目（来源：…）"
    urls: list[str] = Field(default_factory=list)


class Candidate(BaseModel):
    """A ranked enterprise with the reasons a promotion officer can act on."""

    rank: int
    enterprise_id: str
    name: str
    province: str | None = None
    city: str | None = None
    score: float
    link_id: str | None = None
    link_name: str | None = None
    matched_products: list[tuple[str, float | None]] = Field(default_factory=list)
    chain_master_relation: str | None = None
    aiding: str | None = None
    evidence_strength: Literal["strong", "medium", "weak"]
    strength_rule: str
    features: dict[str, float] = Field(default_factory=dict)
    contributions: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    retrieved_by: list[str] = Field(default_factory=list)  # the candidate sources that found it: dense / lexical / graph
    signals: list[SignalReason] = Field(default_factory=list)  # newest first, dated before the request's as_of
    fictional: bool = False  # an authored example firm (demo-only mode), never a real enterprise
    stock_code: str | None = None
    listing_status: str | None = None  # listed / delisted (A-share data); None when unknown
    former_names: list[str] = Field(default_factory=list)  # 曾用名 (a renamed shell's earlier names)
    group: str | None = None  # 所属集团 (parent group), when known
    sources: list[str] = Field(default_factory=list)  # where the firm's facts come from (ashare:…, crm, authored:…)
    as_of: str | None = None  # date of the newest fact shown
    local_presence: str | None = None  # 已在本地布局: why the firm (or its group) is already on site (强链 needs only)


class Recommendation(BaseModel):
    """The shortlist for one need."""

    region_id: str | None = None
    region_name: str | None = None
    chain_id: str | None = None
    link_id: str | None = None
    gap: Gap | None = None
    query_text: str = ""
    scorer: str = "default"
    candidates: list[Candidate] = Field(default_factory=list)
    # when fewer than k makers clear the evidence bar: firms that could enter the link from next to it — a supplier
    # integrating forwards, a customer backwards, firms whose products or industry often go with it — ranked apart,
    # each marked 延伸候选 with its reason (never presented as makers of the link)
    expansions: list[Candidate] = Field(default_factory=list)
    # when fewer than k candidates and expansions clear the bar: firms with one strong text signal only, ranked apart,
    # each marked 线索待核实 (never presented as candidates)
    leads: list[Candidate] = Field(default_factory=list)
    excluded_residents: int = 0
    below_evidence_bar: int = 0  # candidates left out because nothing ties them to the need (see scoring.evidence_bar)
    note: str | None = None  # e.g. "仅找到 3 家有依据的候选" when fewer than k clear the bar
    took_ms: float = 0.0
