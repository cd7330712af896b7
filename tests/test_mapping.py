"""Product → chain-link mapping: unit behaviours on a small catalogue, quality on hand labels."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from matcher.errors import ImportFileError
from matcher.knowledge.catalogue import default_catalogue, load_catalogue
from matcher.knowledge.mapping import LinkMapper
from matcher.knowledge.mapping_eval import evaluate_mapping, load_labels
from matcher.knowledge.segments import is_generic_segment, split_segments
from matcher.records import Enterprise, Product

LABELS = Path(__file__).parent / "fixtures" / "link_labels.tsv"

SMALL_CATALOGUE = """\
id: demo
name: 演示链
links:
  - id: electrolytic_aluminium
    name: 电解铝
    stage: 中游
    aliases: [原铝, 铝锭]
    products: [重熔用铝锭]
    gbt: ["3216"]
  - id: aluminium_foil
    name: 铝箔
    stage: 下游
    aliases: [铝板带箔]
    products: [电池铝箔]
    gbt: ["3252"]
  - id: capacitor
    name: 电容器
    stage: 下游
    aliases: [铝电解电容器, 电解电容器]
    gbt: ["3981"]
  - id: cathode
    name: 正极材料
    stage: 中游
    aliases: [锂电正极材料, 三元正极材料]
    products: [磷酸铁锂, 钴酸锂]
    gbt: ["3985"]
  - id: ethylene_glycol
    name: 乙二醇
    stage: 上游
    aliases: [MEG]
    gbt: ["2614"]
edges:
  - {from: electrolytic_aluminium, to: aluminium_foil}
  - {from: aluminium_foil, to: capacitor}
"""

SMALL_PV_CATALOGUE = """\
id: demo_pv
name: 演示光伏链
links:
  - id: pv_cell
    name: 光伏电池片
    stage: 中游
    aliases: [太阳能电池片, 电池片]
    products: [PERC电池片]
    gbt: ["3825"]
  - id: silicon_wafer
    name: 硅片
    stage: 中游
    aliases: [单晶硅片, 多晶硅片]
    gbt: ["3985"]
  - id: pv_module
    name: 光伏组件
    stage: 下游
    aliases: [太阳能组件]
    gbt: ["3825"]
  - id: pv_equipment
    name: 光伏设备
    stage: 上游
    aliases: [光伏装备]
    gbt: ["3562"]
uses: [aluminium_foil]
edges:
  - {from: silicon_wafer, to: pv_cell}
  - {from: pv_cell, to: pv_module}
  - {from: pv_equipment, to: pv_cell}
  - {from: aluminium_foil, to: pv_module}
