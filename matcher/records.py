"""Domain records: chains, links, regions, enterprises, gaps and recommendations.

All records are pydantic models so they validate on construction and round-trip as JSON, which is the
contract between the matcher, the store, the service and the evaluation harness.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Stage(str, Enum):
    """Position of a link in its chain."""

    UPSTREAM = "上游"
    MIDSTREAM = "中游"
    DOWNSTREAM = "下游"


class GapType(str, Enum):
    """Kinds of chain gap a region can have."""

    MISSING = "缺链"  # 缺链补链: a link between present links, or a 链主's input/outlet, with no resident
    SHORT = "短链"  # 短链延链: the chain stops early; extend downstream or upstream
    WEAK = "弱链"  # 弱链强链: a link exists but is thin

    @property
    def action(self) -> str:
        """The promotion action that answers this gap (补链 / 延链 / 强链)."""
        return {"缺链": "补链", "短链": "延链", "弱链": "强链"}[self.value]


class RegionLevel(str, Enum):
    PROVINCE = "省"
    PREFECTURE = "地州"
    COUNTY = "县市"
    PARK = "园区"


class Link(BaseModel):
    """One link (环节) of an industry chain."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    stage: Stage
    aliases: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    gbt: tuple[str, ...] = ()
    description: str = ""
    local_supply: bool = False  # bulky or perishable: economic only within a short transport radius of its user
    family: str = ""  # links a 招商 officer treats as one line of business (PE管材 and 双壁波纹管; 燃煤发电 and 热电联产)
    recycles: str = ""  # the primary link whose commodity this link makes from scrap (再生铝 → 电解铝's 铝锭)
    covers: tuple[str, ...] = ()  # an umbrella link's specific links (汽车零部件 → 汽车玻璃, 驱动电机): not a gap beside them

    @property
    def terms(self) -> tuple[str, ...]:
        """Name, aliases and typical products: every surface form a firm may use for this link."""
        return (self.name, *self.aliases, *self.products)


class Edge(BaseModel):
    """`source` supplies `target` with `flow`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    flow: str = ""


class Chain(BaseModel):
    """An industry chain: its links (ids, in the global link namespace) and directed edges."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    cluster: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    link_ids: tuple[str, ...] = ()
    edges: tuple[Edge, ...] = ()
    own_link_ids: tuple[str, ...] = ()  # the links this chain's file defines (link_ids also holds the ones it uses)


class Resident(BaseModel):
    """An enterprise already located in a region, and the links it occupies there."""

    name: str
    enterprise_id: str | None = None
    links: list[str] = Field(default_factory=list)
    chain_master: bool = False
    capacity: str = ""
    size: str | None = None  # 大 / 中 / 小
    note: str = ""
    integrated: list[str] = Field(default_factory=list)  # links its integrated plant covers (自备电厂, PVC 内氯乙烯)


class Need(BaseModel):
    """A need the region states itself (招商需求)."""

    text: str
    chain: str | None = None
    links: list[str] = Field(default_factory=list)
    gap_type: GapType | None = None


class Fact(BaseModel):
    """One authored endowment fact of a region (资源禀赋、要素条件), with its source."""

    model_config = ConfigDict(extra="forbid")  # a mis-indented YAML block must fail, not be read as a fact

    key: str  # e.g. bauxite, coal, open_land, water_ample, wind_resource
    value: bool
    note: str = ""
    source: str = Field(min_length=4)


class ProjectStatus(str, Enum):
    SIGNED = "签约"
    BUILDING = "在建"
    OPERATING = "投产"


class Project(BaseModel):
    """A signed, building or operating project of a region: it fills (在建/投产) or partly fills (签约) its links."""

    name: str
    links: list[str] = Field(min_length=1)
    status: ProjectStatus
    capacity: str = ""
    size: str | None = None  # 大 / 中 / 小, as for residents
    source: str = Field(min_length=4)


class Established(BaseModel):
    """Links a region already has at scale by public statistics or the seeds, with no single firm on file."""

    links: list[str] = Field(min_length=1)
    note: str
    source: str = Field(min_length=4)


