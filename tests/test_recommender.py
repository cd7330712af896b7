"""Recommender behaviour on hand-built corpora where the right candidate is known."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from matcher.errors import (
    InvalidRequestError,
    NotFittedError,
    UnknownChainError,
    UnknownLinkError,
    UnknownRegionError,
)
from matcher.knowledge.catalogue import load_catalogue
from matcher.knowledge.regions import RegionBook
from matcher.ranking.recommendation import Filters, RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.records import Enterprise, Product, Region, Resident
from models.embedders import HashEmbedder

CHAIN = """
id: alu
name: 铝产业链
aliases: [铝]
links:
  - {id: alumina, name: 氧化铝, stage: 上游, aliases: [冶金级氧化铝]}
  - {id: smelt, name: 电解铝, stage: 中游, aliases: [铝水, 原铝, 铝锭]}
  - {id: rod, name: 铝棒, stage: 中游, aliases: [铝合金圆棒]}
  - {id: profile, name: 铝型材, stage: 下游, aliases: [工业铝型材, 建筑铝型材]}
edges:
  - {from: alumina, to: smelt, flow: 氧化铝}
  - {from: smelt, to: rod, flow: 铝水}
  - {from: rod, to: profile, flow: 铝棒}
"""


def ent(i: int, name: str, products: list[tuple[str, float]], province: str = "江苏", employees: int = 800, **kw):
    return Enterprise(
        id=f"e{i}", name=name, province=province, employees=employees,
        products=[Product(name=p, share=s) for p, s in products], **kw,
    )


@pytest.fixture()
def catalogue(tmp_path: Path):
    d = tmp_path / "chains"
    d.mkdir()
    (d / "alu.yaml").write_text(CHAIN, encoding="utf-8")
    return load_catalogue(d)


@pytest.fixture()
def corpus():
    return [
        ent(1, "甲铝棒制造有限公司", [("铝棒", 0.8), ("铝型材", 0.2)], province="江西"),
        # shares words with the need but makes something else entirely
        ent(2, "乙铝棒球器材有限公司", [("棒球器材", 0.9), ("体育用品", 0.1)], scope="铝棒球棒、体育器材销售"),
        ent(3, "丙型材科技股份有限公司", [("工业铝型材", 0.7)], province="广东", employees=5000),
        ent(4, "丁氧化铝有限公司", [("氧化铝", 1.0)], province="山西"),
        ent(5, "新疆嘉润资源控股有限公司", [("电解铝", 0.9)], province="新疆"),
        ent(6, "戊乳业有限公司", [("液态奶", 0.8)], province="内蒙古"),
        ent(7, "甲铝棒制造（江苏）有限公司", [("铝棒", 0.6)], province="江苏", parent_group="甲铝棒集团"),
        ent(8, "己铝棒有限公司", [("铝合金圆棒", 0.5)], province="江苏", parent_group="甲铝棒集团"),
    ]


@pytest.fixture()
def book():
    manas = Region(
        id="manas", name="玛纳斯县", level="县市", province="新疆", target_chains=["alu"], aiding=["江苏"],
        residents=[Resident(name="新疆嘉润资源控股有限公司", links=["smelt"], chain_master=True, capacity="铝水20万吨")],
    )
    return RegionBook([manas])


@pytest.fixture()
def rec(catalogue, corpus):
    return Recommender(catalogue, HashEmbedder()).fit(corpus)


def ids(result):
    return [c.enterprise_id for c in result.candidates]


def test_supplier_of_the_chain_master_outranks_a_firm_with_similar_words(rec, book):
    r = rec.recommend(RecommendRequest(region="玛纳斯县", chain="alu", link="rod", k=5), book)
    order = ids(r)
    assert order[0] in {"e1", "e7", "e8"}
    # e2 only shares words with the need: below the evidence bar it is not listed, and the short list says so
    assert "e2" not in order
    assert r.below_evidence_bar >= 1 and len(order) < 5 and r.note and r.note.startswith(f"仅找到 {len(order)} 家")
    weighted = copy.copy(rec)
    weighted.evidence_bar = False
    r2 = weighted.recommend(RecommendRequest(region="玛纳斯县", chain="alu", link="rod", k=5), book)
    order2 = ids(r2)
    assert "e2" in order2 and all(order2.index(i) < order2.index("e2") for i in ("e1", "e7", "e8") if i in order2)
    assert r2.candidates[order2.index("e2")].evidence_strength == "weak"
    top = r.candidates[0]
    assert top.link_id == "rod" and top.evidence_strength == "strong"
    assert top.chain_master_relation and "嘉润" in top.chain_master_relation


def test_resident_is_never_recommended_to_fill_a_gap(rec, book):
    for link in ("alumina", "rod", "profile", None):
        r = rec.recommend(RecommendRequest(region="manas", chain="alu", link=link, gap_type="补链", k=8), book)
        assert "e5" not in ids(r)
        assert r.excluded_residents == 1


def test_a_chain_need_of_no_stated_type_lists_the_resident_first_marked_local(rec, book):
    """Realistic judgement s10: 克拉玛依·石化 without 独山子 or 克石化. A chain-level need that does not say 补链/延链
    lists the region's own makers of the chain first, marked 已在本地布局, then the newcomers for its gaps."""
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", k=8), book)
    assert ids(r)[0] == "e5" and r.candidates[0].local_presence and r.excluded_residents == 0
    assert r.candidates[0].reasons[1].startswith("已在本地布局")
    assert not any(c.local_presence for c in r.candidates[1:])