"""


@pytest.fixture(scope="module")
def small_catalogue(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("chains")
    (d / "demo.yaml").write_text(SMALL_CATALOGUE, encoding="utf-8")
    (d / "demo_pv.yaml").write_text(SMALL_PV_CATALOGUE, encoding="utf-8")
    return load_catalogue(d)


@pytest.fixture()
def mapper(small_catalogue) -> LinkMapper:
    return LinkMapper(small_catalogue)


def top(mapper: LinkMapper, name: str) -> str | None:
    matches = mapper.map_product(name)
    return matches[0].link_id if matches else None


# --- unit behaviours ----------------------------------------------------------------------------


def test_exact_alias_scores_one_and_keeps_the_phrase_as_evidence(mapper):
    [m, *_] = mapper.map_product("原铝")
    assert (m.link_id, m.score, m.method, m.evidence) == ("electrolytic_aluminium", 1.0, "alias", "原铝")


def test_exact_match_ignores_case_width_and_traditional_script(mapper):
    assert top(mapper, "ＰＥＲＣ電池片") == "pv_cell"
    assert mapper.map_product("perc电池片")[0].score >= 0.95


def test_product_with_generic_suffix_still_maps_exactly(mapper):
    [m, *_] = mapper.map_product("电解铝销售业务")
    assert m.link_id == "electrolytic_aluminium" and m.score >= 0.9


def test_longest_match_wins_so_aluminium_capacitor_is_not_electrolytic_aluminium(mapper):
    links = [m.link_id for m in mapper.map_product("高压铝电解电容器")]
    assert links[0] == "capacitor"
    assert "electrolytic_aluminium" not in links


def test_head_of_compound_is_found_inside_a_long_product_name(mapper):
    assert top(mapper, "高效单晶PERC电池片") == "pv_cell"


def test_phrase_listing_two_products_maps_to_both_first_listed_first(mapper):
    links = [m.link_id for m in mapper.map_product("单晶硅片及组件")]
    assert links[:1] == ["silicon_wafer"]
    links = [m.link_id for m in mapper.map_product("单晶硅片及太阳能组件")]
    assert links[:2] == ["silicon_wafer", "pv_module"]


def test_term_that_only_modifies_another_noun_is_weaker_than_a_head_term(mapper):
    modifier = mapper.map_product("电解铝用阳极炭块")  # the firm makes anodes for smelters, not aluminium
    head = mapper.map_product("高纯电解铝")
    assert head and head[0].link_id == "electrolytic_aluminium"
    assert not modifier or modifier[0].score < head[0].score


@pytest.mark.parametrize(
    "row",
    [
        "其他业务",
        "主营业务",
        "其他",
        "国内",
        "华东地区",
        "外销",
        "境外销售",
        "分部间抵销",
        "材料",
        "设备",
        "其他(补充)",
    ],
)
def test_generic_segment_and_geography_rows_map_to_nothing(mapper, row):
    assert is_generic_segment(row)
    assert mapper.map_product(row) == []


def test_generic_words_and_single_characters_do_not_create_matches(mapper):
    assert mapper.map_product("铝") == []
    assert mapper.map_product("电子材料设备") == []
    assert mapper.map_product("工程服务") == []


def test_equipment_for_a_product_maps_to_the_equipment_link_that_supplies_it(mapper):
    assert top(mapper, "光伏组件装备") == "pv_equipment"  # shares wording with 光伏设备
    assert top(mapper, "太阳能电池片生产线") == "pv_equipment"  # no shared wording; 光伏设备 feeds 电池片
    # equipment for a product is never the product itself, and no equipment link feeds foil or wafers here
    assert mapper.map_product("铝箔生产设备") == []
    assert top(mapper, "硅片检测分选设备") is None


def test_polymer_of_a_monomer_is_not_the_monomer(mapper):
    assert top(mapper, "乙二醇") == "ethylene_glycol"
    assert mapper.map_product("聚乙二醇") == []


def test_sales_channel_and_segment_prefixes_are_stripped_around_the_product(mapper):
    assert top(mapper, "内销铝锭") == "electrolytic_aluminium"
    assert top(mapper, "主营业务-电解铝") == "electrolytic_aluminium"
    assert top(mapper, "铝箔出口") == "aluminium_foil"


@pytest.fixture(scope="module")
def full_mapper() -> LinkMapper:
    return LinkMapper(default_catalogue())


def test_a_trade_segment_maps_as_trade_never_as_a_maker(full_mapper):
    mapper = full_mapper
    for phrase, link in (("贸易—乙二醇", "ethylene_glycol"), ("铝棒贸易", "aluminium_rod"), ("钢材贸易", "steel_rolled")):
        hits = mapper.map_product(phrase)
        assert hits and hits[0].link_id == link and hits[0].method == "trade", (phrase, hits)
        assert hits[0].score <= 0.5  # below every maker threshold (link_fit 0.8, 主营)
    assert mapper.map_product("铝棒")[0].method == "alias"


def test_a_shared_token_does_not_bridge_two_materials(full_mapper):
    """铜合金棒 shares 合金棒 with 铝合金棒 but is copper: no mapping to 铝棒; 板材 alone names no link (issue 20)."""
    mapper = full_mapper
    assert all(m.link_id != "pvc_profile" for m in mapper.map_product("板材"))
    assert all(m.link_id != "aluminium_rod" for m in mapper.map_product("铜合金棒"))
    assert top(mapper, "铝合金棒") == "aluminium_rod"


def test_a_latin_abbreviation_inside_a_longer_one_is_not_that_term(full_mapper):
    """PPP项目 (public-private partnership) is not PP (聚丙烯); PE管 and LLDPE still map (issue 20)."""
    mapper = full_mapper
    for phrase in ("PPP项目", "PPP业务", "PPP项目运营"):
        assert all(m.link_id not in ("polypropylene", "ppr_pipe") for m in mapper.map_product(phrase)), phrase
    assert top(mapper, "PE管") == "pe_pipe"
    assert top(mapper, "LLDPE") == "polyethylene"
    assert top(mapper, "聚丙烯PP") == "polypropylene"


def test_a_distributor_sells_its_goods_it_does_not_make_them(full_mapper):
    """A pharmacy chain's 中成药 and a trading house's 服装 map as trade; a distributor's own service link
    (医药流通) and a manufacturer's identical segment keep their maker mapping (issue 20)."""
    pharmacy = Enterprise(
        id="p", name="某大药房连锁股份有限公司", sw_industry="线下药店",
        products=[Product(name="中成药", share=0.67), Product(name="医药流通", share=0.3)],
    )
    links = {m.link_id: m for m in full_mapper.map(pharmacy)}
    assert links["chinese_patent_medicine"].method == "trade" and links["chinese_patent_medicine"].score <= 0.5
    distribution = next(m for m in links.values() if m.link_id != "chinese_patent_medicine")
    assert distribution.method != "trade" and distribution.score >= 0.8
    maker = Enterprise(id="m", name="某药业股份有限公司", sw_industry="中药Ⅲ", products=[Product(name="中成药", share=0.7)])
    assert full_mapper.map(maker)[0].method != "trade"


