"""Issue 15 targets, measured on the product's own path: with the A-share corpus loaded (``corpus import-a-share``
= A-share + embedded demo, merged in a real SQLite store), the 24 realistic requests and every demo region's
shortlist (top 10 gaps × top 10 firms) hold 0 fictional firms, 0 firms twice in one list (by stock code or
group) and 0 delisted firms unless asked for."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from evaluation.realistic import REALISTIC_REQUESTS
from matcher.knowledge.catalogue import default_catalogue
from matcher.knowledge.regions import default_regions
from matcher.ranking.recommendation import Filters, Recommendation, RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.store.ashare import load_ashare_corpus
from matcher.store.demo import load_demo_enterprises
from matcher.store.importer import default_mapper
from matcher.store.store import Store
from matcher.store.tenancy import ALL_TENANTS
from models.embedders import HashEmbedder

logger = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def fitted(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    mapper = default_mapper()
    firms = [e.model_copy(update={"links": mapper.map(e)}) for e in load_ashare_corpus(shared_data)]
    firms += [e.model_copy(update={"links": mapper.map(e)}) for e in load_demo_enterprises()]
    with Store(f"sqlite:///{tmp_path_factory.mktemp('hygiene') / 'store.db'}") as store:
        store.upsert_enterprises(firms)
        stored = list(store.iter_enterprises(ALL_TENANTS))
    assert len(stored) < len(firms)  # demo profiles of listed firms merged into their A-share records
    return Recommender(default_catalogue(), HashEmbedder()).fit(stored)


def _problems(rec: Recommender, r: Recommendation, label: str, delisted_ok: bool = False) -> list[str]:
    shown = [*r.candidates, *r.leads]  # the leads marked 待核实 are shown too
    rows = [rec.id_to_idx_[c.enterprise_id] for c in shown]
    out = [f"{label}: fictional {c.name}" for c in shown if c.fictional]
    if not delisted_ok:
        out += [f"{label}: delisted {c.name}" for c in shown if c.listing_status == "delisted"]
    codes = Counter(c.stock_code[:6] for c in shown if c.stock_code)
    groups = Counter(rec.group_[i] for i in rows)
    out += [f"{label}: stock code {s} twice" for s, n in codes.items() if n > 1]
    out += [f"{label}: group {g} twice" for g, n in groups.items() if n > 1]
    # a candidate listed as evidenced never leads with a 待核实 reason (session 9: 德方 for 磷酸铁 led with one)
    firsts = [(c, next((x for x in c.reasons if not x.startswith(("上市公司", "员工"))), "")) for c in r.candidates]
    out += [f"{label}: {c.name} leads with {first}" for c, first in firsts if "待核实" in first and not c.fictional]
    return out


def test_realistic_requests_list_no_fictional_duplicate_or_delisted_firm(fitted: Recommender):
    book = default_regions()
    problems, listed = [], 0
    for label, kw, chain, link in REALISTIC_REQUESTS:
        r = fitted.recommend(RecommendRequest(chain=chain, link=link, k=10, **kw), book)
        listed += len(r.candidates)
        problems += _problems(fitted, r, label)
    logger.info("24 realistic requests: %d firms listed", listed)
    assert listed >= 150  # the lists are not empty: the check below is about real output
    assert problems == [], "\n".join(problems)


def test_every_demo_region_shortlist_is_clean(fitted: Recommender):
    book = default_regions()
    problems, lists = [], 0
    for region in book:
        for r in fitted.recommend_region(region.id, book, k=10, max_gaps=10):
            lists += 1
            problems += _problems(fitted, r, f"{region.name}·{r.link_id}")
    assert lists >= 100 and problems == []


def test_delisted_firms_come_back_only_when_asked_for(fitted: Recommender):
    book = default_regions()
    asked = fitted.recommend(RecommendRequest(region="manas", chain="aluminium", link="氧化铝", k=50,
                                              filters=Filters(include_delisted=True)), book)  # fmt: skip
    default = fitted.recommend(RecommendRequest(region="manas", chain="aluminium", link="氧化铝", k=50), book)
    assert not any(c.listing_status == "delisted" for c in default.candidates)
    back = [c for c in asked.candidates if c.listing_status == "delisted"]
    assert back and all(any(x.startswith("已退市") for x in c.reasons) for c in back)
