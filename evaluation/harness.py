"""Run ranking systems over evaluation cases and collect metrics, slices, significance and misses.

Example:
    >>> result = run_evaluation(cases, {"tfidf": tfidf, "bm25": bm25}, docs=docs)
    >>> write_outputs(result, "out/")  # evaluation.report: metrics.json, per_query.json, report.html
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from evaluation.cases import SLICE_DIMENSIONS, Case, CaseQuery, build_qrels, split_evaluable
from evaluation.errors import SystemOutputError, UnknownSystemError
from evaluation.metrics import (
    catalogue_coverage,
    evaluate_per_query,
    intra_list_diversity,
    recall_curve,
)
from evaluation.results import (
    MISS_CUTOFF,
    RANK_METRICS,
    SIGNIFICANCE_METRICS,
    SLICE_METRICS,
    EvaluationResult,
    RankedItem,
    SystemResult,
    true_rank,
)
from evaluation.protocol import clustered_randomization_test, firm_groups
from evaluation.significance import paired_t_test, randomization_test

logger = logging.getLogger(__name__)

System = Callable[[CaseQuery, int], Sequence[Sequence[Any]]]
Progress = Callable[[str, int, int], None]

def _normalise_output(name: str, case_id: str, output: Any, k_max: int) -> list[RankedItem]:
    if not isinstance(output, (list, tuple)):
        raise SystemOutputError(
            name, case_id, f"expected a list of (doc_id, score[, why]), received {type(output)}"
        )
    items: list[RankedItem] = []
    seen: set[str] = set()
    for entry in output:
        if not isinstance(entry, (list, tuple)) or len(entry) not in (2, 3):
            raise SystemOutputError(
                name, case_id, f"expected (doc_id, score) or (doc_id, score, why), got {entry!r}"
            )
        doc_id = str(entry[0])
        if doc_id in seen:
            continue
        seen.add(doc_id)
        try:
            score = float(entry[1])
        except (TypeError, ValueError) as exc:
            raise SystemOutputError(
                name, case_id, f"score of {doc_id} is not a number: {entry[1]!r}"
            ) from exc
        why = str(entry[2]) if len(entry) == 3 and entry[2] is not None else ""
        items.append(RankedItem(doc_id, score, why))
        if len(items) >= k_max:
            break
    return items


def default_doc_features(docs: Mapping[str, Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Feature set of each document for intra-list diversity: its industry alone.

    With one feature per document, 1 − Jaccard is 1 for a pair from different industries and 0 otherwise,
    so diversity@10 reads as the share of top-10 pairs that come from different industries. Documents
    without an industry are left out of the diversity figure.
    """
    return {
        d: frozenset([str(doc["industry"])]) if doc.get("industry") else frozenset()
        for d, doc in docs.items()
    }