def test_mappers_of_one_catalogue_share_the_built_index(small_catalogue):
    a, b = LinkMapper(small_catalogue), LinkMapper(small_catalogue)
    assert a._exact is b._exact
    assert a.cache_info()["size"] == 0 and b.map_product("铝箔")[0].link_id == "aluminium_foil"
    assert a.cache_info()["size"] == 0  # caches stay per mapper


def test_token_overlap_reaches_a_link_when_no_term_is_contained(mapper):
    [m, *_] = mapper.map_product("三元锂电正极")
    assert m.link_id == "cathode" and m.method == "token" and m.score < 0.95


def test_split_segments_drops_brackets_and_affixes():
    assert split_segments("光伏组件(含电池片)销售") == ["光伏组件"]
    assert split_segments("单晶硅片、电池片及组件") == ["单晶硅片", "电池片"]  # 组件 alone is too generic
    assert split_segments("纳米磷酸铁锂") == ["磷酸铁锂"]  # a nano powder of the material is the material


def test_business_scope_is_weaker_than_the_same_product(mapper):
    from_product = mapper.map(Enterprise(id="a", name="甲", products=[Product(name="铝箔", share=0.6)]))
    from_scope = mapper.map(Enterprise(id="b", name="乙", scope="一般项目：铝箔制造；铝箔销售；货物进出口。"))
    assert from_product[0].link_id == from_scope[0].link_id == "aluminium_foil"
    assert from_scope[0].score < from_product[0].score
    assert from_scope[0].share is None and from_product[0].share == 0.6


def test_enterprise_links_are_ordered_best_first_with_shares_and_evidence(mapper):
    ent = Enterprise(
        id="x",
        name="某新能源",
        products=[
            Product(name="其他业务", share=0.05),
            Product(name="太阳能组件", share=0.15),
            Product(name="单晶硅片", share=0.8),
        ],
    )
    links = mapper.map(ent)
    assert [m.link_id for m in links] == ["silicon_wafer", "pv_module"]
    assert links[0].evidence == "单晶硅片" and links[0].share == 0.8


def test_gbt_code_agreement_adds_a_bonus_and_a_weak_match_on_its_own(mapper):
    plain = mapper.map(Enterprise(id="a", name="甲", products=[Product(name="高纯电解铝")]))
    coded = mapper.map(
        Enterprise(id="b", name="乙", products=[Product(name="高纯电解铝")], gbt_codes=["3216"])
    )
    assert coded[0].score > plain[0].score
    only_code = mapper.map(Enterprise(id="c", name="丙", gbt_codes=["3981"]))
    assert [(m.link_id, m.method) for m in only_code] == [("capacitor", "gbt")]
    assert only_code[0].score < 0.5


def test_repeated_product_is_served_from_the_cache(mapper):
    first = mapper.map_product("电池铝箔")
    misses = mapper.cache_info()["misses"]
    again = mapper.map_product("電池鋁箔")  # same normalised phrase
    info = mapper.cache_info()
    assert [(m.link_id, m.score, m.method) for m in again] == [(m.link_id, m.score, m.method) for m in first]
    assert again[0].evidence == "電池鋁箔"  # evidence is the caller's phrase, not the cache key
    assert info["misses"] == misses and info["hits"] >= 1


def test_mapping_is_deterministic_across_mapper_instances(small_catalogue):
    names = ["高效单晶PERC电池片", "单晶硅片及组件", "三元锂电正极", "铝板带箔", "华东地区"]
    a = [[(m.link_id, m.score) for m in ms] for ms in LinkMapper(small_catalogue).map_products(names)]
    b = [[(m.link_id, m.score) for m in ms] for ms in LinkMapper(small_catalogue).map_products(names)]
    assert a == b


