"""Feasibility (issue #16 item 1): link requirements against region endowments; 不宜引进 gaps hidden by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.knowledge.catalogue import default_catalogue, load_catalogue
from matcher.knowledge.feasibility import Requirement, assess, endowments, load_requirements, REQUIREMENTS_FILE
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.regions import RegionBook, default_regions
from matcher.records import Fact, Region, Resident

CHAIN = """
id: toy
name: 玩具链
links:
  - {id: ore, name: 矿石, stage: 上游}
  - {id: metal, name: 金属, stage: 中游}
  - {id: part, name: 部件, stage: 下游}
edges:
  - {from: ore, to: metal}
  - {from: metal, to: part}
"""
REQS = {
    "ore": [Requirement(kind="resource", needs=["ore_deposit"], reason="须有矿", source="某矿产规划")],
    "part": [Requirement(kind="resource", needs=["water_ample"], hard=False, reason="耗水大", source="某行业规范条件")],
}


@pytest.fixture()
def demo():
    return default_catalogue(), default_regions()


def _all(region_id: str, demo) -> dict:
    cat, book = demo
    return {g.link_id: g for g in diagnose(book.get(region_id), cat, book=book, include_infeasible=True).gaps}


@pytest.mark.parametrize("region_id", ["manas", "fukang"])
def test_alumina_without_bauxite_is_flagged_and_left_out_of_the_default_view(region_id, demo):
    cat, book = demo
    shown = {g.link_id for g in diagnose(book.get(region_id), cat, book=book).gaps}
    alumina = _all(region_id, demo)["alumina"]
    assert "alumina" not in shown
    assert not alumina.feasible and "铝土矿" in alumina.infeasible[0] and "依据" in alumina.infeasible[0]
    assert "chnria.com" in alumina.infeasible[0]  # the region's fact carries its source


def test_natural_gas_methanol_in_karamay_is_restricted_by_policy(demo):
    methanol = _all("karamay", demo)["methanol"]
    assert not methanol.feasible
    assert "产业结构调整指导目录" in methanol.infeasible[0] and "天然气" in methanol.infeasible[0]


def test_coal_based_methanol_stays_feasible_where_coal_is_mined(demo):
    assert _all("zhundong", demo)["methanol"].feasible


def test_grid_wind_farms_and_silicon_steel_are_not_gaps_of_the_changji_high_tech_park(demo):
    cat, book = demo
    gm = diagnose(book.get("changji_hitech"), cat, book=book)
    shown = {g.link_id for g in gm.gaps}
    assert not shown & {"grid_construction", "grid_power_supply", "wind_farm", "silicon_steel"}
    assert gm.hidden >= 4
    flagged = _all("changji_hitech", demo)
    assert not flagged["wind_farm"].feasible and "土地" in flagged["wind_farm"].infeasible[0]


def test_wind_farms_stay_a_gap_where_the_seed_reports_wind_resources(demo):
    """木垒's wind resource keeps 风电场 feasible; the region file now records its running wind farms (so in the demo
    data it is present, not a gap): without that record it is a feasible gap again."""
    cat, book = demo
    mulei = book.get("mulei")
    assert "wind_farm" not in _all("mulei", demo)
    bare = mulei.model_copy(update={"established": [e for e in mulei.established if "wind_farm" not in e.links]})
    gaps = {g.link_id: g for g in diagnose(bare, cat, book=book, include_infeasible=True).gaps}
    assert gaps["wind_farm"].feasible


def test_infeasible_gaps_come_after_the_feasible_ones_when_asked_for(demo):
    cat, book = demo
    gaps = diagnose(book.get("manas"), cat, book=book, include_infeasible=True).gaps
    flags = [g.feasible for g in gaps]
    assert flags == sorted(flags, reverse=True) and not flags[-1]


def test_an_endowment_nobody_stated_never_fails_a_requirement():
    assert assess("ore", {}, set(), REQS).feasible
    no_ore = {"ore_deposit": Fact(key="ore_deposit", value=False, source="某矿产规划")}
    assert not assess("ore", no_ore, set(), REQS).feasible


def test_a_sub_region_inherits_its_parents_facts_unless_it_states_its_own():
    dry = Fact(key="water_ample", value=False, source="某水利公报")
    wet = Fact(key="water_ample", value=True, source="某水利公报")
    prov = Region(id="p", name="某省", level="省", endowments=[dry])
    a = Region(id="a", name="甲县", level="县市", parent="p")
    b = Region(id="b", name="乙县", level="县市", parent="p", endowments=[wet])
    book = RegionBook([prov, a, b])
    assert endowments(a, book)["water_ample"].value is False
    assert endowments(b, book)["water_ample"].value is True


def test_a_soft_miss_lowers_priority_and_says_why(tmp_path: Path, monkeypatch):
    d = tmp_path / "chains"
    d.mkdir()
    (d / "toy.yaml").write_text(CHAIN, encoding="utf-8")
    cat = load_catalogue(d)
    monkeypatch.setattr("matcher.knowledge.feasibility.default_requirements", lambda: REQS)
    dry = Fact(key="water_ample", value=False, source="某水利公报")
    master = Resident(name="金属链主", links=["metal"], chain_master=True)
    wet_r = Region(id="w", name="甲县", level="县市", target_chains=["toy"], residents=[master])
    dry_r = wet_r.model_copy(update={"id": "d", "endowments": [dry]})
    wet = {g.link_id: g for g in diagnose(wet_r, cat).gaps}["part"]
    dry_gap = {g.link_id: g for g in diagnose(dry_r, cat).gaps}["part"]
    assert dry_gap.feasible and dry_gap.priority < wet.priority
    assert dry_gap.priority_parts["feasibility"] < 0 and any("耗水大" in e for e in dry_gap.evidence)


def test_every_requirement_names_a_catalogue_link_and_a_source():
    cat = default_catalogue()
    reqs = load_requirements(REQUIREMENTS_FILE)
    assert reqs and set(reqs) <= set(cat.links)
    for items in reqs.values():
        for r in items:
            assert r.source.strip() and r.reason.strip()
            if r.kind == "input":  # inputs are links built alongside; policy needs are quotas, zones or rights
                assert r.needs and all(k in cat.links for k in r.needs)


def test_every_demo_endowment_and_project_has_a_source(demo):
    _, book = demo
    for region in book:
        for item in (*region.endowments, *region.projects):
            assert len(item.source) >= 4, (region.id, item)


def test_a_chain_extension_only_reachable_through_an_infeasible_link_is_infeasible_too(demo):
    """吉木萨尔: 沥青、润滑油 would need a refinery, and a new small refinery is restricted (限制类)."""
    gaps = _all("jimsar", demo)
    assert not gaps["refining"].feasible
    for lid in ("asphalt", "lubricants"):
        assert not gaps[lid].feasible and "原油加工" in gaps[lid].infeasible[-1]
    assert _all("kuqa", demo)["lubricants"].feasible  # beside 塔河炼化 the same extension stands