def run_evaluation(
    cases: Iterable[Case],
    systems: Mapping[str, System],
    k_max: int = 100,
    baseline: str = "tfidf",
    progress: Progress | None = None,
    *,
    docs: Mapping[str, Mapping[str, Any]] | None = None,
    doc_vectors: Mapping[str, Sequence[float]] | None = None,
    significance_metric: str = "recall@50",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> EvaluationResult:
    """Rank every evaluable case with every system and measure the rankings.

    Args:
        cases: all cases; those not evaluable (not in the corpus, no stock code) are counted and
            listed, not scored.
        systems: name → ``rank(query, k)`` returning ``[(doc_id, score)]`` or ``[(doc_id, score, why)]``.
        k_max: depth of each ranking requested from a system.
        baseline: the system every other one is tested against.
        progress: called as ``progress(system, done, total)`` after each case.
        docs: corpus documents (names for the misses table, coverage denominator, diversity features).
        doc_vectors: doc vectors for cosine diversity (default: share of top-10 pairs from
            different industries, see :func:`default_doc_features`).
        significance_metric: the metric reported first in ``significance`` (every metric of
            :data:`SIGNIFICANCE_METRICS` is tested and listed under ``tests``).
        n_resamples: random sign patterns of the randomisation test.
        seed: seed of the randomisation test.

    Returns:
        The result; write it with :func:`evaluation.report.write_outputs`.

    Raises:
        UnknownSystemError: ``baseline`` is not one of ``systems``.
        SystemOutputError: a system raised or returned something that is not a ranking.
    """
    cases = list(cases)
    if baseline not in systems:
        raise UnknownSystemError([f"{baseline} (baseline)"], systems)
    evaluable, skipped = split_evaluable(cases)
    qrels = build_qrels(evaluable)
    not_evaluable = [{"case_id": c.id, "enterprise": c.enterprise, "reason": r} for c, r in skipped]
    if skipped:
        logger.info(
            "%d of %d cases not evaluable (listed in the report): %s",
            len(skipped),
            len(cases),
            ", ".join(c.id for c, _ in skipped),
        )
    if docs is not None:
        missing = sorted({d for rels in qrels.values() for d in rels} - set(docs))
        if missing:
            logger.warning(
                "%d true documents are absent from the corpus docs: %s", len(missing), missing[:10]
            )
    features = default_doc_features(docs) if docs is not None and doc_vectors is None else None
    metric_names = list(RANK_METRICS)

    results: dict[str, SystemResult] = {}
    for name, system in systems.items():
        t0 = time.perf_counter()
        runs: dict[str, list[RankedItem]] = {}
        latencies = []
        for i, case in enumerate(evaluable, start=1):
            t = time.perf_counter()
            try:
                output = system(case.query, k_max)
            except Exception as exc:  # a system's failure is reported with its name and case
                raise SystemOutputError(name, case.id, f"raised {type(exc).__name__}: {exc}") from exc
            latencies.append(time.perf_counter() - t)
            runs[case.id] = _normalise_output(name, case.id, output, k_max)
            if progress is not None:
                progress(name, i, len(evaluable))
        run_lists = {qid: [it.doc_id for it in items] for qid, items in runs.items()}
        per_query = evaluate_per_query(qrels, run_lists, metric_names)
        metrics: dict[str, float | None] = {
            m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()
        }
        if docs is not None:
            metrics["coverage@10"] = catalogue_coverage(run_lists, docs.keys(), k=10)
        diversity = (
            intra_list_diversity(run_lists, 10, vectors=doc_vectors)
            if doc_vectors is not None
            else intra_list_diversity(run_lists, 10, features=features)
            if features is not None
            else float("nan")
        )
        metrics["diversity@10"] = diversity
        metrics["ms_per_query"] = 1000 * float(np.mean(latencies)) if latencies else 0.0
        results[name] = SystemResult(
            name=name,
            runs=runs,
            metrics=metrics,
            per_query=per_query,
            curve=recall_curve(qrels, run_lists, k_max),
            seconds=time.perf_counter() - t0,
        )
        logger.info("%s: %s", name, {m: round(v, 3) for m, v in metrics.items() if v is not None})

    doc_names = {d: str(doc.get("short") or doc.get("name") or d) for d, doc in (docs or {}).items()}
    return EvaluationResult(
        n_cases=len(cases),
        n_in_corpus=len(evaluable),
        k_max=k_max,
        baseline=baseline,
        significance_metric=significance_metric,
        cases=evaluable,
        not_evaluable=not_evaluable,
        qrels=qrels,
        systems=results,
        significance=_significance(
            results, baseline, significance_metric, n_resamples, seed,
            dict(zip([c.id for c in evaluable], firm_groups(evaluable), strict=True)),
        ),
        slices=_slices(evaluable, results),
        misses=_misses(evaluable, qrels, results, doc_names),
        doc_names=doc_names,
    )


def _significance(
    results: Mapping[str, SystemResult], baseline: str, primary: str, n_resamples: int, seed: int,
    cluster_of: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Each system vs the baseline, per metric: the sign-flip test clustered by investing firm (``p_value``; cases
    of one firm are not independent), and the per-case sign-flip and t-tests beside it."""
    base = results[baseline]
    out: dict[str, dict[str, Any]] = {}
    metrics = list(dict.fromkeys([primary, *SIGNIFICANCE_METRICS]))
    for name, res in results.items():
        if name == baseline:
            continue
        tests: dict[str, dict[str, float]] = {}
        for m in metrics:
            qids = sorted(base.per_query[m])
            a = [res.per_query[m][q] for q in qids]
            b = [base.per_query[m][q] for q in qids]
            rand = randomization_test(a, b, n_resamples=n_resamples, seed=seed)
            tt = paired_t_test(a, b)
            clusters = [(cluster_of or {}).get(q, q) for q in qids]
            cl = clustered_randomization_test(a, b, clusters, n_resamples=n_resamples, seed=seed)
            tests[m] = {"delta": rand.delta, "p_value": cl.p_value, "case_p_value": rand.p_value,
                        "t_test_p_value": tt.p_value, "clusters": cl.n_clusters}  # fmt: skip
        out[name] = {
            "vs": baseline,
            "metric": primary,
            "p_value": tests[primary]["p_value"],
            "delta": tests[primary]["delta"],
            "test": "sign-flip randomisation clustered by investing firm (per-firm mean differences), two-sided",
            "n": len(base.per_query[primary]),
            "tests": tests,
        }
    return out


def _slices(cases: Sequence[Case], results: Mapping[str, SystemResult]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for dim in SLICE_DIMENSIONS:
        groups: dict[str, list[str]] = {}
        for c in cases:
            groups.setdefault(c.slices[dim], []).append(c.id)
        out[dim] = {
            value: {
                "n": len(qids),
                "systems": {
                    name: {m: float(np.mean([res.per_query[m][q] for q in qids])) for m in SLICE_METRICS}
                    for name, res in results.items()
                },
            }
            for value, qids in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        }
    return out


def _misses(
    cases: Sequence[Case],
    qrels: Mapping[str, Mapping[str, int]],
    results: Mapping[str, SystemResult],
    doc_names: Mapping[str, str],
) -> list[dict[str, Any]]:
    rows = []
    for name, res in results.items():
        for c in cases:
            items = res.runs[c.id]
            rank = true_rank(qrels[c.id], items)
            if rank is not None and rank <= MISS_CUTOFF:
                continue
            truth = sorted(d for d, r in qrels[c.id].items() if r > 0)
            q = c.query
            rows.append(
                {
                    "system": name,
                    "case_id": c.id,
                    "query": q.text,
                    "region": " ".join(p for p in (q.region_province, q.region_prefecture) if p),
                    "truth": truth,
                    "truth_name": ", ".join(doc_names.get(d, d) for d in truth),
                    "rank": rank,
                    "top3": [
                        {
                            "doc_id": it.doc_id,
                            "name": doc_names.get(it.doc_id, it.doc_id),
                            "score": it.score,
                            "why": it.why,
                        }
                        for it in items[:3]
                    ],
                }
            )
    return rows
