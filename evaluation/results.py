"""Results of an evaluation run: ranked items, per-system results and the whole run (JSON-ready), and the
metric lists the harness computes and the report shows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.cases import Case
from evaluation.environment import environment_info

__all__ = [
    "MISS_CUTOFF",
    "RANK_METRICS",
    "SIGNIFICANCE_METRICS",
    "SLICE_METRICS",
    "EvaluationResult",
    "RankedItem",
    "SystemResult",
    "true_rank",
]

RANK_METRICS = ("recall@10", "recall@50", "recall@100", "ndcg@10", "mrr", "hit@1", "hit@10")
SIGNIFICANCE_METRICS = ("recall@10", "recall@50", "ndcg@10", "mrr")
SLICE_METRICS = ("recall@10", "recall@50", "mrr")
MISS_CUTOFF = 10


@dataclass
class RankedItem:
    """One returned document: id, score and the system's explanation (empty when it gives none)."""

    doc_id: str
    score: float
    why: str = ""


@dataclass
class SystemResult:
    """Everything measured for one system."""

    name: str
    runs: dict[str, list[RankedItem]]
    metrics: dict[str, float | None]
    per_query: dict[str, dict[str, float]]
    curve: list[float]
    seconds: float


@dataclass
class EvaluationResult:
    """Outcome of :func:`run_evaluation`; :meth:`metrics_json` is the ``metrics.json`` document."""

    n_cases: int
    n_in_corpus: int
    k_max: int
    baseline: str
    significance_metric: str
    cases: list[Case]
    not_evaluable: list[dict[str, Any]]
    qrels: dict[str, dict[str, int]]
    systems: dict[str, SystemResult]
    significance: dict[str, dict[str, Any]]
    slices: dict[str, dict[str, Any]]
    misses: list[dict[str, Any]]
    doc_names: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=environment_info)
    protocol: dict[str, Any] = field(default_factory=dict)  # grouped-CV reports, the expansion slice, the ranker card

    def metrics_json(self) -> dict[str, Any]:
        """The ``metrics.json`` document (NaN written as null)."""
        return _json_safe(
            {
                "environment": self.environment,
                "protocol": self.protocol,
                "n_cases": self.n_cases,
                "n_in_corpus": self.n_in_corpus,
                "systems": {n: dict(s.metrics) for n, s in self.systems.items()},
                "significance": self.significance,
                "slices": self.slices,
                "misses": self.misses,
            }
        )

    def per_query_json(self) -> dict[str, Any]:
        """Per-case detail: rank of the true firm and per-query metric values for every system."""
        rows = []
        for c in self.cases:
            row: dict[str, Any] = {"case_id": c.id, "truth": sorted(self.qrels[c.id]), "slices": c.slices}
            for name, s in self.systems.items():
                row[name] = {"rank": true_rank(self.qrels[c.id], s.runs[c.id])}
                row[name].update({m: v[c.id] for m, v in s.per_query.items()})
            rows.append(row)
        return _json_safe(
            {
                "k_max": self.k_max,
                "baseline": self.baseline,
                "cases": rows,
                "not_evaluable": self.not_evaluable,
                "recall_curves": {n: s.curve for n, s in self.systems.items()},
            }
        )


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    return obj


def true_rank(rels: Mapping[str, int], items: Sequence[RankedItem]) -> int | None:
    """1-based rank of the best-placed relevant document, or None when none was returned."""
    for i, it in enumerate(items, start=1):
        if rels.get(it.doc_id, 0) > 0:
            return i
    return None
