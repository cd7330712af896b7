"""Feasibility of bringing a link into a region: the link's requirements against the region's endowments.

A link's requirements (``matcher/data/feasibility.yaml``) are raw materials, inputs that must be built beside it and
national policy (capacity caps, restricted classes of 产业结构调整指导目录, 环评 sensitivity). A region's endowments
are authored facts with sources (``endowments:`` in the region YAML); a sub-region inherits its parents' facts unless
it states its own. A failed *hard* requirement makes the gap 不宜引进; a failed *soft* one lowers its priority.
An endowment nobody stated never fails a requirement: the data does not hold that fact. A soft resource requirement
the region is stated to meet (electricity-intensive 工业硅 where power is recorded as cheap, bulky products where rail
is recorded) changes nothing in the priority but is stated as support (:attr:`Assessment.supported`).

Endowment keys used by the requirements: bauxite, coal, oil_gas, wind_resource, open_land (natural resources and
land); water_ample (reliable industrial water), wastewater_park (a park with central effluent treatment),
power_price_low (industrial electricity recorded as cheap), renewable_power (wind or solar power to build beside;
captive coal power is not green hydrogen's power), rail_access (a freight railway serves the region);
chemical_park (a recognised 化工园区 hosts hazardous-chemical synthesis); coal_chem_demo_zone and quota_* (policy).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from matcher.knowledge.catalogue import DATA_DIR
from matcher.knowledge.regions import RegionBook
from matcher.records import Fact, Region
from matcher.yamlio import read_yaml

logger = logging.getLogger(__name__)

REQUIREMENTS_FILE = DATA_DIR / "feasibility.yaml"


class Requirement(BaseModel):
    """One requirement of a link on its host region."""

    kind: Literal["resource", "input", "policy"]
    needs: list[str] = Field(default_factory=list)  # endowment keys or link ids; any one satisfies
    hard: bool = True
    reason: str
    source: str = Field(min_length=4)


@dataclass
class Assessment:
    """The requirements a link fails in a region: hard ones (不宜引进) and soft ones (lower priority); and the soft
    resource requirements the region is stated to meet (support, no effect on priority)."""

    hard: list[Requirement] = field(default_factory=list)
    soft: list[Requirement] = field(default_factory=list)
    supported: list[Requirement] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.hard


def load_requirements(path: Path = REQUIREMENTS_FILE) -> dict[str, list[Requirement]]:
    """Link id → its requirements."""
    raw = dict(read_yaml(path) or {})
    groups = raw.pop("_groups", None) or []
    out = {str(lid): [Requirement.model_validate(r) for r in reqs] for lid, reqs in raw.items()}
    for group in groups:  # one requirement shared by many links (化工园区 for hazardous-chemical synthesis)
        req = Requirement.model_validate(group["requirement"])
        for lid in group["links"]:
            out.setdefault(str(lid), []).append(req)
    return out


@lru_cache(maxsize=1)
def default_requirements() -> dict[str, list[Requirement]]:
    return load_requirements()


def endowments(region: Region, book: RegionBook | None = None) -> dict[str, Fact]:
    """The region's endowment facts, each inherited from the nearest enclosing region that states it."""
    chain = [region]
    seen = {region.id}
    while book is not None and chain[-1].parent and chain[-1].parent in book.regions and chain[-1].parent not in seen:
        seen.add(chain[-1].parent)
        chain.append(book.regions[chain[-1].parent])
    facts: dict[str, Fact] = {}
    for r in reversed(chain):  # the nearest region's statement wins
        facts.update({f.key: f for f in r.endowments})
    return facts


def assess(
    link_id: str,
    facts: Mapping[str, Fact],
    present: Collection[str],
    requirements: Mapping[str, list[Requirement]] | None = None,
) -> Assessment:
    """Which requirements of ``link_id`` the region fails, given its endowment facts and the links present in it."""
    reqs = default_requirements() if requirements is None else requirements
    out = Assessment()
    stated = {k: f.value for k, f in facts.items()}
    for req in reqs.get(link_id, ()):
        if req.kind == "resource":
            failed = bool(req.needs) and all(stated.get(k) is False for k in req.needs)
            if not req.hard and any(stated.get(k) is True for k in req.needs):
                out.supported.append(req)
        else:  # input / policy: one of the needs must be there (a present link or a stated endowment)
            failed = not any(k in present or stated.get(k) is True for k in req.needs)
        if failed:
            (out.hard if req.hard else out.soft).append(req)
    return out


def describe(req: Requirement, facts: Mapping[str, Fact] | None = None, names: Mapping[str, str] | None = None) -> str:
    """A failed requirement as one line for a 招商 officer: the reason, the region's fact and their sources.

    A resource requirement quotes the region's stated fact; an input or policy requirement says what the region's
    data does not hold (``names`` gives the link names), never that it does not exist.
    """
    line = f"{req.reason}（依据：{req.source}）"
    if req.kind == "resource":
        for k in req.needs:
            fact = (facts or {}).get(k)
            if fact is not None and fact.note:
                line += f"；本地区：{fact.note}（来源：{fact.source}）"
    elif req.needs:
        missing = "、".join((names or {}).get(k, k) for k in req.needs if not k.startswith(("quota_", "oil_gas_", "coal_chem_")))
        if missing:
            line += f"；本地区（含下辖）未录入{missing}"
    return line
