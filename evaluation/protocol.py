"""The honest protocol: every choice made by cross-validation grouped by investing firm, out-of-fold figures.

- :func:`firm_groups` — one group per investing firm (stock code, else name): no firm is in both the training
  and the validation folds, so a repeat investor (德方纳米 ×6) cannot teach the model its own answer.
- :func:`select_by_grouped_cv` — a generic grid / coordinate search of parameters on training folds, applied to the
  held-out fold; returns the out-of-fold ranks, the parameters of each fold and those fitted on all cases (the
  shipped choice, whose in-sample figure is never reported as a result).
- :func:`clustered_randomization_test` — a sign-flip test on per-firm mean differences: cases of one firm are
  not independent, so the firm is the unit that is resampled.

Ranks are 1-based positions of the true firm in a case's ranking (``inf`` when absent). Metrics of a rank list:
:func:`rank_metrics`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "CVResult",
    "clustered_randomization_test",
    "firm_groups",
    "rank_metrics",
    "select_by_grouped_cv",
]


def firm_groups(cases: Sequence[Any]) -> list[str]:
    """The investing firm of each case (stock code, else enterprise name): the unit of grouping."""
    return [str(getattr(c, "stock_code", None) or getattr(c, "enterprise", None) or c.id) for c in cases]


def rank_metrics(ranks: Sequence[float]) -> dict[str, float]:
    """R@10, R@50, R@100 and MRR (reciprocal rank, 0 beyond the ranking) of 1-based ranks."""
    r = np.asarray(ranks, dtype=np.float64)
    if r.size == 0:
        return {"recall@10": 0.0, "recall@50": 0.0, "recall@100": 0.0, "mrr": 0.0}
    return {
        "recall@10": float(np.mean(r <= 10)),
        "recall@50": float(np.mean(r <= 50)),
        "recall@100": float(np.mean(r <= 100)),
        "mrr": float(np.mean(np.where(np.isfinite(r), 1.0 / r, 0.0))),
    }


def objective(ranks: Sequence[float]) -> float:
    """What the search maximises: R@10 + R@50 + MRR (the targets' three metrics, equally)."""
    m = rank_metrics(ranks)
    return m["recall@10"] + m["recall@50"] + m["mrr"]


@dataclass
class CVResult:
    """Out-of-fold ranks per case, the parameters chosen in each fold, and the parameters fitted on all cases."""

    oof_ranks: dict[str, float]
    fold_params: list[dict[str, float]]
    final_params: dict[str, float]
    folds: list[list[str]] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        return rank_metrics(list(self.oof_ranks.values()))


RankFn = Callable[[str, Mapping[str, float]], float]  # (case id, params) → rank of the true firm


def coordinate_search(
    case_ids: Sequence[str], rank_of: RankFn, init: Mapping[str, float], grid: Mapping[str, Sequence[float]],
    rounds: int = 2,
) -> dict[str, float]:
    """Coordinate ascent of :func:`objective` over ``grid`` (one parameter at a time, ``rounds`` passes) from
    ``init``; ties keep the current value (a change must improve the training objective)."""
    params = dict(init)
    best = objective([rank_of(c, params) for c in case_ids])
    for _ in range(rounds):
        changed = False
        for name, values in grid.items():
            for v in values:
                if v == params.get(name):
                    continue
                trial = {**params, name: v}
                score = objective([rank_of(c, trial) for c in case_ids])
                if score > best + 1e-9:
                    best, params, changed = score, trial, True
        if not changed:
            break
    return params


def select_by_grouped_cv(
    case_ids: Sequence[str], groups: Sequence[str], rank_of: RankFn, init: Mapping[str, float],
    grid: Mapping[str, Sequence[float]], n_splits: int = 5, rounds: int = 2,
) -> CVResult:
    """Choose parameters on training folds (grouped by ``groups``), rank each held-out case with its fold's.

    Raises:
        ValueError: ``case_ids`` and ``groups`` differ in length, or fewer than two groups.
    """
    from sklearn.model_selection import GroupKFold

    if len(case_ids) != len(groups):
        raise ValueError(f"{len(case_ids)} cases but {len(groups)} groups")
    distinct = len(set(groups))
    if distinct < 2:
        raise ValueError("grouped cross-validation needs at least two groups (investing firms)")
    ids = list(case_ids)
    folds = GroupKFold(n_splits=min(n_splits, distinct))
    oof: dict[str, float] = {}
    fold_params: list[dict[str, float]] = []
    fold_ids: list[list[str]] = []
    for train, test in folds.split(np.zeros(len(ids)), groups=list(groups)):
        params = coordinate_search([ids[i] for i in train], rank_of, init, grid, rounds)
        fold_params.append(params)
        fold_ids.append([ids[i] for i in test])
        for i in test:
            oof[ids[i]] = rank_of(ids[i], params)
    final = coordinate_search(ids, rank_of, init, grid, rounds)
    logger.info("grouped CV (%d folds, %d firms): out-of-fold %s; chosen on all: %s",
                len(fold_params), distinct, {k: round(v, 3) for k, v in rank_metrics(list(oof.values())).items()},
                final)  # fmt: skip
    return CVResult(oof, fold_params, final, fold_ids)


@dataclass(frozen=True)
class ClusteredTest:
    """A firm-clustered sign-flip test of mean(system − baseline) over per-firm mean differences."""

    delta: float
    p_value: float
    n_cases: int
    n_clusters: int
    test: str = "sign-flip randomisation over per-firm mean differences, two-sided"


def clustered_randomization_test(
    system: Sequence[float], baseline: Sequence[float], clusters: Sequence[str], n_resamples: int = 20_000,
    seed: int = 0, exact_max: int = 18,
) -> ClusteredTest:
    """Two-sided test that a system equals the baseline, resampling whole firms (clusters) rather than cases."""
    a, b = np.asarray(system, np.float64), np.asarray(baseline, np.float64)
    if a.shape != b.shape or len(clusters) != len(a):
        raise ValueError("system, baseline and clusters must have the same length")
    d = a - b
    keys = sorted(set(clusters))
    means = np.array([d[[i for i, c in enumerate(clusters) if c == k]].mean() for k in keys])
    delta = float(d.mean()) if d.size else 0.0
    nz = means[means != 0]
    if nz.size == 0:
        return ClusteredTest(delta, 1.0, len(d), len(keys))
    observed = abs(nz.sum())
    tol = 1e-12 * max(1.0, observed)
    if nz.size <= exact_max:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=nz.size)))
        p = float(np.mean(np.abs(signs @ nz) >= observed - tol))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(n_resamples, nz.size))
        p = (int(np.sum(np.abs(signs @ nz) >= observed - tol)) + 1) / (n_resamples + 1)
    return ClusteredTest(delta, min(p, 1.0), len(d), len(keys))


def rank_of_truth(order: Sequence[Any], truth: set[Any]) -> float:
    """1-based position of the first true item in ``order`` (``inf`` when none is there)."""
    for r, item in enumerate(order, start=1):
        if item in truth:
            return float(r)
    return math.inf
