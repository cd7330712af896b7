"""Deals cases: loading, masking of the investor's names, not-evaluable accounting, qrels and slices."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest

from evaluation.cases import (
    MASK,
    Case,
    CaseQuery,
    build_qrels,
    chain_family,
    load_cases,
    mask_names,
    name_variants,
    split_evaluable,
)
from evaluation.errors import CaseFileError


@pytest.fixture()
def deals(shared_data: Path) -> list[Case]:
    return load_cases(shared_data / "deals" / "deals_dev.jsonl")


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s)


def test_masked_query_text_of_every_dev_case_contains_neither_enterprise_nor_listed_parent(deals):
    for case in deals:
        q = case.query
        for text in (q.project, q.product_link, q.region_county_or_park or "", q.text):
            for name in (case.enterprise, case.listed_parent):
                if name:
                    assert _nfkc(name) not in text, (case.id, name, text)
            for variant in name_variants(case.enterprise) | name_variants(case.listed_parent):
                assert variant not in text, (case.id, variant, text)


def test_query_carries_no_enterprise_field():
    query_fields = {f.name for f in fields(CaseQuery)}
    enterprise_fields = {
        "enterprise",
        "listed_parent",
        "stock_code",
        "in_corpus",
        "relation_to_listed",
        "parent_link_source",
        "amount_cny",
        "source",
        "evidence",
        "chain_master_self_expansion",
    }
    assert not query_fields & enterprise_fields


def test_masking_replaces_full_legal_and_short_forms():
    text = "深圳市德方纳米科技股份有限公司与德方纳米、曲靖德方及其子公司签约,通威股份有限公司(通威)跟进"
    masked = mask_names(text, ["深圳市德方纳米科技股份有限公司", "通威股份"])
    assert masked == f"{MASK}与{MASK}、曲靖{MASK}及其子公司签约,{MASK}({MASK})跟进"


def test_masking_leaves_region_and_industry_words_alone():
    masked = mask_names("新疆昌吉州新能源科技产业园年产10万吨锂电材料", ["新疆中泰新能源科技有限公司"])
    assert masked == "新疆昌吉州新能源科技产业园年产10万吨锂电材料"
    assert "新疆" not in name_variants("新疆中泰化学股份有限公司")
    assert "中泰" in name_variants("新疆中泰化学股份有限公司")


def test_dev_cases_not_in_corpus_are_counted_with_a_reason(deals):
    evaluable, skipped = split_evaluable(deals)
    assert len(evaluable) + len(skipped) == len(deals)
    assert len(evaluable) == sum(1 for c in deals if c.in_corpus and c.stock_code)
    assert all(reason for _, reason in skipped)
    assert {c.id for c, _ in skipped} == {c.id for c in deals if not c.in_corpus}


def test_dev_counts_match_the_data_readme(deals):
    evaluable, _ = split_evaluable(deals)
    assert (len(deals), len(evaluable)) == (59, 34)  # README: 59 cases, 34 in corpus
    regions = Counter(c.slices["region"] for c in deals)
    assert regions["xinjiang"] == 26
    assert sum(c.slices["self_expansion"] == "yes" for c in deals) == 10


def test_qrels_point_at_ashare_ids_of_evaluable_cases_only(deals):
    qrels = build_qrels(deals)
    assert set(qrels) == {c.id for c in deals if c.evaluable}
    for case_id, rels in qrels.items():
        case = next(c for c in deals if c.id == case_id)
        assert rels == {f"ashare-{case.stock_code}": 1}


def test_case_flagged_in_corpus_without_stock_code_is_not_evaluable():
    case = Case.from_dict(
        {
            "id": "X1",
            "region_province": "新疆",
            "chain": "风电装备",
            "product_link": "塔筒",
            "project": "塔筒项目",
            "in_corpus": True,
            "stock_code": None,
        }
    )
    assert not case.evaluable
    assert case.not_evaluable_reason == "no stock_code"
    assert build_qrels([case]) == {}


@pytest.mark.parametrize(
    ("chain", "family"),
    [
        ("铜基新材料/锂电", "有色金属"),
        ("磷化工/锂电池材料", "锂电"),
        ("风电装备/输变电", "风电装备"),
        ("光伏/硅基新材料", "光伏/硅基"),
        ("纺织服装/化纤", "纺织化纤"),
        ("氯碱化工", "煤化工/石化"),
        ("电子材料/电极箔", "电子材料"),
        ("输变电装备", "输变电"),
        ("氢能", "氢能"),
        ("塑料管材/新型建材", "other"),
    ],
)
def test_chain_family_reads_the_main_chain_first(chain, family):
    assert chain_family(chain) == family


def test_dev_chain_families_match_the_readme_grouping(deals):
    families = Counter(c.slices["chain_family"] for c in deals)
    # README: 风电 11, 光伏 11, 纺织 8, 煤化工 5, 有色 4, 电子材料 3, 输变电 1, 氢能 1, other 1;
    # 锂电 13 + the one 磷化工/锂电池材料 case, which this grouping files under 锂电
    assert families == {
        "锂电": 14,
        "风电装备": 11,
        "光伏/硅基": 11,
        "纺织化纤": 8,
        "煤化工/石化": 5,
        "有色金属": 4,
        "电子材料": 3,
        "输变电": 1,
        "氢能": 1,
        "other": 1,
    }


def _write(tmp_path: Path, rows: list) -> Path:
    p = tmp_path / "cases.jsonl"
    p.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows),
        encoding="utf-8",
    )
    return p


def test_load_cases_reports_missing_fields_with_line_number(tmp_path):
    ok = {"id": "A", "region_province": "新疆", "chain": "c", "product_link": "p", "project": "x"}
    path = _write(tmp_path, [ok, {"id": "B", "chain": "c"}])
    with pytest.raises(CaseFileError) as err:
        load_cases(path)
    assert ":2:" in str(err.value) and "region_province" in str(err.value)


def test_load_cases_rejects_bad_json_duplicates_and_missing_files(tmp_path):
    ok = {"id": "A", "region_province": "新疆", "chain": "c", "product_link": "p", "project": "x"}
    with pytest.raises(CaseFileError, match="invalid JSON"):
        load_cases(_write(tmp_path, [ok, "{not json"]))
    with pytest.raises(CaseFileError, match="duplicate"):
        load_cases(_write(tmp_path, [ok, ok]))
    with pytest.raises(CaseFileError, match="not found"):
        load_cases(tmp_path / "nope.jsonl")
    with pytest.raises(CaseFileError, match="6 digits"):
        load_cases(_write(tmp_path, [{**ok, "stock_code": "12ab"}]))


def test_load_cases_accepts_a_json_array(tmp_path):
    p = tmp_path / "cases.json"
    p.write_text(
        json.dumps(
            [
                {
                    "id": "A",
                    "region_province": "新疆",
                    "chain": "c",
                    "product_link": "p",
                    "project": "x",
                    "stock_code": "600438.SH",
                    "in_corpus": True,
                }
            ]
        ),
        encoding="utf-8",
    )
    (case,) = load_cases(p)
    assert case.doc_id == "ashare-600438" and case.evaluable
