"""The embedded chain catalogue (matcher/data/chains) and the loader's validation of broken chain files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from matcher.errors import CatalogueError
from matcher.knowledge.catalogue import CHAINS_DIR, load_catalogue
from matcher.records import Stage

EIGHT_CLUSTERS = {
    "油气生产加工",
    "煤炭煤电煤化工",
    "绿色矿业",
    "粮油",
    "棉花和纺织服装",
    "绿色有机果蔬",
    "优质畜产品",
    "新能源新材料",
}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


# --- the embedded catalogue -------------------------------------------------------------------------------------


def test_embedded_catalogue_meets_the_size_targets(catalogue):
    stats = catalogue.stats()
    assert stats["chains"] >= 27
    assert stats["links"] >= 320
    assert stats["edges"] >= 380


def test_every_chain_tree_renders_every_member_link(catalogue):
    for chain in catalogue.chains.values():
        tree = catalogue.tree(chain.id)
        assert tree.splitlines()[0].startswith(chain.name)
        for lid in chain.link_ids:
            assert f"({lid})" in tree, f"{chain.id}: {lid} missing from the rendered tree"


def test_each_of_the_eight_xinjiang_clusters_has_a_chain(catalogue):
    clusters = {c.cluster for c in catalogue.chains.values()}
    assert EIGHT_CLUSTERS <= clusters


def test_every_chain_is_acyclic_so_upstream_order_is_well_defined(catalogue):
    for chain in catalogue.chains.values():
        position = {lid: i for i, lid in enumerate(catalogue.ordered_links(chain.id))}
        backwards = [(e.source, e.target) for e in chain.edges if position[e.source] > position[e.target]]
        assert not backwards, f"{chain.id} has a cycle through {backwards}"


def test_every_member_link_is_connected_within_its_chain(catalogue):
    for chain in catalogue.chains.values():
        touched = {x for e in chain.edges for x in (e.source, e.target)}
        assert set(chain.link_ids) == touched, f"{chain.id}: isolated {set(chain.link_ids) - touched}"


def test_every_link_has_a_chinese_name_aliases_and_a_gbt_code(catalogue):
    for link in catalogue.links.values():
        assert link.id.isascii() and link.id == link.id.lower()
        assert not link.name.isascii()
        assert link.aliases, link.id
        assert link.gbt and all(len(code) == 4 for code in link.gbt), link.id


@pytest.mark.parametrize(
    "name",
    [
        "乳制品", "牛羊猪禽肉", "小麦玉米", "大豆花生", "红花油料", "番茄加工", "页岩油气加工", "石材", "能源装备", "葡萄酒",
        "纺织服装", "生物基再生纤维", "生物医药", "氢能", "软件和信息技术服务", "煤化工", "煤炭煤电", "铝", "光伏", "有机硅",
        "锂电", "储能", "电子材料", "塑料制品", "氯碱", "铜", "钢铁", "绿色有机果蔬", "新能源汽车", "农机", "建材", "风电",
        "输变电", "化纤", "饲料", "保水固肥",
    ],
)
def test_the_briefed_chains_resolve_by_their_chinese_names(catalogue, name):
    assert catalogue.chain(name).id in catalogue.chains


@pytest.mark.parametrize(
    ("term", "link_id"),
    [
        ("改良西门子法多晶硅", "polysilicon"),  # was 高纯晶硅: a deal string (issue #20), removed from the catalogue
        ("颗粒硅", "polysilicon"),
        ("多晶硅料", "polysilicon"),
        ("太阳能级多晶硅", "polysilicon"),
        ("风机叶片", "wind_blade"),
        ("风力发电机组叶片", "wind_blade"),
        ("風電葉片", "wind_blade"),  # Traditional Chinese (seed 001 is Traditional)
        ("铝水", "electrolytic_aluminium"),
        ("化成箔", "formed_foil"),
        ("腐蚀箔", "etched_foil"),
        ("PE双壁波纹管", "double_wall_corrugated_pipe"),
        ("钢带波纹管", "steel_belt_corrugated_pipe"),
        ("电石法PVC", "pvc_resin"),
        ("兰炭", "semi_coke"),
        ("六氟磷酸锂", "lipf6"),
        ("莱赛尔", "lyocell"),
        ("保水固肥", "water_retaining_agent"),
        ("红花籽油", "safflower_oil"),
    ],
)
def test_firm_vocabulary_resolves_to_the_specific_link(catalogue, term, link_id):
    assert catalogue.link(term).id == link_id


def test_shared_links_belong_to_several_chains(catalogue):
    assert {"aluminium", "electronic_materials"} <= set(catalogue.chains_of("electrolytic_aluminium"))
    assert {"photovoltaic", "organosilicon"} <= set(catalogue.chains_of("industrial_silicon"))
    assert {"wind_power", "energy_equipment"} <= set(catalogue.chains_of("wind_blade"))
    carbide_outlets = {e.target for e in catalogue.customers("acetylene")}
    assert {"vinyl_chloride", "bdo"} <= carbide_outlets  # 电石乙炔 feeds PVC and 乙炔化工


def test_chain_master_neighbourhood_of_electrolytic_aluminium(catalogue):
    inputs = {e.source for e in catalogue.suppliers("electrolytic_aluminium", "aluminium")}
    outlets = {e.target for e in catalogue.customers("electrolytic_aluminium", "aluminium")}
    assert {"alumina", "carbon_anode"} <= inputs
    assert {"aluminium_rod", "electrical_aluminium_rod"} <= outlets
    assert catalogue.links["alumina"].stage == Stage.UPSTREAM


def test_each_chain_file_names_its_chain_and_seed_in_a_header_comment():
    for path in sorted(CHAINS_DIR.glob("*.yaml")):
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert head.startswith("# ") and "链" in head, path.name


# --- validation of broken files -----------------------------------------------------------------------------------


def chain_doc(cid: str = "toy", links: list[dict] | None = None, edges: list[dict] | None = None, **extra) -> dict:
    doc = {
        "id": cid,
        "name": "玩具链",
        "cluster": "测试",
        "links": links
        if links is not None
        else [
            {"id": f"{cid}_a", "name": f"{cid}甲原料", "stage": "上游", "aliases": [f"{cid}甲"], "gbt": ["3216"]},
            {"id": f"{cid}_b", "name": f"{cid}乙制品", "stage": "下游", "aliases": [f"{cid}乙"], "gbt": ["3252"]},
        ],
        "edges": edges if edges is not None else [{"from": f"{cid}_a", "to": f"{cid}_b", "flow": "甲"}],
    }
    doc.update(extra)
    return doc


def write(directory: Path, name: str, doc: dict | str) -> Path:
    path = directory / name
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def load_error(directory: Path) -> CatalogueError:
    with pytest.raises(CatalogueError) as info:
        load_catalogue(directory)
    return info.value


def test_a_valid_two_file_catalogue_loads(tmp_path):
    write(tmp_path, "a.yaml", chain_doc("a"))
    write(tmp_path, "b.yaml", chain_doc("b", uses=["a_b"], edges=[
        {"from": "a_b", "to": "b_a", "flow": "乙"}, {"from": "b_a", "to": "b_b", "flow": "甲"}]))
    cat = load_catalogue(tmp_path)
    assert cat.stats() == {"chains": 2, "links": 4, "edges": 3}
    assert cat.chains_of("a_b") == ["a", "b"]


def test_bad_yaml_names_the_file(tmp_path):
    write(tmp_path, "broken.yaml", "id: toy\nlinks: [unclosed\n")
    err = load_error(tmp_path)
    assert err.file == "broken.yaml" and "not valid YAML" in err.problem
    assert "broken.yaml" in str(err)


def test_missing_chain_key_names_the_key(tmp_path):
    doc = chain_doc()
    del doc["name"]
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert err.file == "toy.yaml" and "missing required key 'name'" in err.problem


def test_link_missing_its_stage_names_the_link(tmp_path):
    doc = chain_doc()
    del doc["links"][0]["stage"]
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert (err.file, err.entry) == ("toy.yaml", "toy_a")
    assert "missing required key" in err.problem and "stage" in err.problem


def test_duplicate_link_id_across_files_names_both_files(tmp_path):
    write(tmp_path, "a.yaml", chain_doc("a"))
    dup = chain_doc("b")
    dup["links"][0]["id"] = "a_a"
    dup["edges"] = [{"from": "a_a", "to": "b_b", "flow": "甲"}]
    write(tmp_path, "b.yaml", dup)
    err = load_error(tmp_path)
    assert (err.file, err.entry) == ("b.yaml", "a_a")
    assert "duplicate link id" in err.problem and "a.yaml" in err.problem


def test_dangling_edge_names_the_unknown_link(tmp_path):
    write(tmp_path, "toy.yaml", chain_doc(edges=[{"from": "toy_a", "to": "nowhere", "flow": "甲"}]))
    err = load_error(tmp_path)
    assert err.file == "toy.yaml" and err.entry == "edge toy_a->nowhere"
    assert "dangling edge" in err.problem and "nowhere" in err.problem


def test_edge_to_a_link_outside_the_chain_asks_for_uses(tmp_path):
    write(tmp_path, "a.yaml", chain_doc("a"))
    write(tmp_path, "b.yaml", chain_doc("b", edges=[{"from": "a_b", "to": "b_a", "flow": "乙"}]))
    err = load_error(tmp_path)
    assert (err.file, err.entry) == ("b.yaml", "edge a_b->b_a")
    assert "not in this chain" in err.problem and "uses" in err.problem


def test_unknown_gbt_code_names_the_code(tmp_path):
    doc = chain_doc()
    doc["links"][1]["gbt"] = ["9999"]
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert (err.file, err.entry) == ("toy.yaml", "toy_b") and "'9999'" in err.problem


def test_unquoted_gbt_code_is_rejected_with_a_hint(tmp_path):
    text = yaml.safe_dump(chain_doc(), allow_unicode=True, sort_keys=False)
    assert "'3216'" in text
    write(tmp_path, "toy.yaml", text.replace("'3216'", "0610"))  # YAML reads 0610 as the octal integer 392
    err = load_error(tmp_path)
    assert err.entry == "toy_a" and "quoted strings" in err.problem and "392" in err.problem


def test_conflicting_alias_names_both_links(tmp_path):
    doc = chain_doc()
    doc["links"][1]["aliases"] = ["toy甲"]  # already an alias of toy_a
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert err.file == "toy.yaml" and err.entry == "toy_b"
    assert "toy甲" in err.problem and "toy_a" in err.problem


def test_alias_equal_to_another_links_name_conflicts(tmp_path):
    doc = chain_doc()
    doc["links"][1]["aliases"] = ["toy甲原料"]
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert "conflicts with link 'toy_a'" in err.problem


def test_bad_stage_names_the_link_and_the_valid_stages(tmp_path):
    doc = chain_doc()
    doc["links"][0]["stage"] = "顶游"
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert (err.file, err.entry) == ("toy.yaml", "toy_a")
    assert err.problem.startswith("stage") and "上游" in err.problem


def test_scalar_alias_list_is_rejected_instead_of_split_into_characters(tmp_path):
    doc = chain_doc()
    doc["links"][0]["aliases"] = "多晶硅"
    write(tmp_path, "toy.yaml", doc)
    err = load_error(tmp_path)
    assert err.entry == "toy_a" and "'aliases' must be a list" in err.problem


def test_unknown_uses_entry_is_reported(tmp_path):
    write(tmp_path, "toy.yaml", chain_doc(uses=["ghost"]))
    err = load_error(tmp_path)
    assert err.entry == "uses: ghost" and "unknown link id" in err.problem


def test_empty_links_list_loads_when_the_chain_only_uses_other_links(tmp_path):
    write(tmp_path, "a.yaml", chain_doc("a"))
    write(tmp_path, "view.yaml", {"id": "view", "name": "视图链", "links": None, "uses": ["a_a", "a_b"],
                                  "edges": [{"from": "a_a", "to": "a_b", "flow": "甲"}]})
    cat = load_catalogue(tmp_path)
    assert cat.chains["view"].link_ids == ("a_a", "a_b")


def test_no_edge_runs_against_the_stages_of_its_chain():
    """Issue 16 item 4: a link's stage is read per chain, and within a chain no edge goes 下游 → 上游."""
    from matcher.knowledge.catalogue import default_catalogue

    cat = default_catalogue()
    order = {Stage.UPSTREAM: 0, Stage.MIDSTREAM: 1, Stage.DOWNSTREAM: 2}
    against = [
        (c.id, e.source, e.target)
        for c in cat.chains.values()
        for e in c.edges
        if order[cat.stage(e.source, c.id)] > order[cat.stage(e.target, c.id)]
    ]
    assert against == []


