"""A county's gap is not repeated at prefecture and province level unless it is theirs (issue #16 item 3).

Toy book: 省 ⊃ 州 ⊃ {甲县, 乙县}, one chain a → b → c → d. Answers derived by hand from the rule: a
parent's gap whose whole evidence sits in one sub-region that lists the link among its own gaps is left
to that sub-region.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from catalogue_support import catalogue_from_yaml

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.gap_view import format_gap_map
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.regions import RegionBook, default_regions
from matcher.records import Need, Region, Resident

CHAIN = """
id: toy
name: 玩具链
cluster: 测试
links:
  - {id: a, name: 甲原料, stage: 上游}
  - {id: b, name: 乙中间品, stage: 中游}
  - {id: c, name: 丙制品, stage: 中游}
  - {id: d, name: 丁终端, stage: 下游}
edges:
  - {from: a, to: b, flow: 甲}
  - {from: b, to: c, flow: 乙}
  - {from: c, to: d, flow: 丙}
"""
OTHER = """
id: other
name: 另一链
cluster: 测试
links:
  - {id: x, name: 戊原料, stage: 上游}
  - {id: y, name: 己制品, stage: 下游}
edges:
  - {from: x, to: y, flow: 戊}
"""


@pytest.fixture()
def catalogue(tmp_path: Path):
    return catalogue_from_yaml(tmp_path, toy=CHAIN, other=OTHER)


def book(
    county_a: list[Resident], county_b: list[Resident] | None = None, province: list[Resident] | None = None,
    prefecture_needs: list[Need] | None = None, county_a_chains: list[str] | None = None,
) -> RegionBook:
    chains_a = ["toy"] if county_a_chains is None else county_a_chains
    return RegionBook([
        Region(id="p", name="测试省", level="省", target_chains=["toy"], residents=province or []),
        Region(id="q", name="测试州", level="地州", parent="p", target_chains=["toy"],
               needs=prefecture_needs or []),
        Region(id="ca", name="甲县", level="县市", parent="q", target_chains=chains_a, residents=county_a),
        Region(id="cb", name="乙县", level="县市", parent="q", target_chains=["toy"],
               residents=county_b or []),
    ])  # fmt: skip


MASTER_B = Resident(name="乙链主", links=["b"], chain_master=True)


def ids(gaps) -> list[str]:
    return [g.link_id for g in gaps]


def test_gap_resting_on_one_county_is_left_to_it_at_every_level_above(catalogue):
    bk = book([MASTER_B])
    county = diagnose(bk.regions["ca"], catalogue, book=bk)
    assert {"a", "c"} <= set(ids(county.gaps)) and county.delegated == []
    for parent in ("q", "p"):
        gm = diagnose(bk.regions[parent], catalogue, book=bk)
        assert "c" not in ids(gm.gaps) and "a" not in ids(gm.gaps)
        moved = {d.link_id: d for d in gm.delegated}
        assert moved["c"].region_id == "ca" and moved["c"].region_name == "甲县"  # deepest owner
        assert moved["c"].residents == ["乙链主"]


def test_evidence_in_two_counties_makes_the_prefecture_gap_its_own(catalogue):
    bk = book([MASTER_B], [Resident(name="乙二厂", links=["b"], chain_master=True)])
    pref = diagnose(bk.regions["q"], catalogue, book=bk)
    assert "c" in ids(pref.gaps) and all(d.link_id != "c" for d in pref.delegated)
    prov = diagnose(bk.regions["p"], catalogue, book=bk)
    assert {d.link_id: d.region_id for d in prov.delegated}["c"] == "q"  # both counties sit in the one 州


def test_parents_own_resident_or_stated_need_keeps_the_gap(catalogue):
    bk = book([MASTER_B], province=[Resident(name="省属丁厂", links=["d"])])
    # 丙 lies between 乙 (县) and 丁 (省): both are evidence
    assert "c" in ids(diagnose(bk.regions["p"], catalogue, book=bk).gaps)
    need = Need(text="州级招商：丙制品", chain="toy", links=["c"], gap_type="短链")
    bk = book([MASTER_B], prefecture_needs=[need])
    pref = diagnose(bk.regions["q"], catalogue, book=bk)
    assert "c" in ids(pref.gaps) and "c" not in {d.link_id for d in pref.delegated}


def test_county_not_listing_the_link_keeps_it_at_the_parent(catalogue):
    bk = book([MASTER_B], county_a_chains=["other"])  # 甲县 targets another chain: 丙 is not among its gaps
    assert "c" not in ids(diagnose(bk.regions["ca"], catalogue, book=bk).gaps)
    pref = diagnose(bk.regions["q"], catalogue, book=bk)
    assert "c" in ids(pref.gaps) and pref.delegated == []


def test_pointer_rows_on_request_and_one_row_per_link(catalogue):
    bk = book([MASTER_B])
    default = diagnose(bk.regions["q"], catalogue, book=bk)
    full = diagnose(bk.regions["q"], catalogue, book=bk, include_delegated=True)
    own = [g for g in full.gaps if g.delegated_to is None]
    pointers = [g for g in full.gaps if g.delegated_to is not None]
    assert ids(own) == ids(default.gaps)
    assert ids(pointers) == [d.link_id for d in default.delegated]
    assert full.gaps == own + pointers  # the region's own gaps first
    assert len(set(ids(full.gaps))) == len(full.gaps)
    assert all(g.delegated_to == "ca" for g in pointers)
    assert all(g.evidence[0].endswith("见 甲县") for g in pointers)
    text = format_gap_map(full, catalogue)
    assert "↪ 见 甲县" in text
    assert "属下辖地区自身（甲县" in format_gap_map(default, catalogue)


def test_located_function_is_asked_for_the_sub_regions(catalogue):
    bk = book([MASTER_B])
    asked: list[str] = []

    def located(r: Region) -> dict[str, list[str]]:
        asked.append(r.id)
        return {}

    diagnose(bk.regions["p"], catalogue, book=bk, located=located)
    assert asked[0] == "p" and {"q", "ca"} <= set(asked)


# ---------------------------------------------------------------------------------------------- the demo data


@pytest.fixture(scope="module")
def demo():
    return default_catalogue(), default_regions()


def test_province_leaves_the_aluminium_gaps_of_changji_to_it(demo):
    cat, bk = demo
    prov = diagnose(bk.get("xinjiang"), cat, book=bk)
    moved = {d.link_id: d.region_id for d in prov.delegated}
    # 嘉润 (玛纳斯) and 东方希望 (准东) are both in 昌吉州
    aluminium = ("aluminium_sheet_strip", "aluminium_alloy_ingot", "electrical_aluminium_rod",
                 "auto_lightweight")
    for lid in aluminium:
        assert lid not in ids(prov.gaps) and moved[lid] == "changji"
    # 乌石化 (省), 克石化/独山子 (克拉玛依), 塔河 (库车): the province's own
    assert "needle_coke" in ids(prov.gaps)[:3]
    assert moved["carbon_fibre"] == "mulei"  # 东方风电 only: 木垒's gap, named from the province too
    changji = diagnose(bk.get("changji"), cat, book=bk)
    assert "aluminium_sheet_strip" in ids(changji.gaps)  # evidence in 玛纳斯 and 准东: 昌吉州's own
    assert "wind_tower" in ids(changji.gaps)[:3]  # 东方风电 is in 木垒, but 昌吉州 names 塔筒 in its own need
    assert {d.link_id: d.region_id for d in changji.delegated}["brandy"] == "manas"


def test_no_link_is_both_own_and_delegated_in_any_demo_region(demo):
    cat, bk = demo
    for r in bk:
        gm = diagnose(r, cat, book=bk)
        own, moved = set(ids(gm.gaps)), [d.link_id for d in gm.delegated]
        assert not own & set(moved) and len(moved) == len(set(moved)), r.id
        for d in gm.delegated:  # the owner really lists it as its own gap
            assert d.link_id in ids(diagnose(bk.regions[d.region_id], cat, book=bk).gaps), (r.id, d.link_id)