class Region(BaseModel):
    """A province, prefecture, county or park with its target chains and residents."""

    id: str
    name: str
    level: RegionLevel
    province: str = "新疆"
    parent: str | None = None
    aliases: list[str] = Field(default_factory=list)
    target_chains: list[str] = Field(default_factory=list)
    residents: list[Resident] = Field(default_factory=list)
    needs: list[Need] = Field(default_factory=list)
    aiding: list[str] = Field(default_factory=list)  # 产业援疆 pairing: aiding provinces / cities
    endowments: list[Fact] = Field(default_factory=list)  # resources and factor conditions; sub-regions inherit
    projects: list[Project] = Field(default_factory=list)
    established: list[Established] = Field(default_factory=list)
    tenant: str | None = None
    description: str = ""


class Product(BaseModel):
    """A product segment with its share of revenue (0–1) where known."""

    name: str
    share: float | None = Field(default=None, ge=0.0, le=1.0)


class LinkMatch(BaseModel):
    """One mapping of an enterprise onto a chain link."""

    link_id: str
    score: float
    method: str  # alias / token / gbt / embedding
    evidence: str = ""
    share: float | None = None


class Enterprise(BaseModel):
    """An enterprise profile, the unit ChainMatch ranks."""

    id: str
    name: str
    normalized_name: str = ""
    credit_code: str | None = None
    aliases: list[str] = Field(default_factory=list)
    province: str | None = None
    city: str | None = None
    county: str | None = None
    gbt_codes: list[str] = Field(default_factory=list)
    sw_industry: str | None = None
    products: list[Product] = Field(default_factory=list)
    scope: str = ""
    registered_capital: float | None = None  # 万元
    employees: int | None = None
    revenue: float | None = None  # 亿元
    stock_code: str | None = None
    parent_group: str | None = None
    tags: list[str] = Field(default_factory=list)
    source: str = ""
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    tenant: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    links: list[LinkMatch] = Field(default_factory=list)

    @property
    def listed(self) -> bool:
        return bool(self.stock_code)

    @property
    def fictional(self) -> bool:
        """An authored example firm (tag ``虚构示例``): never shown as real, left out once real data is loaded."""
        return self.source == "authored:fictional" or "虚构示例" in self.tags

    @property
    def authored(self) -> bool:
        """Part of the embedded demo data (public-fact or fictional), not an imported corpus or CRM record."""
        return self.source.startswith("authored:")


class Gap(BaseModel):
    """A diagnosed gap of one region in one chain, with the evidence that implies it."""

    type: GapType
    chain_id: str
    chain_name: str
    link_id: str
    link_name: str
    stage: Stage
    direction: str | None = None  # upstream / downstream for 短链, None otherwise
    evidence: list[str] = Field(default_factory=list)
    residents: list[str] = Field(default_factory=list)  # residents whose position implies the gap
    edges: list[Edge] = Field(default_factory=list)
    priority: float = 0.0
    priority_parts: dict[str, float] = Field(default_factory=dict)
    chains: list[str] = Field(default_factory=list)  # every diagnosed chain holding the link (the row's chain first)
    feasible: bool = True  # False: fails a hard requirement (不宜引进); shown only on request
    infeasible: list[str] = Field(default_factory=list)  # the hard requirements it fails, with their sources
    delegated_to: str | None = None  # id of the sub-region whose own gap this is (pointer row, shown only on request)
    variant_of: str | None = None  # link id of the same family already present or listed above (left out of the concise view)

    @property
    def action(self) -> str:
        return self.type.action

    @property
    def key(self) -> str:
        return f"{self.chain_id}:{self.link_id}:{self.type.value}"


class Delegation(BaseModel):
    """A gap left to a sub-region: its whole evidence sits there and the sub-region lists it as its own gap."""

    link_id: str
    link_name: str
    chain_id: str
    type: GapType
    priority: float  # the parent's reading of the gap
    region_id: str  # the sub-region that owns the gap (the deepest one that lists it as its own)
    region_name: str
    residents: list[str] = Field(default_factory=list)  # the residents whose position implies the gap


class GapMap(BaseModel):
    """A region's diagnosis for one or more chains."""

    region_id: str
    region_name: str
    chains: list[str]
    present: dict[str, list[str]] = Field(default_factory=dict)  # link id -> resident names
    present_sources: dict[str, list[str]] = Field(default_factory=dict)  # link id -> what made it present
    hidden: int = 0  # gaps flagged 不宜引进 and left out of this view
    trimmed: int = 0  # feasible gaps beyond the concise view's top N per chain (shown with --all / per_chain=0)
    gaps: list[Gap] = Field(default_factory=list)
    delegated: list[Delegation] = Field(default_factory=list)  # gaps that are a sub-region's own, and where they went
