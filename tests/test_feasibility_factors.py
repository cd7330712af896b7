"""Endowments beyond resources (issue #16 item 2): electricity price, water and rail against links'
energy, water and transport needs. A recorded miss lowers a gap with the reason; a recorded match is
stated as support and changes nothing; an unrecorded factor is neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalogue_support import catalogue_from_yaml
from pydantic import ValidationError

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.feasibility import REQUIREMENTS_FILE, Requirement, assess, load_requirements
from matcher.knowledge.gaps import SUPPORT, diagnose
from matcher.knowledge.regions import default_regions
from matcher.records import Fact, Region, Resident

CHAIN = """
id: toy
name: 玩具链
links:
  - {id: metal, name: 金属, stage: 上游}
  - {id: smelt, name: 电炉冶炼, stage: 中游}
edges:
  - {from: metal, to: smelt}
"""
POWER = Requirement(
    kind="resource", needs=["power_price_low"], hard=False, reason="电炉耗电大", source="某能耗限额标准"
)
REQS = {"smelt": [POWER]}
FACTORS = {"power_price_low", "water_ample", "rail_access", "open_land", "wastewater_park"}


def _fact(key: str, value: bool) -> dict[str, Fact]:
    return {key: Fact(key=key, value=value, note="某地情况", source="某公开资料")}


def test_a_recorded_factor_is_support_a_recorded_miss_is_soft_and_unrecorded_is_neither():
    cheap = assess("smelt", _fact("power_price_low", True), set(), REQS)
    dear = assess("smelt", _fact("power_price_low", False), set(), REQS)
    unknown = assess("smelt", {}, set(), REQS)
    assert cheap.supported == [POWER] and not cheap.soft and cheap.feasible
    assert dear.soft == [POWER] and not dear.supported and dear.feasible
    assert not unknown.soft and not unknown.supported


@pytest.fixture()
def toy(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("matcher.knowledge.feasibility.default_requirements", lambda: REQS)
    return catalogue_from_yaml(tmp_path, toy=CHAIN)


def test_support_is_stated_but_raises_nothing(toy):
    base = Region(id="r", name="甲县", level="县市", target_chains=["toy"],
                  residents=[Resident(name="金属链主", links=["metal"], chain_master=True)])  # fmt: skip
    plain = diagnose(base, toy).gaps[0]
    def with_power(low: bool):
        facts = list(_fact("power_price_low", low).values())
        return diagnose(base.model_copy(update={"endowments": facts}), toy).gaps[0]

    cheap, dear = with_power(True), with_power(False)
    assert cheap.priority == plain.priority and cheap.priority_parts == plain.priority_parts
    support = [e for e in cheap.evidence if e.startswith(SUPPORT)]
    assert support == [f"{SUPPORT}电炉耗电大（依据：某能耗限额标准）；本地区：某地情况（来源：某公开资料）"]
    assert dear.priority < plain.priority and dear.priority_parts["feasibility"] == -0.5
    assert any(e.startswith("可行性不足：电炉耗电大") and "某地情况" in e for e in dear.evidence)


def test_energy_water_and_bulk_links_carry_soft_factor_requirements_with_sources():
    reqs = load_requirements(REQUIREMENTS_FILE)

    def needs(link: str) -> set[str]:
        return {k for r in reqs[link] if r.kind == "resource" and not r.hard for k in r.needs}

    for link in ("electrolytic_aluminium", "polysilicon", "industrial_silicon", "calcium_carbide"):
        assert "power_price_low" in needs(link), link
    assert "power_price_low" in needs("caustic_soda")
    for link in ("dyeing_finishing", "viscose_staple", "coal_to_olefins"):
        assert "water_ample" in needs(link), link
    for link in ("industrial_silicon", "calcium_carbide", "pvc_resin", "coal_washing", "aluminium_rod"):
        assert "rail_access" in needs(link), link
    assert all(r.source.strip() for items in reqs.values() for r in items)


@pytest.fixture(scope="module")
def demo():
    return default_catalogue(), default_regions()


def test_demo_factor_facts_are_sourced_and_only_where_a_source_says_so(demo):
    _, book = demo
    stated = {(r.id, f.key): f for r in book for f in r.endowments}
    for (rid, key), fact in stated.items():
        assert len(fact.source) >= 4 and fact.note, (rid, key)
    assert stated[("changji", "power_price_low")].value is True  # captive coal power: 准东, 玛纳斯 (昌吉州)
    assert ("xinjiang", "power_price_low") not in stated and ("kuqa", "power_price_low") not in stated  # 南疆: no source
    assert stated[("gongliu", "rail_access")].value is False  # 伊阿铁路 still being built
    assert stated[("zhundong", "rail_access")].value is True and stated[("kuqa", "rail_access")].value is True
    assert ("mulei", "rail_access") not in stated and ("hutubi", "rail_access") not in stated  # no source
    resources = {"bauxite", "coal", "oil_gas", "wind_resource", "renewable_power", "coal_chem_demo_zone", "chemical_park"}  # chemical_park: a site condition
    assert {k for _, k in stated} - resources <= FACTORS


def test_zhundong_cheap_power_supports_silicon_and_scarce_water_lowers_coal_chemicals(demo):
    cat, book = demo
    gaps = {g.link_id: g for g in diagnose(book.get("zhundong"), cat, book=book).gaps}
    silicon = gaps["industrial_silicon"]
    assert "feasibility" not in silicon.priority_parts
    assert any(e.startswith(SUPPORT) and "工业电价低" in e and "自备" in e for e in silicon.evidence)
    assert any(e.startswith(SUPPORT) and "铁路" in e and "乌将铁路" in e for e in silicon.evidence)
    olefins = gaps["coal_to_olefins"]
    assert olefins.priority_parts["feasibility"] < 0
    assert any(e.startswith("可行性不足") and "调水" in e for e in olefins.evidence)


def test_a_fact_with_unknown_fields_is_rejected():
    with pytest.raises(ValidationError):
        Fact.model_validate({"key": "rail_access", "value": True, "source": "某公开资料", "links": ["x"]})