def test_a_borrowed_link_takes_its_stage_from_the_chain_it_sits_in():
    from matcher.knowledge.catalogue import default_catalogue

    cat = default_catalogue()
    assert cat.stage("high_purity_aluminium", "electronic_materials") == Stage.UPSTREAM  # its own chain
    assert cat.stage("high_purity_aluminium", "aluminium") == Stage.MIDSTREAM  # after 电解铝 in the aluminium chain
    assert cat.stage("cotton_planting", "agri_machinery") == Stage.DOWNSTREAM  # the machinery's customer
    assert cat.stage("cotton_planting") == Stage.UPSTREAM  # authored stage without a chain


def test_a_chain_written_inside_free_text_is_found(catalogue):
    """The evaluation reads a deal's chain as an officer would pick it: the chain named inside the words (the longest
    name or alias written there), since a report's chain label is rarely the catalogue's exact name."""
    assert catalogue.chain_in_text("锂电池正极材料").id == "lithium_battery"
    assert catalogue.chain_in_text("光伏产业园").id == "photovoltaic"
    assert catalogue.chain_in_text("航空发动机") is None


def test_the_deal_request_uses_the_chain_named_inside_its_chain_label(catalogue):
    from types import SimpleNamespace

    from evaluation.cases import CaseQuery
    from evaluation.requests import case_request
    from matcher.knowledge.mapping import LinkMapper

    q = CaseQuery(case_id="t", region_province="江西", region_prefecture=None, region_county_or_park=None,
                  chain="锂电池正极材料", gap_type="unknown", product_link="某新型产品", project="年产1000吨项目")  # fmt: skip
    req = case_request(q, catalogue, SimpleNamespace(mapper=LinkMapper(catalogue)), k=10)
    assert req.chain == "lithium_battery" and req.link is None
