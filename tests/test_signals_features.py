"""Expansion-signal features (#19 item 2): recency weighting, chain / link / neighbour / province matches, group
events, nothing on or after ``as_of``; and the recommender's sig_* columns and their weight."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from matcher.knowledge.catalogue import load_catalogue
from matcher.ranking.recommendation import RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.ranking.scoring import FEATURES, ScoringWeights
from matcher.ranking.signals_features import SIGNAL_FEATURES, SignalBook, SignalNeed
from matcher.records import Enterprise, Product
from matcher.store.signals import SignalEvent, SignalSource
from models.embedders import HashEmbedder

CHAIN = """
id: alu
name: 铝产业链
links:
  - {id: alumina, name: 氧化铝, stage: 上游}
  - {id: smelt, name: 电解铝, stage: 中游, aliases: [原铝, 铝锭]}
  - {id: rod, name: 铝棒, stage: 中游, aliases: [铝合金圆棒]}
  - {id: profile, name: 铝型材, stage: 下游}
edges:
  - {from: alumina, to: smelt, flow: 氧化铝}
  - {from: smelt, to: rod, flow: 铝水}
  - {from: rod, to: profile, flow: 铝棒}
"""
SRC = [SignalSource(url="https://a.example/1")]


@pytest.fixture()
def catalogue(tmp_path: Path):
    d = tmp_path / "chains"
    d.mkdir()
    (d / "alu.yaml").write_text(CHAIN, encoding="utf-8")
    return load_catalogue(d)


def ev(firm: str, day: date, link: str | None = "rod", province: str = "新疆", **kw) -> SignalEvent:
    return SignalEvent(id=f"{firm}{day}{link}", enterprise_id=firm, firm=firm, day=day, kind=kw.pop("kind", "签约"),
                       link_id=link, province=province, sources=SRC, **kw)


def col(name: str) -> int:
    return SIGNAL_FEATURES.index(name)


def test_counts_by_match_recency_and_cutoff(catalogue) -> None:
    book = SignalBook(
        [
            ev("a", date(2022, 6, 1)),  # same link, same province
            ev("b", date(2022, 6, 1), link="smelt", province="江苏"),  # neighbouring link, other province
            ev("c", date(2015, 6, 1)),  # old: decayed
            ev("d", date(2023, 6, 1)),  # on the need's day: must not count
            ev("e", date(2022, 6, 1), kind="考察"),  # not an expansion
            ev("f", date(2022, 6, 1), amount=500_000),  # 50 亿元
        ],
        catalogue,
        half_life_days=365,
    )
    need = SignalNeed("alu", "rod", "新疆", date(2023, 6, 1))
    F = book.features([(x, None) for x in "abcdefz"], need)
    a, b, c, d, e, f, z = F
    assert a[col("sig_link")] > b[col("sig_link")] > 0 and b[col("sig_province")] == 0 and a[col("sig_province")] > 0
    assert a[col("sig_chain")] == pytest.approx(b[col("sig_chain")])
    assert 0 < c[col("sig_any")] < a[col("sig_any")] / 5
    assert not d.any() and not e.any() and not z.any()
    assert f[col("sig_amount")] > 0.5 and a[col("sig_amount")] == 0
    # strictly before: an event dated the need's day never counts, one day later it does
    later = book.features([("d", None)], SignalNeed("alu", "rod", "新疆", date(2023, 6, 2)))
    assert later[0, col("sig_any")] > 0


def test_group_events_count_half(catalogue) -> None:
    group_event = ev("x", date(2022, 1, 1)).model_copy(update={"group": "某集团"})
    book = SignalBook([group_event], catalogue)
    need = SignalNeed("alu", "rod", None, date(2023, 1, 1))
    own, sibling, outsider = book.features([("x", "某集团"), ("y", "某集团"), ("z", None)], need)
    assert own[col("sig_any")] > sibling[col("sig_any")] > 0 and not outsider.any()


def test_recommender_columns_and_weight(catalogue) -> None:
    corpus = [
        Enterprise(id=f"e{i}", name=f"{n}铝棒有限公司", province="江苏", employees=800,
                   products=[Product(name="铝棒", share=0.8)])
        for i, n in enumerate("甲乙丙丁")
    ]
    rec = Recommender(catalogue, HashEmbedder()).fit(corpus)
    req = RecommendRequest(chain="alu", link="rod", province="新疆", k=4, as_of=date(2023, 1, 1))
    before = [c.enterprise_id for c in rec.recommend(req).candidates]
    last = before[-1]
    rec.signals = SignalBook([ev(last, date(2022, 10, 1))], catalogue)
    cands = rec.recommend(req).candidates
    assert {c.enterprise_id: c.features["sig_link"] for c in cands}[last] > 0
    assert [c.enterprise_id for c in cands] == before  # weight 0 by default: same ranking
    rec.blend = rec.blend.model_copy(update={"sig_link": 20.0})  # the shipped blend with a (large) signal weight
    assert rec.recommend(req).candidates[0].enterprise_id == last
    rec.blend = rec.blend.model_copy(update={"sig_link": 0.0})
    rec.scorer, rec.weights = "weighted", ScoringWeights(sig_link=1.0)  # and the transparent weighted sum
    assert rec.recommend(req).candidates[0].enterprise_id == last
    # the event is dated after as_of: nothing
    early = req.model_copy(update={"as_of": date(2022, 10, 1)})
    assert all(c.features["sig_link"] == 0 for c in rec.recommend(early).candidates)
    assert set(SIGNAL_FEATURES) <= set(FEATURES)


def test_reasons_cite_earlier_events_with_sources(catalogue) -> None:
    corpus = [Enterprise(id="e1", name="甲铝棒有限公司", province="江苏", products=[Product(name="铝棒", share=0.8)])]
    rec = Recommender(catalogue, HashEmbedder()).fit(corpus)
    rec.signals = SignalBook(
        [ev("e1", date(2022, 5, 3), region="甘肃", product="年产10万吨铝棒项目", amount=150_000),
         ev("e1", date(2024, 1, 1), product="未来的项目")],
        catalogue,
    )
    req = RecommendRequest(chain="alu", link="rod", k=1, as_of=date(2023, 1, 1))
    (cand,) = rec.recommend(req).candidates
    assert len(cand.signals) == 1 and cand.signals[0].month == "2022-05"
    assert cand.signals[0].urls == ["https://a.example/1"]
    text = cand.signals[0].text
    assert text.startswith("2022-05 在甘肃签约") and "年产10万吨铝棒项目" in text and "15 亿元" in text and "来源" in text
    assert any(r.startswith("近期扩张：2022-05") for r in cand.reasons)
    assert "未来的项目" not in " ".join(cand.reasons)


def test_filter_recent_expansion(catalogue) -> None:
    from matcher.ranking.recommendation import Filters

    corpus = [
        Enterprise(id=f"e{i}", name=f"{n}铝棒有限公司", province="江苏", products=[Product(name="铝棒", share=0.8)],
                   parent_group="某集团" if i == 3 else None)
        for i, n in enumerate("甲乙丙丁")
    ]
    rec = Recommender(catalogue, HashEmbedder()).fit(corpus)
    rec.signals = SignalBook(
        [ev("e0", date(2022, 6, 1)), ev("e1", date(2019, 6, 1)), ev("e2", date(2023, 6, 1)),
         ev("x", date(2022, 1, 1)).model_copy(update={"group": "某集团"})],
        catalogue,
    )
    req = RecommendRequest(chain="alu", link="rod", k=4, as_of=date(2023, 1, 1),
                           filters=Filters(recent_expansion=True))
    # e0 within two years; e1 too old; e2 after as_of; e3 through its group's event
    assert {c.enterprise_id for c in rec.recommend(req).candidates} == {"e0", "e3"}
    rec.signals = None
    assert rec.recommend(req).candidates == []


def test_a_firm_expanding_in_the_chain_is_an_expansion_candidate(catalogue) -> None:
    """A recent event in the need's chain clears the expansion bar (sig_chain ≥ 0.3), for a link and for a
    chain-level need; without signals (or with an event after as_of) it does not."""
    corpus = [
        Enterprise(id="maker", name="甲铝型材有限公司", province="江苏", products=[Product(name="铝型材", share=0.9)]),
        Enterprise(id="mover", name="乙电子有限公司", province="江苏", products=[Product(name="电子元件", share=0.9)]),
    ]
    rec = Recommender(catalogue, HashEmbedder()).fit(corpus)
    req = RecommendRequest(chain="alu", link="rod", k=5, as_of=date(2023, 1, 1))
    assert "mover" not in {c.enterprise_id for c in rec.recommend(req).expansions}
    rec.signals = SignalBook([ev("mover", date(2022, 6, 1), link="smelt")], catalogue)
    r = rec.recommend(req)
    assert "mover" in {c.enterprise_id for c in r.expansions} and "mover" not in {c.enterprise_id for c in r.candidates}
    chain_level = rec.recommend(req.model_copy(update={"link": None}))
    assert "mover" in {c.enterprise_id for c in chain_level.expansions}
    early = rec.recommend(req.model_copy(update={"as_of": date(2022, 6, 1)}))
    assert "mover" not in {c.enterprise_id for c in early.expansions}
