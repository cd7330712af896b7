"""Harness end to end on the synthetic benchmark: metrics against closed-form values, outputs, report."""

from __future__ import annotations

import json
import re

import pytest

from evaluation.baselines import make_baselines
from evaluation.errors import SystemOutputError, UnknownSystemError
from evaluation.harness import run_evaluation
from evaluation.report import write_outputs
from evaluation.synthetic import (
    check_against_expected,
    expected_metrics,
    make_synthetic_benchmark,
    reference_systems,
)


@pytest.fixture(scope="module")
def bench():
    return make_synthetic_benchmark(n_cases=24, n_docs=180, n_not_in_corpus=3, seed=1)


@pytest.fixture(scope="module")
def result(bench):
    systems = {**reference_systems(bench), **make_baselines(bench.docs, ["random", "tfidf"])}
    return run_evaluation(
        bench.cases, systems, k_max=100, baseline="tfidf", docs=bench.docs, n_resamples=2000
    )


def test_reference_systems_score_their_closed_form_values(bench, result):
    measured = {n: s.metrics for n, s in result.systems.items()}
    assert check_against_expected(measured, expected_metrics(bench)) == []
    assert measured["oracle"]["recall@10"] == 1.0 and measured["reversed"]["recall@100"] == 0.0


def test_cases_outside_the_corpus_are_counted_not_scored(bench, result):
    assert result.n_cases == 27 and result.n_in_corpus == 24
    assert [r["case_id"] for r in result.not_evaluable] == [c.id for c in bench.cases if not c.in_corpus]


def test_metrics_json_has_exactly_the_agreed_shape(result, tmp_path):
    paths = write_outputs(result, tmp_path)
    doc = json.loads(paths["metrics"].read_text(encoding="utf-8"))
    assert set(doc) == {"environment", "protocol", "n_cases", "n_in_corpus", "systems", "significance", "slices", "misses"}
    assert set(doc["systems"]) == {"oracle", "reversed", "stepped", "random", "tfidf"}
    for metrics in doc["systems"].values():
        assert {
            "recall@10",
            "recall@50",
            "recall@100",
            "ndcg@10",
            "mrr",
            "hit@1",
            "coverage@10",
            "diversity@10",
        } <= set(metrics)
    assert "tfidf" not in doc["significance"]
    for sig in doc["significance"].values():
        assert sig["vs"] == "tfidf" and sig["metric"] == "recall@50"
        assert 0.0 < sig["p_value"] <= 1.0 and isinstance(sig["delta"], float)
    assert set(doc["slices"]) == {"region", "chain_family", "self_expansion", "confidence", "signal_history"}
    for groups in doc["slices"].values():
        assert sum(g["n"] for g in groups.values()) == doc["n_in_corpus"]
    per_query = json.loads(paths["per_query"].read_text(encoding="utf-8"))
    assert len(per_query["cases"]) == doc["n_in_corpus"]
    assert len(per_query["recall_curves"]["oracle"]) == 100


def test_oracle_beats_the_baseline_significantly_and_reversed_loses(result):
    assert result.significance["oracle"]["tests"]["mrr"]["delta"] > 0
    assert result.significance["oracle"]["tests"]["mrr"]["p_value"] < 0.01
    assert result.significance["reversed"]["tests"]["recall@50"]["delta"] < 0
    assert result.significance["reversed"]["p_value"] < 0.01


def test_misses_list_rank_and_top_three_with_the_systems_explanation(result):
    reversed_misses = [m for m in result.misses if m["system"] == "reversed"]
    assert len(reversed_misses) == result.n_in_corpus
    assert all(m["rank"] is None and len(m["top3"]) == 3 for m in reversed_misses)
    assert reversed_misses[0]["top3"][0]["why"] == "reversed rank 1"
    stepped = {m["case_id"]: m["rank"] for m in result.misses if m["system"] == "stepped"}
    assert stepped and all(rank > 10 for rank in stepped.values())
    assert not [m for m in result.misses if m["system"] == "oracle"]


def test_report_is_self_contained_with_every_plot(result, tmp_path):
    html = write_outputs(result, tmp_path)["report"].read_text(encoding="utf-8")
    for div in (
        "recall-curve",
        "slice-region",
        "slice-chain_family",
        "slice-self_expansion",
        "slice-confidence",
    ):
        assert f'id="{div}"' in html
    assert not re.search(r"<script[^>]+src=[\"']?https?://", html, flags=re.I)
    assert not re.search(r"<link[^>]+href=[\"']?https?://", html, flags=re.I)
    assert html.count("Plotly.newPlot") >= 5
    assert len(html) > 1_000_000  # plotly.js is inlined
    assert "Significance vs tfidf" in html and "Misses" in html and "Not evaluable" in html


def test_unknown_baseline_is_rejected(bench):
    with pytest.raises(UnknownSystemError, match="bm25"):
        run_evaluation(bench.cases, reference_systems(bench), baseline="bm25")


def test_malformed_system_output_names_system_and_case(bench):
    with pytest.raises(SystemOutputError, match="broken.*S001"):
        run_evaluation(bench.cases, {"broken": lambda q, k: "not a ranking"}, baseline="broken")
    with pytest.raises(SystemOutputError, match="raised RuntimeError"):
        run_evaluation(bench.cases, {"boom": _raise}, baseline="boom")


def _raise(query, k):
    raise RuntimeError("index missing")


def test_progress_is_reported_per_case(bench):
    calls = []
    run_evaluation(
        bench.cases,
        {"oracle": reference_systems(bench)["oracle"]},
        baseline="oracle",
        progress=lambda name, done, total: calls.append((name, done, total)),
    )
    assert calls[-1] == ("oracle", 24, 24) and len(calls) == 24
