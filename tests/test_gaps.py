"""Gap diagnosis on small hand-built chains whose answers are derived by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalogue_support import catalogue_from_yaml

from matcher.errors import UnknownChainError
from matcher.knowledge.gaps import PRIORITY_WEIGHTS, diagnose
from matcher.knowledge.regions import RegionBook
from matcher.records import GapType, Need, Region, Resident

# a → b → c → d, plus s → b (a second input of b)
CHAIN = """
id: toy
name: 玩具链
cluster: 测试
links:
  - {id: a, name: 甲原料, stage: 上游, gbt: ["3216"]}
  - {id: s, name: 辅料, stage: 上游}
  - {id: b, name: 乙中间品, stage: 中游}
  - {id: c, name: 丙制品, stage: 中游}
  - {id: d, name: 丁终端, stage: 下游}
edges:
  - {from: a, to: b, flow: 甲}
  - {from: s, to: b, flow: 辅料}
  - {from: b, to: c, flow: 乙}
  - {from: c, to: d, flow: 丙}
"""


@pytest.fixture()
def catalogue(tmp_path: Path):
    return catalogue_from_yaml(tmp_path, toy=CHAIN)


def region(*residents: Resident, needs: list[Need] | None = None) -> Region:
    return Region(id="r", name="测试县", level="县市", target_chains=["toy"], residents=list(residents), needs=needs or [])


def by_link(gm):
    return {g.link_id: g for g in gm.gaps}


def test_link_between_present_links_is_missing(catalogue):
    gm = diagnose(region(Resident(name="甲厂", links=["a"]), Resident(name="丙厂", links=["c"])), catalogue)
    gaps = by_link(gm)
    assert gaps["b"].type == GapType.MISSING  # between a and c
    assert gaps["d"].type == GapType.SHORT and gaps["d"].direction == "downstream"
    assert "a" in gm.present and "c" in gm.present


def test_chain_stopping_early_gives_downstream_short_gaps_with_chain_master_evidence(catalogue):
    master = Resident(name="乙链主", links=["b"], chain_master=True, capacity="10万吨")
    gaps = by_link(diagnose(region(master), catalogue))
    # inputs a and s of the 链主's link are missing (the 链主 needs them locally)
    assert gaps["a"].type == GapType.MISSING and gaps["s"].type == GapType.MISSING
    assert gaps["a"].residents == ["乙链主"]
    # c is the direct outlet of the 链主: short chain, downstream, evidence names the 链主 and the capacity
    assert gaps["c"].type == GapType.SHORT and gaps["c"].direction == "downstream"
    assert any("乙链主" in e and "10万吨" in e for e in gaps["c"].evidence)
    assert gaps["c"].priority_parts["chain_master"] == 1.0
    # d is two steps beyond: still short, lower priority than c
    assert gaps["d"].type == GapType.SHORT and gaps["d"].priority < gaps["c"].priority


def test_priority_is_the_weighted_sum_of_its_parts(catalogue):
    gm = diagnose(region(Resident(name="乙链主", links=["b"], chain_master=True)), catalogue)
    for g in gm.gaps:
        assert g.priority == pytest.approx(sum(PRIORITY_WEIGHTS[k] * v for k, v in g.priority_parts.items()), abs=1e-3)
    c = by_link(gm)["c"]
    # adjacency 1, chain_master 1, stated_need 0, downstream value 1 → 0.35 + 0.25 + 0.15
    assert c.priority == pytest.approx(0.75)


def test_single_small_resident_is_a_weak_link(catalogue):
    gaps = by_link(diagnose(region(Resident(name="小乙厂", links=["b"], size="小")), catalogue))
    assert gaps["b"].type == GapType.WEAK
    assert "小乙厂" in gaps["b"].residents


def test_chain_master_link_is_not_weak(catalogue):
    gaps = by_link(diagnose(region(Resident(name="乙链主", links=["b"], chain_master=True, size="大")), catalogue))
    assert "b" not in gaps


def test_stated_need_raises_priority(catalogue):
    base = by_link(diagnose(region(Resident(name="甲厂", links=["a"])), catalogue))
    asked = by_link(
        diagnose(region(Resident(name="甲厂", links=["a"]), needs=[Need(text="引进丁终端", links=["d"])]), catalogue)
    )
    assert asked["d"].priority > base["d"].priority
    assert any("引进丁终端" in e for e in asked["d"].evidence)


def test_region_without_residents_lacks_the_whole_chain(catalogue):
    gm = diagnose(region(), catalogue)
    assert {g.link_id for g in gm.gaps} == {"a", "s", "b", "c", "d"}
    assert all(g.type == GapType.MISSING for g in gm.gaps)


def test_prefecture_counts_residents_of_its_counties(catalogue):
    pref = Region(id="p", name="某州", level="地州", target_chains=["toy"])
    county = Region(id="c1", name="某县", level="县市", parent="p", residents=[Resident(name="乙厂", links=["b"], chain_master=True)])
    book = RegionBook([pref, county])
    gm = diagnose(pref, catalogue, book=book)
    assert "b" in gm.present and gm.present["b"] == ["乙厂(某县)"]


def test_unknown_chain_is_a_clear_error(catalogue):
    with pytest.raises(UnknownChainError, match="unknown chain '不存在'"):
        diagnose(region(), catalogue, chain="不存在")


def test_gaps_are_sorted_by_priority(catalogue):
    gm = diagnose(region(Resident(name="乙链主", links=["b"], chain_master=True)), catalogue)
    pr = [g.priority for g in gm.gaps]
    assert pr == sorted(pr, reverse=True)


def test_one_row_per_link_in_every_demo_region_with_all_its_chains_listed():
    """Issue 16 item 3: a link is one gap per region whatever umbrella chains contain it."""
    from matcher.knowledge.catalogue import default_catalogue
    from matcher.knowledge.regions import default_regions

    cat, book = default_catalogue(), default_regions()
    shared = 0
    for region in book.regions.values():
        gm = diagnose(region, cat, book=book)
        links = [g.link_id for g in gm.gaps]
        assert len(links) == len(set(links)), region.id
        for g in gm.gaps:
            assert g.chains[0] == g.chain_id and all(g.link_id in cat.chains[c].link_ids for c in g.chains)
            shared += len(g.chains) > 1
    assert shared > 0  # umbrella chains (能源装备 ⊃ 风电) really do share links


def test_mulei_wind_towers_rank_first_among_its_wind_gaps():
    """Issue 16: 风电塔筒 is the component most worth making locally (a tower section is hauled by road)."""
    from matcher.knowledge.catalogue import default_catalogue
    from matcher.knowledge.regions import default_regions

    cat, book = default_catalogue(), default_regions()
    wind = [g for g in diagnose(book.get("mulei"), cat, book=book).gaps if "wind_power" in g.chains]
    names = [g.link_name for g in wind[:5]]
    assert "风电塔筒" in names, names
    tower = next(g for g in wind if g.link_name == "风电塔筒")
    assert any("运输半径" in e for e in tower.evidence)


def test_a_gap_row_carries_the_stage_of_its_own_chain():
    """Issue 16: no more '[上游] 高纯铝 向下游延链' in the aluminium chain."""
    from matcher.knowledge.catalogue import default_catalogue
    from matcher.knowledge.regions import default_regions

    cat, book = default_catalogue(), default_regions()
    hpa = next(g for g in diagnose(book.get("manas"), cat, book=book).gaps if g.link_id == "high_purity_aluminium")
    assert hpa.chain_id == "aluminium" and hpa.direction == "downstream" and hpa.stage.value != "上游"
