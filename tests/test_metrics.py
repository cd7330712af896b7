"""Ranking metrics: hand-computed examples, agreement with ranx, coverage and diversity."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from evaluation.errors import QueryIdMismatchError, UnknownMetricError
from evaluation.metrics import (
    catalogue_coverage,
    evaluate,
    evaluate_per_query,
    intra_list_diversity,
    parse_metric,
    ranked_ids,
    recall_curve,
)

QRELS = {"q1": {"a": 1, "c": 1}, "q2": {"x": 1}}
RUN = {"q1": ["a", "b", "c", "d"], "q2": ["y", "z", "x"]}


def test_recall_precision_hit_mrr_match_hand_computation():
    got = evaluate(QRELS, RUN, ["recall@1", "recall@3", "precision@2", "hit@1", "hit@3", "mrr"])
    assert got["recall@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert got["recall@3"] == pytest.approx((1.0 + 1.0) / 2)
    assert got["precision@2"] == pytest.approx((1 / 2 + 0 / 2) / 2)
    assert got["hit@1"] == pytest.approx(0.5)
    assert got["hit@3"] == pytest.approx(1.0)
    assert got["mrr"] == pytest.approx((1.0 + 1 / 3) / 2)


def test_ndcg_and_map_match_hand_computation():
    per_query = evaluate_per_query(QRELS, RUN, ["ndcg@3", "map"])
    # q1: relevant at ranks 1 and 3 -> DCG = 1 + 1/log2(4); ideal = 1 + 1/log2(3)
    assert per_query["ndcg@3"]["q1"] == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert per_query["ndcg@3"]["q2"] == pytest.approx(1 / math.log2(4))
    assert per_query["map"]["q1"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert per_query["map"]["q2"] == pytest.approx(1 / 3)


def test_graded_relevance_uses_linear_gain():
    qrels = {"q": {"a": 2, "b": 1}}
    value = evaluate(qrels, {"q": ["b", "a"]}, "ndcg@2")["ndcg@2"]
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert value == pytest.approx(expected)


def test_score_dict_is_ranked_by_score_then_doc_id():
    assert ranked_ids({"b": 0.5, "a": 0.5, "c": 0.9}) == ["c", "a", "b"]
    assert evaluate({"q": {"a": 1}}, {"q": {"b": 0.5, "a": 0.5, "c": 0.9}}, "mrr")["mrr"] == pytest.approx(
        0.5
    )


def test_query_without_relevant_documents_scores_zero():
    assert evaluate({"q": {"a": 0}}, {"q": ["a"]}, ["recall@1", "mrr", "ndcg@1", "hit@1"]) == {
        "recall@1": 0.0,
        "mrr": 0.0,
        "ndcg@1": 0.0,
        "hit@1": 0.0,
    }


def test_evaluate_rejects_runs_with_other_query_ids():
    with pytest.raises(QueryIdMismatchError) as err:
        evaluate(QRELS, {"q1": ["a"], "q3": ["x"]}, "mrr")
    assert "q2" in str(err.value) and "q3" in str(err.value)


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(UnknownMetricError) as err:
        parse_metric("f1@10")
    assert "recall" in str(err.value) and "ndcg" in str(err.value)
    with pytest.raises(UnknownMetricError):
        parse_metric("recall@0")
    assert parse_metric("NDCG@10") == ("ndcg", 10)
    assert parse_metric("mrr") == ("mrr", None)


def test_recall_curve_equals_recall_at_each_cutoff():
    curve = recall_curve(QRELS, RUN, 4)
    for k in range(1, 5):
        assert curve[k - 1] == pytest.approx(evaluate(QRELS, RUN, f"recall@{k}")[f"recall@{k}"])


def _random_benchmark(seed: int, n_queries: int = 40, n_docs: int = 60):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        rel = rng.sample(docs, rng.randint(1, 4))
        qrels[f"q{q}"] = {d: rng.randint(1, 3) for d in rel}
        returned = rng.sample(docs, rng.randint(5, 30))
        scores = rng.sample(range(1, 10_000), len(returned))  # distinct scores: no tie-breaking differences
        run[f"q{q}"] = {d: float(s) for d, s in zip(returned, scores, strict=True)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_agree_with_ranx(seed):
    ranx = pytest.importorskip("ranx")
    qrels, run = _random_benchmark(seed)
    pairs = {
        "recall@5": "recall@5",
        "recall@20": "recall@20",
        "precision@5": "precision@5",
        "ndcg@10": "ndcg@10",
        "mrr": "mrr",
        "map@10": "map@10",
        "hit@3": "hit_rate@3",
    }
    ours = evaluate_per_query(qrels, run, list(pairs))
    theirs = ranx.evaluate(
        ranx.Qrels.from_dict(qrels), ranx.Run.from_dict(run), list(pairs.values()), return_mean=False
    )
    for i, (mine, other) in enumerate(pairs.items()):
        values = theirs[other] if isinstance(theirs, dict) else theirs[i]
        ranx_per_query = dict(zip(sorted(qrels), np.asarray(values).tolist(), strict=True))
        for q in qrels:
            assert ours[mine][q] == pytest.approx(ranx_per_query[q], abs=1e-6), (mine, q)


def test_catalogue_coverage_counts_distinct_documents_in_any_top_k():
    run = {"q1": ["a", "b", "z"], "q2": ["b", "c", "a"]}
    assert catalogue_coverage(run, ["a", "b", "c", "d", "e"], k=2) == pytest.approx(3 / 5)
    # "z" is not in the corpus
    assert catalogue_coverage(run, ["a", "b", "c", "d", "e"], k=3) == pytest.approx(3 / 5)


def test_intra_list_diversity_with_feature_sets_is_mean_pairwise_jaccard_distance():
    features = {"a": {"x", "y"}, "b": {"y", "z"}, "c": {"x", "y"}}
    run = {"q1": ["a", "b"], "q2": ["a", "c"]}
    # q1: 1 - 1/3; q2: identical sets -> 0
    assert intra_list_diversity(run, k=2, features=features) == pytest.approx((2 / 3 + 0) / 2)


def test_intra_list_diversity_with_vectors_is_mean_pairwise_cosine_distance():
    vectors = {"a": [1.0, 0.0], "b": [0.0, 2.0], "c": [3.0, 0.0]}
    run = {"q": ["a", "b", "c"]}
    # pairs: a-b 1, a-c 0, b-c 1
    assert intra_list_diversity(run, k=3, vectors=vectors) == pytest.approx(2 / 3)
    assert math.isnan(intra_list_diversity({"q": ["a"]}, k=3, vectors=vectors))
    with pytest.raises(ValueError):
        intra_list_diversity(run)