class _CharGramEmbedder:
    """A real (tiny) embedder: hashed character bigrams, L2-normalised, float32."""

    dim = 256

    def _encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for j in range(len(t) - 1):
                out[i, sum(map(ord, t[j : j + 2])) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_queries = encode_passages = _encode


def test_embedding_signal_is_used_only_when_lexical_signals_find_nothing(small_catalogue):
    mapper = LinkMapper(small_catalogue, embedder=_CharGramEmbedder(), embedding_threshold=0.5, min_score=0.3)
    assert top(mapper, "电池铝箔") == "aluminium_foil"
    assert mapper.map_product("电池铝箔")[0].method == "alias"
    emb = mapper.map_product("太阳能电池组")  # no term contained, char bigrams close to 太阳能电池片
    assert emb and emb[0].method in {"embedding", "token"}
    assert all(m.score < 0.95 for m in emb)


def test_label_file_with_unknown_gold_link_is_rejected(tmp_path, small_catalogue):
    bad = tmp_path / "labels.tsv"
    bad.write_text("铝箔\tno_such_link\tnote\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no_such_link"):
        load_labels(bad, small_catalogue)


# --- quality on the hand-labelled fixture -------------------------------------------------------


def test_label_fixture_is_large_balanced_and_uses_catalogue_ids():
    labels = load_labels(LABELS, default_catalogue())
    negatives = sum(1 for x in labels if not x.gold)
    assert len(labels) >= 220
    assert 0.2 <= negatives / len(labels) <= 0.35
    assert len({x.product for x in labels}) == len(labels)


def test_top1_mapping_precision_and_recall_on_hand_labels():
    labels = load_labels(LABELS, default_catalogue())
    mapper = LinkMapper(default_catalogue())
    res = evaluate_mapping(mapper, labels)
    unseen = evaluate_mapping(mapper, labels, exclude_catalogue_terms=True)
    print(  # noqa: T201 - the figures are the point of this test
        f"\nmapping top-1 on {res.n} labels: "
        f"precision {res.precision:.3f} recall {res.recall:.3f} F1 {res.f1:.3f}"
    )
    print(  # noqa: T201
        f"without verbatim catalogue terms ({unseen.n} labels): precision {unseen.precision:.3f} "
        f"recall {unseen.recall:.3f} F1 {unseen.f1:.3f}"
    )
    assert res.precision >= 0.85, res.wrong_link + [(p, t, "NONE") for p, t in res.false_positive]
    assert res.recall >= 0.7, res.missed
    # a third of the fixture is verbatim catalogue wording; the rest must not fall far behind
    assert unseen.precision >= 0.8 and unseen.recall >= 0.65


def test_mapping_throughput_exceeds_20k_products_per_second_after_jieba_is_loaded(shared_data):
    """Cold pass (empty cache) over every A-share product row.

    Measured in CPU time so that other processes sharing the machine do not skew it.
    """
    import json

    names = []
    with (shared_data / "ChainKnowledgeGraph" / "company_product.jsonl").open(encoding="utf-8") as f:
        for line in f:
            names.append(json.loads(line)["product_name"])
    mapper = LinkMapper(default_catalogue())  # loads jieba and teaches it the catalogue terms
    t0 = time.process_time()
    for n in names:
        mapper.map_product(n)
    rate = len(names) / (time.process_time() - t0)
    print(  # noqa: T201
        f"\nmapping throughput: {rate:,.0f} rows/s (CPU) over {len(names)} rows, "
        f"{mapper.cache_info()['size']} distinct"
    )
    assert rate >= 20_000


def test_cli_mapping_eval_prints_precision_recall_and_misses():
    from service.cli import app

    result = CliRunner().invoke(app, ["mapping", "eval", "--labels", str(LABELS)])
    assert result.exit_code == 0, result.output
    assert "precision" in result.output and "recall" in result.output and "F1" in result.output
    assert "confusion" in result.output


def test_cli_mapping_eval_reports_a_missing_label_file_cleanly(tmp_path):
    from service.cli import app

    result = CliRunner().invoke(app, ["mapping", "eval", "--labels", str(tmp_path / "none.tsv")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_a_segment_naming_the_chain_itself_is_read_for_chain_level_needs():
    """有机硅制品 (37%) names the 有机硅 chain, not one of its links: it counts for a chain-level need; a sliver, a
    trade phrase or a distributor does not (issue 20)."""
    from matcher.knowledge.chain_products import chain_named_products

    cat = default_catalogue()
    firm = Enterprise(
        id="x", name="某化工股份有限公司", sw_industry="有机硅",
        products=[Product(name="农药", share=0.54), Product(name="有机硅制品", share=0.37),
                  Product(name="有机硅深加工", share=0.01), Product(name="有机硅贸易", share=0.2)],
    )
    assert chain_named_products(cat, firm, "organosilicon", 0.02) == [("有机硅制品", 0.37)]
    trader = firm.model_copy(update={"sw_industry": "贸易Ⅲ"})
    assert chain_named_products(cat, trader, "organosilicon", 0.02) == []
    assert chain_named_products(cat, firm, "lithium_battery", 0.02) == []
    tianye = Enterprise(id="y", name="新疆天业", sw_industry="氯碱", products=[Product(name="番茄业", share=0.077)])
    assert chain_named_products(cat, tianye, "tomato", 0.02) == [("番茄业", 0.077)]  # an industry-named segment


def test_a_battery_pack_is_named_by_its_common_name(full_mapper):
    assert top(full_mapper, "动力锂电池组") == "battery_pack"
    assert full_mapper.map_product("锂电池组")[0].score >= 0.8
