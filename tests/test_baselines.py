"""Baseline ranking systems on the synthetic corpus."""

from __future__ import annotations

import pytest

from evaluation.baselines import BM25Ranker, PopularityRanker, RandomRanker, TfidfRanker, make_baselines
from evaluation.cases import CaseQuery
from evaluation.errors import UnknownSystemError
from evaluation.synthetic import make_synthetic_benchmark


@pytest.fixture(scope="module")
def bench():
    return make_synthetic_benchmark(n_cases=12, n_docs=150, seed=2)


def _query(text: str, case_id: str = "Q") -> CaseQuery:
    return CaseQuery(case_id, "新疆", None, None, "", "unknown", "", text)


def test_random_ranking_is_reproducible_per_query_and_seed(bench):
    r = RandomRanker(bench.docs, seed=5)
    q = bench.cases[0].query
    assert r(q, 10) == r(q, 10)
    assert r(q, 10) != RandomRanker(bench.docs, seed=6)(q, 10)
    assert len({d for d, _ in r(q, 150)}) == 150


def test_popularity_ranks_by_employees(bench):
    ranking = PopularityRanker(bench.docs)(bench.cases[0].query, 5)
    sizes = [bench.docs[d]["employees"] for d, _ in ranking]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == max(d["employees"] for d in bench.docs.values())


@pytest.mark.parametrize("cls", [TfidfRanker, BM25Ranker])
def test_text_baselines_put_a_doc_making_the_product_above_unrelated_ones(bench, cls):
    ranker = cls(bench.docs)
    target = next(d for d, doc in bench.docs.items() if doc["products"][0][0] == "风电塔筒")
    ranking = ranker(_query("风电装备 风电塔筒 年产风电塔筒项目"), 20)
    top_products = {bench.docs[d]["products"][0][0] for d, *_ in ranking[:3]}
    assert "风电塔筒" in top_products
    assert target in [d for d, *_ in ranking]
    assert all(len(item) == 3 and item[2] for item in ranking[:3])  # (doc_id, score, why)


def test_bm25_query_without_known_tokens_returns_zero_scores(bench):
    ranking = BM25Ranker(bench.docs)(_query("zzqx"), 5)
    assert len(ranking) == 5 and all(score == 0.0 for _, score, _ in ranking)


def test_make_baselines_rejects_unknown_names(bench):
    with pytest.raises(UnknownSystemError, match="tfidf"):
        make_baselines(bench.docs, ["tfidf", "dense"])
