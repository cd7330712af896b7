"""The embedded demo corpus loads, spreads over chains and provinces, and rejects malformed lines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from matcher.errors import ImportFileError
from matcher.store.demo import DEMO_ENTERPRISES_FILE, load_demo_enterprises

# chains the brief calls energy/materials need ≥ 8 firms, the others ≥ 4
ENERGY_MATERIALS = {
    "铝", "光伏", "有机硅", "锂电储能", "风电", "输变电", "电子材料", "塑料管材", "氯碱PVC", "煤化工", "煤炭煤电",
    "石油石化", "氢能", "生物基纤维", "化纤涤纶", "铜",
}
OTHERS = {
    "纺织服装", "乳制品", "肉类", "粮油", "番茄", "果蔬干果", "葡萄酒", "石材", "生物医药", "软件信息", "农机装备",
    "建材", "保水固肥", "钢铁", "新能源汽车", "饲料饲草",
}
AIDING = {"江苏", "浙江", "上海", "广东", "山东", "福建", "北京", "天津", "河南", "湖南", "湖北", "江西", "辽宁",
          "吉林", "黑龙江", "安徽", "河北", "山西"}
SEED_FIRMS = [
    "新疆嘉润资源控股有限公司", "南昌荣凯实业有限公司", "新疆东方风电新能源有限公司", "唐山海泰新能科技股份有限公司",
    "北京双杰电气股份有限公司", "特变电工股份有限公司", "江西龙泰新材料股份有限公司", "东莞全球环保科技有限公司",
    "新疆维格瑞生物科技有限公司", "新疆国容电子科技有限公司", "张家港市曙光机械厂", "江苏富淼科技股份有限公司",
    "新疆天锦纺织科技有限公司", "新疆卡鑫隆服饰织造有限公司",
]


@pytest.fixture(scope="module")
def demo():
    return load_demo_enterprises()


def test_demo_corpus_has_at_least_320_profiles_with_unique_ids_and_names(demo):
    assert len(demo) >= 320
    assert len({e.id for e in demo}) == len(demo)
    assert len({e.name for e in demo}) == len(demo)
    assert all(e.id.startswith("demo-") for e in demo)


def test_every_profile_has_products_with_shares_summing_to_at_most_one(demo):
    for e in demo:
        assert e.products, e.name
        assert sum(p.share or 0.0 for p in e.products) <= 1.0 + 1e-9, e.name
        assert 30 <= len(e.scope) <= 120, e.name
        assert e.aliases and e.province, e.name


def test_profiles_span_twenty_provinces_with_aiding_provinces_and_xinjiang(demo):
    provinces = Counter(e.province for e in demo)
    assert len(provinces) >= 20
    assert AIDING <= set(provinces)
    assert provinces["新疆"] >= 30


def test_each_chain_has_enough_firms(demo):
    per_chain = Counter(c for e in demo for c in e.extra["demo_chains"])
    assert set(per_chain) == ENERGY_MATERIALS | OTHERS
    for chain in ENERGY_MATERIALS:
        assert per_chain[chain] >= 8, chain
    for chain in OTHERS:
        assert per_chain[chain] >= 4, chain


def test_seed_firms_are_present_as_public_fact_profiles(demo):
    by_name = {e.name: e for e in demo}
    for name in SEED_FIRMS:
        assert by_name[name].source == "authored:public-facts", name


def test_fictional_profiles_are_marked_as_such_and_real_ones_are_not(demo):
    for e in demo:
        assert e.source in {"authored:public-facts", "authored:fictional"}, e.name
        fictional = e.source == "authored:fictional"
        assert ("虚构示例" in e.tags) == fictional, e.name
        assert ("示例" in e.name) == fictional, e.name
    assert sum(e.source == "authored:fictional" for e in demo) < len(demo) / 2


def test_listed_profiles_carry_the_listed_tag(demo):
    for e in demo:
        assert ("上市公司" in e.tags) == bool(e.stock_code), e.name


def test_group_members_share_a_parent_group(demo):
    groups = Counter(e.parent_group for e in demo if e.parent_group)
    assert groups["中国东方电气集团有限公司"] >= 3
    by_name = {e.name: e for e in demo}
    assert by_name["新疆东方风电新能源有限公司"].parent_group == "中国东方电气集团有限公司"
    assert by_name["新疆众和股份有限公司"].parent_group == "特变电工股份有限公司"
    assert sum(n >= 2 for n in groups.values()) >= 10


def test_normalized_names_are_filled_in(demo):
    by_name = {e.name: e for e in demo}
    assert by_name["新疆嘉润资源控股有限公司"].normalized_name == "新疆嘉润资源控股"
    assert all(e.normalized_name for e in demo)


def test_loader_returns_fresh_objects_each_call(demo):
    again = load_demo_enterprises()
    again[0].tags.append("changed")
    assert "changed" not in load_demo_enterprises()[0].tags


def _copy_with_line(tmp_path: Path, number: int, line: str) -> Path:
    lines = DEMO_ENTERPRISES_FILE.read_text(encoding="utf-8").splitlines()
    lines[number - 1] = line
    path = tmp_path / "demo_enterprises.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_out_of_range_share_raises_import_error_naming_line_and_field(tmp_path: Path):
    lines = DEMO_ENTERPRISES_FILE.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[6])
    row["products"][0]["share"] = 1.5
    path = _copy_with_line(tmp_path, 7, json.dumps(row, ensure_ascii=False))
    with pytest.raises(ImportFileError, match=r"line 7: field 'products\.0\.share'"):
        load_demo_enterprises(path)


def test_missing_name_raises_import_error_naming_line_and_field(tmp_path: Path):
    lines = DEMO_ENTERPRISES_FILE.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[41])
    del row["name"]
    path = _copy_with_line(tmp_path, 42, json.dumps(row, ensure_ascii=False))
    with pytest.raises(ImportFileError, match=r"line 42: field 'name'"):
        load_demo_enterprises(path)


def test_truncated_json_line_raises_import_error_naming_the_line(tmp_path: Path):
    lines = DEMO_ENTERPRISES_FILE.read_text(encoding="utf-8").splitlines()
    path = _copy_with_line(tmp_path, 100, lines[99][: len(lines[99]) // 2])
    with pytest.raises(ImportFileError, match=r"line 100: expected a JSON object"):
        load_demo_enterprises(path)


def test_duplicate_id_raises_import_error_naming_both_lines(tmp_path: Path):
    lines = DEMO_ENTERPRISES_FILE.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[9])
    row["id"] = json.loads(lines[2])["id"]
    path = _copy_with_line(tmp_path, 10, json.dumps(row, ensure_ascii=False))
    with pytest.raises(ImportFileError, match=r"line 10: field 'id': duplicate id '.+' \(first on line 3\)"):
        load_demo_enterprises(path)


def test_missing_file_raises_import_error(tmp_path: Path):
    with pytest.raises(ImportFileError, match="file not found"):
        load_demo_enterprises(tmp_path / "absent.jsonl")