def test_group_dedupe_keeps_one_firm_per_group(rec, book):
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", link="rod", k=8), book)
    assert not {"e7", "e8"} <= set(ids(r))


def test_filters_always_hold(rec, book):
    r = rec.recommend(
        RecommendRequest(region="manas", chain="alu", link="rod", k=8, filters=Filters(provinces=["江苏省"])), book
    )
    assert r.candidates and all(c.province == "江苏" for c in r.candidates)
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", k=8, filters=Filters(size=["大"])), book)
    assert ids(r) == ["e3"]
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", k=8, filters=Filters(exclude_ids=["e1"])), book)
    assert "e1" not in ids(r)
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", link="rod", k=8, filters=Filters(aiding_only=True)), book)
    assert r.candidates and all(c.province == "江苏" for c in r.candidates)


def test_explanations_name_real_evidence(rec, book, corpus):
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", link="rod", k=3), book)
    by_id = {e.id: e for e in corpus}
    for c in r.candidates:
        products = {p.name for p in by_id[c.enterprise_id].products}
        for name, share in c.matched_products:
            assert name in products
        assert c.reasons
        assert abs(sum(c.contributions.values()) - c.score) < 1e-3
    aided = [c for c in r.candidates if c.province == "江苏"]
    assert aided and all(c.aiding and "援疆" in c.aiding for c in aided)


def test_upstream_gap_finds_the_input_maker(rec, book):
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", link="alumina", k=3), book)
    assert ids(r)[0] == "e4"
    assert "供应" in (r.candidates[0].chain_master_relation or "")


def test_free_text_need_with_ad_hoc_region(rec):
    r = rec.recommend(RecommendRequest(province="新疆", prefecture="昌吉州", text="引进工业铝型材企业", k=3))
    assert ids(r)[0] == "e3"
    assert r.region_name == "昌吉州"


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"region": "不存在县", "chain": "alu"}, UnknownRegionError),
        ({"region": "manas", "chain": "不存在链"}, UnknownChainError),
        ({"region": "manas", "chain": "alu", "link": "不存在环节"}, UnknownLinkError),
        ({"region": "manas"}, InvalidRequestError),
    ],
)
def test_bad_requests_give_clear_errors(rec, book, kwargs, error):
    with pytest.raises(error):
        rec.recommend(RecommendRequest(**kwargs), book)


@pytest.mark.parametrize("k", [0, -1, 10_000])
def test_k_out_of_range_is_rejected(k):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="k"):
        RecommendRequest(chain="alu", k=k)


def test_unfitted_recommender_says_so(catalogue):
    with pytest.raises(NotFittedError):
        Recommender(catalogue, HashEmbedder()).recommend(RecommendRequest(chain="alu"))


def test_update_adds_replaces_and_removes_without_refit(rec, book):
    new = ent(9, "庚铝棒新材料有限公司", [("铝棒", 0.95)], province="江苏", employees=3000)
    rec.update([new], removals=["e1"])
    r = rec.recommend(RecommendRequest(region="manas", chain="alu", link="rod", k=8), book)
    assert "e9" in ids(r) and "e1" not in ids(r)
    assert len(rec.vindex_) == 8


def test_whole_region_returns_a_shortlist_per_gap(rec, book):
    out = rec.recommend_region("玛纳斯县", book, k=3)
    links = [r.link_id for r in out]
    assert {"rod", "alumina", "profile"} <= set(links)
    assert all(len(r.candidates) <= 3 for r in out)


def test_whole_region_embeds_its_gap_queries_in_one_batch(catalogue, corpus, book):
    class Counting(HashEmbedder):
        calls: list[int] = []

        def encode_queries(self, texts):
            self.calls.append(len(texts))
            return super().encode_queries(texts)

    emb = Counting()
    rec = Recommender(catalogue, emb).fit(corpus)
    out = rec.recommend_region("manas", book, k=3)
    assert len(out) >= 3
    assert emb.calls == [len({(r.chain_id, r.link_id) for r in out})]  # one batch, no per-gap call


def test_gap_index_fits_an_enterprise_to_the_region_whose_gap_it_fills(catalogue, corpus, book):
    from matcher.ranking.fit import GapIndex

    gi = GapIndex(catalogue, HashEmbedder()).build(book)
    assert len(gi) > 0
    rec = Recommender(catalogue, HashEmbedder()).fit(corpus)  # maps the corpus' links
    rod_maker = next(e for e in rec.enterprises_ if e.id == "e1")
    fits = gi.fit(rod_maker, k=3)
    assert fits[0].region_id == "manas" and fits[0].gap.link_id in {"rod", "profile"}
    assert fits[0].parts["link_fit"] == 1.0 and any("铝棒" in r for r in fits[0].reasons)
    # a region change is reflected without rebuilding everything
    book.regions["manas"].residents[0].links.append("rod")
    gi.update_region("manas", book)
    assert all(f.gap.link_id != "rod" for f in gi.fit(rod_maker, k=5))
