"""Time-aware signals in the evaluation (#19 item 4): a case sees only strictly earlier events of other cases,
never its own record — checked down to the feature rows the ranker scores."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from evaluation.cases import Case
from evaluation.signal_history import annotate_history, case_as_of, case_view, deal_events, fold_weights
from evaluation.training import case_pools
from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.recommender import Recommender
from matcher.ranking.scoring import FEATURES
from matcher.ranking.signals_features import SIGNAL_FEATURES
from matcher.records import Enterprise, Product
from models.embedders import HashEmbedder


def case(cid: str, code: str, when: str | None, province: str = "新疆") -> Case:
    return Case(id=cid, region_province=province, chain="铝", product_link="电解铝", project="年产电解铝项目",
                stock_code=code, in_corpus=True, date=when, source=f"https://news.example/{cid}")


@pytest.fixture()
def rec() -> Recommender:
    corpus = [
        Enterprise(id=f"ashare-60000{i}", name=f"{n}铝业股份有限公司", province="山东", employees=3000,
                   stock_code=f"60000{i}", products=[Product(name="电解铝", share=0.9)])
        for i, n in enumerate("甲乙丙丁")
    ]
    return Recommender(default_catalogue(), HashEmbedder()).fit(corpus)


def test_view_is_strictly_earlier_and_never_own() -> None:
    cases = [case("A", "600000", "2020-01"), case("B", "600000", "2022-05"), case("C", "600001", "2022-05"),
             case("U", "600000", None)]
    events = deal_events(cases, default_catalogue_mapper())
    assert {e.id for e in events} == {"deal:A", "deal:B", "deal:C"}  # undated: no event
    assert case_as_of(cases[1]) == date(2022, 5, 1)
    assert [e.id for e in case_view(events, cases[0])] == []
    assert [e.id for e in case_view(events, cases[1])] == ["deal:A"]  # same-month C is not earlier
    assert case_view(events, cases[3]) == []  # undated: sees nothing
    assert annotate_history(cases, events) == {"A": False, "B": True, "C": False, "U": False}
    assert cases[1].slices["signal_history"] == "yes"


def default_catalogue_mapper():
    from matcher.knowledge.mapping import LinkMapper

    return LinkMapper(default_catalogue())


def test_own_record_cannot_reach_its_features(rec: Recommender) -> None:
    sig = [FEATURES.index(f) for f in SIGNAL_FEATURES]
    alone = [case("A", "600002", "2022-05")]
    events = deal_events(alone, rec.mapper)
    assert events and events[0].enterprise_id == "ashare-600002"
    (pool,) = case_pools(rec, alone, signal_events=events)
    row = pool["ids"].index("ashare-600002")
    assert pool["labels"][row] == 1
    assert not pool["F"][:, sig].any()  # its own (and only) record reaches no feature of any candidate
    # an earlier deal of the same firm does reach it
    both = [case("E", "600002", "2021-03"), *alone]
    pools = case_pools(rec, both, signal_events=deal_events(both, rec.mapper))
    later = next(p for p in pools if p["case_id"] == "A")
    assert later["F"][later["ids"].index("ashare-600002"), sig].max() > 0
    earlier = next(p for p in pools if p["case_id"] == "E")
    assert not earlier["F"][:, sig].any()  # the later deal never reaches the earlier case


def test_fold_weights_are_chosen_out_of_fold(rec: Recommender) -> None:
    cases = [case(f"X{i}", f"60000{i % 4}", f"202{i // 4}-0{1 + i % 4}") for i in range(12)]
    pools = case_pools(rec, cases, signal_events=deal_events(cases, rec.mapper))
    chosen = fold_weights(pools, rec.weights.vector(), list(FEATURES), [c.stock_code for c in cases], n_splits=4)
    assert set(chosen) == {c.id for c in cases}
    assert all(w.shape == (len(FEATURES),) and np.all(w >= 0) for w in chosen.values())
