"""Gap rows a 招商 officer reads as one project (issue #16, independent review of session 8).

- links of one catalogue ``family`` (PE管材 and its 双壁波纹管 / 钢带 / 钢丝网骨架 variants; 燃煤发电 and 热电联产) are
  one row in the concise view: the first names the others, or a present member absorbs them;
- a link an umbrella chain merely uses is its gap only next to a present link (风力发电机组 is no gap of 昌吉高新区's
  能源装备 chain);
- a stated 强链 need on a link the region already has on public record is a 弱链 row that says who holds it;
- hazardous-chemical synthesis is 不宜引进 where the region is recorded without a recognised 化工园区.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.feasibility import load_requirements
from matcher.knowledge.gap_view import concise
from matcher.knowledge.gaps import diagnose
from matcher.knowledge.regions import default_regions
from matcher.records import GapType

PE_FAMILY = {"pe_pipe", "double_wall_corrugated_pipe", "steel_belt_corrugated_pipe", "steel_wire_skeleton_pipe"}


@pytest.fixture(scope="module")
def demo():
    return default_catalogue(), default_regions()


def _gaps(demo, region: str, **kw):
    cat, book = demo
    return diagnose(book.get(region), cat, book=book, **kw)


def test_pe_pipe_variants_fold_into_one_row_that_names_them(demo):
    full = _gaps(demo, "karamay")
    rows = {g.link_id: g for g in full.gaps if g.link_id in PE_FAMILY}
    assert set(rows) == PE_FAMILY  # the full list keeps every variant, marked
    head = rows["pe_pipe"]
    assert head.variant_of is None
    assert {g.variant_of for lid, g in rows.items() if lid != "pe_pipe"} == {"pe_pipe"}
    assert any(e.startswith("同类品种") and "双壁波纹管" in e for e in head.evidence)
    shown = [g.link_id for g in concise(full).gaps]
    assert [lid for lid in shown if lid in PE_FAMILY] == ["pe_pipe"]
    assert concise(full).trimmed >= 3


def test_a_present_family_member_absorbs_the_gap(demo):
    gm = _gaps(demo, "zhundong")
    chp = next(g for g in gm.gaps if g.link_id == "cogeneration")
    assert chp.variant_of == "coal_power_generation"
    assert chp.evidence[0].startswith("同类环节本地区已有：燃煤发电")
    assert "cogeneration" not in {g.link_id for g in concise(gm).gaps}


def test_a_used_link_far_from_present_links_is_no_gap_of_the_umbrella_chain(demo):
    links = {g.link_id for g in _gaps(demo, "changji_hitech").gaps}
    assert "wind_turbine" not in links and "coal_power_generation" not in links
    assert "box_transformer" in links  # used too, but next to 特变电工's transformers


def test_stated_strengthening_of_an_established_link_is_a_weak_row_naming_its_holder(demo):
    gm = _gaps(demo, "aksu")
    walnut = next(g for g in gm.gaps if g.link_id == "walnut_processing")
    assert walnut.type == GapType.WEAK
    assert walnut.evidence[0].startswith("地区提出强链需求")
    assert any(e.startswith("本地区已有：") and "涵萃" in e for e in walnut.evidence)
    assert "walnut_processing" not in {g.link_id for g in gm.gaps if g.type != GapType.WEAK}


def test_hazardous_synthesis_needs_a_chemical_park(demo):
    gm = _gaps(demo, "mulei", include_infeasible=True)
    epoxy = next(g for g in gm.gaps if g.link_id == "epoxy_resin")
    assert not epoxy.feasible
    assert "化工园区" in epoxy.infeasible[0] and "工信部联原〔2021〕220号" in epoxy.infeasible[0]
    assert "木垒" in epoxy.infeasible[0]  # the region's own recorded fact, with its source
    assert "epoxy_resin" not in {g.link_id for g in _gaps(demo, "mulei").gaps}
    # a region with no statement about chemical parks is not judged on them
    kuqa = _gaps(demo, "kuqa", include_infeasible=True)
    assert all("化工园区" not in " ".join(g.infeasible) for g in kuqa.gaps)


def test_shared_requirements_are_added_to_each_listed_link(tmp_path: Path):
    path = tmp_path / "req.yaml"
    path.write_text(
        "alumina:\n  - {kind: resource, needs: [bauxite], reason: 铝土矿, source: GB/T test}\n"
        "_groups:\n  - links: [alumina, methanol]\n"
        "    requirement: {kind: resource, needs: [chemical_park], reason: 化工园区, source: 工信部联原〔2021〕220号}\n",
        encoding="utf-8",
    )
    reqs = load_requirements(path)
    assert [r.needs for r in reqs["alumina"]] == [["bauxite"], ["chemical_park"]]
    assert [r.needs for r in reqs["methanol"]] == [["chemical_park"]]
    assert "_groups" not in reqs


def test_an_umbrella_link_is_no_row_of_its_own_beside_the_parts_it_covers(demo):
    """Independent review s9: 昌吉高新区 listed 汽车零部件 beside 汽车玻璃 and 驱动电机, its own sub-classes."""
    cat, _ = demo
    assert {"auto_glass", "drive_motor"} <= set(cat.links["auto_parts"].covers)
    full = _gaps(demo, "changji_hitech")
    rows = {g.link_id: g for g in full.gaps}
    umbrella = rows["auto_parts"]  # the whole chain is absent there: every part is a row, the umbrella folds
    assert umbrella.variant_of in cat.links["auto_parts"].covers
    assert umbrella.evidence[0].startswith("上位类")
    assert "auto_parts" not in {g.link_id for g in concise(full, per_chain=100).gaps}


def test_oil_and_meal_of_one_crushing_plant_are_one_row(demo):
    """Independent review s9: 呼图壁's 棉籽粕 and 食用植物油 are the products of one 棉籽 crushing plant."""
    full = _gaps(demo, "hutubi")
    rows = {g.link_id: g for g in full.gaps if g.link_id in ("cottonseed_meal", "edible_oil")}
    assert len(rows) == 2 and sum(g.variant_of is None for g in rows.values()) == 1


def test_a_captive_plant_seeds_no_upstream_equipment_gap(demo):
    """库车's green-hydrogen project built its own 储氢球罐 and 输氢管线 (integrated): no 氢气压缩机 or 储氢瓶 gap is
    read upstream of that pipeline, and no 烧碱 is read as a hydrogen feedstock."""
    top = [g.link_id for g in _gaps(demo, "kuqa").gaps[:10]]
    assert not {"hydrogen_compressor", "hydrogen_storage_tank", "caustic_soda"} & set(top)
    cat, _ = demo
    assert not any(e.source == "green_hydrogen" and e.target == "hydrogen_compressor" for e in cat.customers("green_hydrogen", "hydrogen"))


def test_a_covers_entry_must_name_another_link(tmp_path: Path):
    from matcher.errors import CatalogueError
    from matcher.knowledge.catalogue import load_catalogue

    (tmp_path / "c.yaml").write_text(
        "id: c\nname: 测试链\nlinks:\n"
        "  - {id: a, name: 甲, stage: 上游, covers: [zz]}\n  - {id: b, name: 乙, stage: 下游}\n"
        "edges:\n  - {from: a, to: b}\n",
        encoding="utf-8",
    )
    with pytest.raises(CatalogueError, match="covers: 'zz'"):
        load_catalogue(tmp_path)
