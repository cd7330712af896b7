"""Presence from all the data (issue #16 items 2 and 3): integrated plants, projects under way, located firms."""

from __future__ import annotations

import pytest

from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.gaps import ESTABLISHED, INTEGRATED, LOCATED, PROJECT, RESIDENT, diagnose
from matcher.knowledge.located import firm_links, located_in, located_presence
from matcher.knowledge.regions import default_regions
from matcher.records import Enterprise, Product


@pytest.fixture()
def demo():
    return default_catalogue(), default_regions()


def _diag(region_id: str, demo, **kw):
    cat, book = demo
    return diagnose(book.get(region_id), cat, book=book, include_infeasible=True, **kw)


@pytest.mark.parametrize("region_id", ["manas", "fukang"])
def test_captive_power_of_an_integrated_plant_makes_coal_power_present(region_id, demo):
    gm = _diag(region_id, demo)
    assert "coal_power_generation" in gm.present
    assert gm.present_sources["coal_power_generation"] == [INTEGRATED]
    assert "coal_power_generation" not in {g.link_id for g in gm.gaps}


def test_vinyl_chloride_inside_a_pvc_plant_is_present_not_a_gap(demo):
    gm = _diag("fukang", demo)
    assert INTEGRATED in gm.present_sources["vinyl_chloride"]
    assert "vinyl_chloride" not in {g.link_id for g in gm.gaps}


def test_a_captive_plant_is_not_read_as_a_chain_master_link(demo):
    gm = _diag("manas", demo)
    assert not any("（燃煤发电）" in e and "链主" in e for g in gm.gaps for e in g.evidence)


def test_a_building_project_fills_its_links(demo):
    gm = _diag("gongliu", demo)
    assert gm.present_sources["pvc_pipe"] == [PROJECT]
    assert not {"pvc_pipe", "double_wall_corrugated_pipe"} & {g.link_id for g in gm.gaps}


def test_an_operating_ethylene_project_and_refinery_products_are_present_in_kuqa(demo):
    gm = _diag("kuqa", demo)
    for lid in ("ethylene_cracking", "polyethylene", "asphalt", "petroleum_coke"):
        assert lid in gm.present, lid
    assert RESIDENT in gm.present_sources["asphalt"] and PROJECT in gm.present_sources["ethylene_cracking"]


def test_a_signed_project_only_partly_fills_its_link(demo):
    gaps = {g.link_id: g for g in _diag("manas", demo).gaps}
    rod, wire = gaps["aluminium_rod"], gaps["electrical_aluminium_rod"]
    assert rod.priority_parts["project"] == -1.0 and rod.priority < wire.priority
    assert any("南昌荣凯" in e and "签约" in e for e in rod.evidence)


def _firm(name: str, province: str, city: str, *products: tuple[str, float]) -> Enterprise:
    return Enterprise(id=name, name=name, province=province, city=city,
                      products=[Product(name=p, share=s) for p, s in products])  # fmt: skip


def test_a_firm_counts_where_it_is_registered_and_only_for_its_main_products(demo):
    cat, book = demo
    firm = _firm("某铝业", "新疆", "乌鲁木齐市", ("高纯铝", 0.07), ("腐蚀箔", 0.001))
    assert firm_links(firm, cat) == ["high_purity_aluminium"]
    assert located_in(firm, book.get("xinjiang"), book) and not located_in(firm, book.get("changji"), book)
    in_changji = _firm("某电缆", "新疆", "昌吉回族自治州", ("电力电缆", 0.5))
    assert located_in(in_changji, book.get("changji"), book)
    plant = _firm("某箔业", "新疆", "乌鲁木齐市", ("电子铝箔", 0.5)).model_copy(update={"extra": {"sites": ["巩留县工业园区"]}})
    assert located_in(plant, book.get("gongliu"), book) and located_in(plant, book.get("yili"), book)
    assert not located_in(plant, book.get("karamay"), book)


def test_high_purity_aluminium_is_present_in_xinjiang_from_the_ashare_corpus(shared_data, demo):
    from matcher.store.ashare import load_ashare_corpus

    cat, book = demo
    xj = [e for e in load_ashare_corpus(shared_data) if e.province == "新疆"]
    located = located_presence(book.get("xinjiang"), xj, cat, book)
    assert any("众和" in n for n in located["high_purity_aluminium"])
    gm = _diag("xinjiang", demo, located=located)
    assert LOCATED in gm.present_sources["high_purity_aluminium"]
    assert "high_purity_aluminium" not in {g.link_id for g in gm.gaps}
    assert "high_purity_aluminium" not in located_presence(book.get("manas"), xj, cat, book)


def test_gaps_cli_reads_located_firms_from_the_store_and_flags_infeasible_rows_on_request():
    import json

    from typer.testing import CliRunner

    from matcher.settings import get_settings
    from matcher.store.store import Store
    from service.cli import app

    with Store(get_settings().database_url) as store:
        store.upsert_enterprises([_firm("某高纯铝厂", "新疆", "乌鲁木齐市", ("高纯铝", 0.3)), _firm("某厂", "江苏", "苏州市", ("高纯铝", 0.3))])
    runner = CliRunner()
    r = runner.invoke(app, ["gaps", "xinjiang", "--json"])
    assert r.exit_code == 0, r.output
    gm = json.loads(r.output[r.output.index("{"):])
    assert gm["present"]["high_purity_aluminium"] == ["某高纯铝厂"]
    assert gm["present_sources"]["high_purity_aluminium"] == [LOCATED] and gm["hidden"] > 0
    text = runner.invoke(app, ["gaps", "manas", "--all"]).output
    assert "不宜引进" in text and "氧化铝" in text
    default = runner.invoke(app, ["gaps", "manas"]).output
    assert "⊘ 不宜引进" not in default and "加 --all 查看" in default


def test_established_industries_from_public_facts_are_present(demo):
    gm = _diag("changji", demo)
    assert ESTABLISHED in gm.present_sources["silicon_ingot"]  # 单晶硅 production base per the 2023 transfer article
    assert "silicon_ingot" not in {g.link_id for g in gm.gaps}
    assert ESTABLISHED in _diag("zhundong", demo).present_sources["wind_farm"]
