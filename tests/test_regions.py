"""The embedded demo regions (matcher/data/regions), their validation, and the 产业援疆 pairing look-up."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
import yaml

from matcher.errors import RegionFileError
from matcher.knowledge.aiding import aiding_for, default_aiding_table, load_aiding, parse_aiding
from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.regions import RegionBook, load_regions, parse_regions
from matcher.records import GapType, Region, RegionLevel

AIDING_PROVINCES = {
    "北京市", "天津市", "河北省", "山西省", "辽宁省", "吉林省", "黑龙江省", "上海市", "江苏省", "浙江省",
    "安徽省", "福建省", "江西省", "山东省", "河南省", "湖北省", "湖南省", "广东省", "深圳市",
}
PREFECTURES = {
    "乌鲁木齐市", "克拉玛依市", "吐鲁番市", "哈密市", "昌吉回族自治州", "博尔塔拉蒙古自治州", "巴音郭楞蒙古自治州",
    "阿克苏地区", "克孜勒苏柯尔克孜自治州", "喀什地区", "和田地区", "伊犁哈萨克自治州", "塔城地区", "阿勒泰地区",
}


@pytest.fixture(scope="module")
def catalogue():
    return default_catalogue()


@pytest.fixture(scope="module")
def book(catalogue):
    return load_regions(catalogue=catalogue)


def downstream_of(catalogue, chain_id: str, link_id: str) -> set[str]:
    seen: set[str] = set()
    queue = deque([link_id])
    while queue:
        for edge in catalogue.customers(queue.popleft(), chain_id):
            if edge.target not in seen:
                seen.add(edge.target)
                queue.append(edge.target)
    return seen


# --- the embedded demo regions ----------------------------------------------------------------------------------


def test_demo_regions_load_and_validate_against_the_catalogue(book):
    ids = {r.id for r in book}
    assert {"changji", "manas", "mulei", "zhundong", "changji_hitech", "jimsar", "fukang", "yili", "gongliu",
            "karamay", "aksu", "kuqa"} <= ids
    for region in book:
        assert region.province == "新疆"
        if region.parent:
            assert region.parent in ids


def test_regions_resolve_by_official_and_short_names(book):
    assert book.get("昌吉回族自治州").id == "changji"
    assert book.get("昌吉州").id == "changji"
    assert book.get("准东").level == RegionLevel.PARK
    assert book.get("巩留县").parent == "yili"
    assert {r.id for r in book.children("changji")} >= {"manas", "mulei", "zhundong", "changji_hitech"}


def test_manas_aluminium_chain_stops_at_the_chain_master(book, catalogue):
    manas = book.get("玛纳斯县")
    assert "aluminium" in manas.target_chains
    masters = [r for r in manas.residents if r.chain_master]
    assert [r.name for r in masters] == ["新疆嘉润资源控股有限公司"]
    assert masters[0].links == ["electrolytic_aluminium"] and "20万吨" in masters[0].capacity
    below = downstream_of(catalogue, "aluminium", "electrolytic_aluminium")
    assert {"aluminium_rod", "aluminium_profile"} <= below
    occupied = {lid for r in manas.residents for lid in r.links}
    assert not occupied & below, "nothing downstream of 电解铝 may be resident in 玛纳斯 (the headline 短链 case)"


def test_seed_chain_masters_sit_on_their_links(book):
    mulei_master = next(r for r in book.get("木垒县").residents if r.chain_master)
    assert "东方风电" in mulei_master.name and {"wind_blade", "wind_turbine"} <= set(mulei_master.links)
    guorong = next(r for r in book.get("巩留县").residents if "国容" in r.name)
    assert guorong.links == ["formed_foil"] and "化成箔" in guorong.capacity
    shuguang = next(p for p in book.get("巩留县").projects if "曙光" in p.name)  # seed 001: 落户, 12月投产
    assert "pvc_pipe" in shuguang.links and shuguang.status.value == "在建" and "伊犁新闻网" in shuguang.source
    rongkai = next(p for p in book.get("玛纳斯县").projects if "南昌荣凯" in p.name)  # seed 000: 签约 2023-05
    assert {"aluminium_rod", "aluminium_profile"} <= set(rongkai.links) and rongkai.status.value == "签约"


def test_every_need_names_a_target_chain_and_links_of_that_chain(book, catalogue):
    for region in book:
        for need in region.needs:
            assert need.chain in region.target_chains, (region.id, need.text)
            members = set(catalogue.chains[need.chain].link_ids)
            assert need.links and set(need.links) <= members, (region.id, need.chain, set(need.links) - members)
            assert need.gap_type in set(GapType)


def test_every_resident_link_lies_in_one_of_the_regions_target_chains(book, catalogue):
    for region in book:
        members = {lid for c in region.target_chains for lid in catalogue.chains[c].link_ids}
        for resident in region.residents:
            assert set(resident.links) <= members, (region.id, resident.name, set(resident.links) - members)


def test_changji_needs_cover_the_seed_extend_strengthen_and_fill_lists(book):
    needs = {n.chain: n.gap_type for n in book.get("changji").needs}
    for chain in ("dairy", "meat", "wheat_corn", "soybean_peanut", "oilseed_safflower", "tomato", "petrochemical"):
        assert needs[chain] == GapType.SHORT  # 延链
    for chain in ("stone", "energy_equipment", "wine"):
        assert needs[chain] == GapType.WEAK  # 强链
    for chain in ("textile_apparel", "biobased_fibre", "biomedicine", "hydrogen", "software_it"):
        assert needs[chain] == GapType.MISSING  # 补链


def test_demo_regions_include_weak_and_missing_link_situations(book, catalogue):
    assert any(r.size == "小" for region in book for r in region.residents)
    # 准东: 电石 and PVC are resident, the 乙炔 → 氯乙烯 links between them are not (a 缺链 between present links)
    zhundong = {lid for r in book.get("zhundong").residents for lid in r.links}
    assert {"calcium_carbide", "pvc_resin"} <= zhundong
    upstream_of_pvc = {e.source for e in catalogue.suppliers("pvc_resin", "chlor_alkali")}
    upstream_of_pvc |= {e.source for lid in upstream_of_pvc for e in catalogue.suppliers(lid, "chlor_alkali")}
    between = downstream_of(catalogue, "chlor_alkali", "calcium_carbide") & upstream_of_pvc
    assert {"acetylene", "vinyl_chloride"} <= between and not between & zhundong


# --- validation of broken region files --------------------------------------------------------------------------


def write_regions(directory: Path, regions: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo.yaml"
    path.write_text(yaml.safe_dump(regions, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def county(**overrides) -> dict:
    base = {"id": "testxian", "name": "测试县", "level": "县市", "target_chains": ["aluminium"],
            "residents": [{"name": "甲铝业", "links": ["electrolytic_aluminium"], "chain_master": True}]}
    base.update(overrides)
    return base


def test_unknown_resident_link_is_reported_with_region_and_resident(tmp_path, catalogue):
    path = write_regions(tmp_path, [county(residents=[{"name": "甲铝业", "links": ["no_such_link"]}])])
    with pytest.raises(RegionFileError) as info:
        parse_regions(path, catalogue)
    err = info.value
    assert err.file == "demo.yaml" and err.entry == "testxian/甲铝业"
    assert "unknown link 'no_such_link'" in err.problem


def test_unknown_need_link_and_target_chain_are_reported(tmp_path, catalogue):
    need = {"text": "延链", "chain": "aluminium", "links": ["ghost_link"], "gap_type": "短链"}
    path = write_regions(tmp_path, [county(needs=[need])])
    with pytest.raises(RegionFileError, match="unknown link 'ghost_link'"):
        parse_regions(path, catalogue)
    path = write_regions(tmp_path, [county(target_chains=["no_chain"])])
    with pytest.raises(RegionFileError, match="target chain 'no_chain' is not in the catalogue"):
        parse_regions(path, catalogue)


def test_bad_gap_type_and_level_are_reported(tmp_path, catalogue):
    path = write_regions(tmp_path, [county(needs=[{"text": "x", "gap_type": "断链"}])])
    with pytest.raises(RegionFileError) as info:
        parse_regions(path, catalogue)
    assert info.value.entry == "testxian" and "gap_type" in info.value.problem
    path = write_regions(tmp_path, [county(level="乡镇")])
    with pytest.raises(RegionFileError, match="level"):
        parse_regions(path, catalogue)


def test_unknown_parent_and_duplicate_region_are_reported(tmp_path, catalogue):
    write_regions(tmp_path, [county(parent="nowhere")])
    with pytest.raises(RegionFileError, match="parent 'nowhere' is not a known region"):
        load_regions(tmp_path, catalogue)
    write_regions(tmp_path, [county(), county()])
    with pytest.raises(RegionFileError, match="duplicate region id"):
        load_regions(tmp_path, catalogue)


# --- 产业援疆 pairing ----------------------------------------------------------------------------------------------


def test_aiding_table_covers_the_14_prefectures_and_the_19_aiding_provinces():
    table = load_aiding()
    assert PREFECTURES <= set(table)
    assert {p for provinces in table.values() for p in provinces} == AIDING_PROVINCES
    assert table["伊犁哈萨克自治州"] == ["江苏省"]
    assert table["克拉玛依市"] == ["上海市"]  # seed 004
    assert "北京市" in table["和田地区"]  # seed 004


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("伊犁州", ["江苏省"]),
        ("巩留县", ["江苏省"]),  # seed 001: 江苏援伊·苏州(张家港)工作组
        ("玛纳斯县", ["福建省"]),
        ("阜康市", ["山西省"]),  # its own pairing wins over 昌吉州's 福建省
        ("准东", ["福建省"]),  # a park inherits from its prefecture
        ("库车市", ["浙江省"]),  # not named in the county table: inherited from 阿克苏地区
        ("克拉玛依市", ["上海市"]),
    ],
)
def test_aiding_for_own_county_or_inherited_pairing(book, region, expected):
    assert aiding_for(region, book) == expected


def test_aiding_for_a_prefecture_without_its_own_list_uses_the_table():
    hami = Region(id="hami", name="哈密市", level="地州")
    county_ = Region(id="yiwu", name="伊吾县", level="县市", parent="hami")
    book = RegionBook([hami, county_])
    assert aiding_for("伊吾县", book) == ["河南省"]
    assert aiding_for(Region(id="x", name="无名县", level="县市"), book) == []


def test_aiding_table_resolves_short_names_and_counties():
    table = default_aiding_table()
    assert table.prefecture("博州").aiding == ("湖北省",)
    assert table.prefecture("kashgar").prefecture == "喀什地区"
    assert table.county("莎车县") == ["上海市"]
    assert table.prefecture("伊犁").cities == ("苏州市", "张家港市")


def test_malformed_aiding_file_names_the_entry(tmp_path):
    path = tmp_path / "aiding.yaml"
    path.write_text("- {prefecture: 测试州, region_id: test}\n", encoding="utf-8")
    with pytest.raises(RegionFileError) as info:
        parse_aiding(path)
    assert (info.value.file, info.value.entry) == ("aiding.yaml", "测试州")
    assert "missing required key 'aiding'" in info.value.problem
    path.write_text("- {prefecture: 测试州, region_id: test, aiding: [江苏省], counties: {浙江省: [甲县]}}\n", encoding="utf-8")
    with pytest.raises(RegionFileError, match="not in aiding"):
        parse_aiding(path)


def test_a_project_or_endowment_without_a_source_is_a_clear_file_error(tmp_path):
    """Issue 16: every authored fact has a source."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "- {id: t, name: 测试县, level: 县市, projects: [{name: 某项目, links: [aluminium_rod], status: 签约}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(RegionFileError, match="source"):
        parse_regions(path)
    path.write_text("- {id: t, name: 测试县, level: 县市, endowments: [{key: coal, value: true}]}\n", encoding="utf-8")
    with pytest.raises(RegionFileError, match="source"):
        parse_regions(path)
