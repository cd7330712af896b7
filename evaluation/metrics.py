"""Ranking metrics over plain dicts, picked by strings ("recall@10", "ndcg@10", "mrr", "hit@1", …).

Data shapes (as in BEIR / ranx):

- qrels: ``{query_id: {doc_id: relevance}}``; a document is relevant when ``relevance > 0``.
- run: ``{query_id: {doc_id: score}}`` (ranked by score descending, ties by doc id ascending) or
  ``{query_id: [doc_id, ...]}`` (already ranked, best first).

Every metric is a pure function ``f(rels, ranked, k) -> float`` on one query; ``k=None`` means the
whole ranking. :func:`evaluate` averages them over queries after checking that qrels and run cover
the same query ids. A query with no relevant document scores 0 on every metric (the ranx convention).

Example:
    >>> evaluate({"q1": {"d2": 1}}, {"q1": {"d1": 0.9, "d2": 0.8}}, ["recall@1", "mrr"])
    {'recall@1': 0.0, 'mrr': 0.5}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from evaluation.errors import QueryIdMismatchError, UnknownMetricError

Qrels = Mapping[str, Mapping[str, int]]
RunEntry = Mapping[str, float] | Sequence[str]
Run = Mapping[str, RunEntry]
MetricFn = Callable[[Mapping[str, int], Sequence[str], "int | None"], float]


def ranked_ids(entry: RunEntry) -> list[str]:
    """Document ids of one run entry, best first (score descending, then doc id ascending)."""
    if isinstance(entry, Mapping):
        return [d for d, _ in sorted(entry.items(), key=lambda kv: (-float(kv[1]), kv[0]))]
    return list(entry)


def _relevant(rels: Mapping[str, int]) -> set[str]:
    return {d for d, r in rels.items() if r > 0}


def _cut(ranked: Sequence[str], k: int | None) -> Sequence[str]:
    return ranked if k is None else ranked[:k]


def recall(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """Recall@k = |relevant ∩ top-k| / |relevant|."""
    relevant = _relevant(rels)
    if not relevant:
        return 0.0
    return len(relevant.intersection(_cut(ranked, k))) / len(relevant)


def precision(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """Precision@k = |relevant ∩ top-k| / k (k = ranking length when None; no padding of short lists)."""
    relevant = _relevant(rels)
    top = _cut(ranked, k)
    denom = k if k is not None else len(top)
    if not relevant or denom == 0:
        return 0.0
    return len(relevant.intersection(top)) / denom


def hit(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """Hit@k = 1 if any relevant document is in the top k, else 0."""
    relevant = _relevant(rels)
    return 1.0 if relevant and relevant.intersection(_cut(ranked, k)) else 0.0


def reciprocal_rank(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """RR@k = 1 / rank of the first relevant document in the top k (1-based), 0 if none; MRR = mean RR."""
    relevant = _relevant(rels)
    for i, d in enumerate(_cut(ranked, k), start=1):
        if d in relevant:
            return 1.0 / i
    return 0.0


def ndcg(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """nDCG@k = DCG@k / IDCG@k with DCG@k = Σ_{i=1..k} rel_i / log2(i + 1) (linear gain, as ranx "ndcg").

    IDCG@k is the DCG@k of the judged documents sorted by relevance.
    """
    top = _cut(ranked, k)
    dcg = sum(max(rels.get(d, 0), 0) / math.log2(i + 1) for i, d in enumerate(top, start=1))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)
    ideal = ideal if k is None else ideal[:k]
    idcg = sum(r / math.log2(i + 1) for i, r in enumerate(ideal, start=1))
    return dcg / idcg if idcg > 0 else 0.0


def average_precision(rels: Mapping[str, int], ranked: Sequence[str], k: int | None = None) -> float:
    """AP@k = (1 / |relevant|) · Σ_{i ≤ k, doc_i relevant} Precision@i; MAP = mean AP."""
    relevant = _relevant(rels)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(_cut(ranked, k), start=1):
        if d in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


METRICS: dict[str, MetricFn] = {
    "recall": recall,
    "precision": precision,
    "hit": hit,
    "mrr": reciprocal_rank,
    "ndcg": ndcg,
    "map": average_precision,
}
_NAME = re.compile(r"^([a-z_]+)(?:@(\d+))?$")


def parse_metric(name: str) -> tuple[str, int | None]:
    """Split ``"ndcg@10"`` into ``("ndcg", 10)``; ``"mrr"`` gives ``("mrr", None)``.

    Raises:
        UnknownMetricError: the base name is not in :data:`METRICS` or the cut-off is not positive.
    """
    m = _NAME.match(name.strip().lower())
    if not m or m.group(1) not in METRICS or (m.group(2) is not None and int(m.group(2)) < 1):
        raise UnknownMetricError(name, METRICS)
    return m.group(1), int(m.group(2)) if m.group(2) else None


def check_query_ids(qrels: Qrels, run: Run) -> None:
    """Raise :class:`QueryIdMismatchError` unless qrels and run have exactly the same query ids."""
    q, r = set(qrels), set(run)
    if q != r:
        raise QueryIdMismatchError(sorted(q - r), sorted(r - q))


def evaluate_per_query(qrels: Qrels, run: Run, metrics: Iterable[str] | str) -> dict[str, dict[str, float]]:
    """Per-query values ``{metric: {query_id: value}}``.

    Args:
        qrels: relevance judgements.
        run: rankings for the same query ids.
        metrics: metric names such as ``"recall@10"``, ``"mrr"``.

    Raises:
        QueryIdMismatchError: qrels and run cover different queries.
        UnknownMetricError: a metric name is not supported.
    """
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    parsed = [(n, *parse_metric(n)) for n in names]
    check_query_ids(qrels, run)
    ranked = {qid: ranked_ids(entry) for qid, entry in run.items()}
    return {n: {qid: METRICS[base](qrels[qid], ranked[qid], k) for qid in qrels} for n, base, k in parsed}


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str] | str) -> dict[str, float]:
    """Mean of each metric over the queries: ``{metric: mean}`` (0.0 for an empty query set).

    Example:
        >>> evaluate({"q": {"a": 1}}, {"q": ["b", "a"]}, "ndcg@2")
        {'ndcg@2': 0.6309297535714575}
    """
    per_query = evaluate_per_query(qrels, run, metrics)
    return {n: (float(np.mean(list(v.values()))) if v else 0.0) for n, v in per_query.items()}


def recall_curve(qrels: Qrels, run: Run, k_max: int) -> list[float]:
    """Mean Recall@k for k = 1..k_max (index 0 is Recall@1), in one pass over each ranking."""
    check_query_ids(qrels, run)
    if not qrels:
        return [0.0] * k_max
    acc = np.zeros(k_max)
    for qid, rels in qrels.items():
        relevant = _relevant(rels)
        if not relevant:
            continue
        gains = np.zeros(k_max)
        for i, d in enumerate(ranked_ids(run[qid])[:k_max]):
            if d in relevant:
                gains[i] = 1.0
        acc += np.cumsum(gains) / len(relevant)
    return (acc / len(qrels)).tolist()


def catalogue_coverage(run: Run, corpus_ids: Iterable[str], k: int = 10) -> float:
    """Coverage@k = |corpus ∩ ⋃_q top-k(q)| / |corpus|: how much of the catalogue any query ever surfaces."""
    corpus = set(corpus_ids)
    if not corpus:
        return 0.0
    shown: set[str] = set()
    for entry in run.values():
        shown.update(ranked_ids(entry)[:k])
    return len(shown & corpus) / len(corpus)


def _pairwise_distances_vectors(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    unit = vecs / np.where(norms == 0, 1.0, norms)
    sims = unit @ unit.T
    iu = np.triu_indices(len(vecs), k=1)
    return 1.0 - sims[iu]


def _pairwise_distances_sets(sets: list[frozenset[str]]) -> list[float]:
    out = []
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            union = len(sets[i] | sets[j])
            out.append(1.0 - len(sets[i] & sets[j]) / union if union else 0.0)
    return out


def intra_list_diversity(
    run: Run,
    k: int = 10,
    vectors: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    features: Mapping[str, Iterable[str]] | None = None,
) -> float:
    """ILD@k: mean over queries of the mean pairwise distance between the top-k documents.

    Distance is ``1 − cos(u, v)`` over ``vectors`` when given, else ``1 − |A ∩ B| / |A ∪ B|`` (Jaccard) over
    ``features``. Documents without a vector / with an empty feature set are left out; queries with
    fewer than two represented documents are skipped.

    Returns:
        The mean, or NaN when no query has two represented documents.

    Raises:
        ValueError: neither ``vectors`` nor ``features`` is given.
    """
    if vectors is None and features is None:
        raise ValueError("intra_list_diversity needs doc vectors or doc feature sets; received neither")
    per_query: list[float] = []
    for entry in run.values():
        top = ranked_ids(entry)[:k]
        if vectors is not None:
            rows = [np.asarray(vectors[d], dtype=np.float64) for d in top if d in vectors]
            if len(rows) >= 2:
                per_query.append(float(np.mean(_pairwise_distances_vectors(np.vstack(rows)))))
        else:
            assert features is not None
            sets = [frozenset(features[d]) for d in top if d in features and features[d]]
            if len(sets) >= 2:
                per_query.append(float(np.mean(_pairwise_distances_sets(sets))))
    return float(np.mean(per_query)) if per_query else float("nan")
