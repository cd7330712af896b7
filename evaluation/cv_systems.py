"""Systems evaluated out of fold under the grouped-CV protocol (:mod:`evaluation.protocol`).

- ``tfidf+prior``: char 1–3-gram TF-IDF over the product's own profile passages (the text the matcher embeds)
  plus the employee prior z(log employees); the prior's weight chosen by grouped CV.
- ``rrf+prior``: reciprocal-rank fusion of that TF-IDF and the dense (e5) ranking, plus the prior, same protocol.
- ``full-cv``: the matcher's candidate pool (every source) scored by the product's blend (text RRF + size prior +
  learned ranker + catalogue/context terms) whose parameters are chosen by grouped CV; ``full-cv-<part>``
  re-runs the protocol with one part held at 0 (the ablations).
- the expansion slice: segment hold-out queries of firms the learned ranker never saw (:meth:`holdout_slice`).

Every ranking of a case is made with parameters chosen on folds that do not contain its investing firm. The
parameters fitted on all cases are what the product ships (``chainmatch train weights``); their in-sample figure
is never reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evaluation.cases import Case, CaseQuery, build_qrels, split_evaluable
from evaluation.protocol import CVResult, firm_groups, select_by_grouped_cv
from evaluation.requests import case_request
from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.recommender import Recommender
from matcher.ranking.scoring import BlendWeights, blend_scores
from matcher.text import clean_text

logger = logging.getLogger(__name__)

RankFn = Callable[[CaseQuery, int], list[tuple[Any, ...]]]

PRIOR_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5)
BLEND_GRID: dict[str, tuple[float, ...]] = {
    "prior": (0.0, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5),
    "ltr": (0.0, 0.1, 0.25, 0.5),
    "link_fit": (0.0, 0.25, 0.5, 1.0),
    "aiding": (0.0, 0.1, 0.25, 0.5),
    "proximity": (0.0, 0.1, 0.25, 0.5),
}
ALL_SOURCES = ("dense", "lexical", "graph", "tfidf", "related")
ABLATED = ("prior", "ltr", "link_fit", "tfidf", "dense", "bm25")


def employee_prior(rec: Recommender) -> np.ndarray:
    """z(log(1 + employees)) over the corpus; unknown size → 0 (the mean)."""
    emp = np.asarray(rec.employees_, dtype=np.float64)
    known = ~np.isnan(emp)
    z = np.zeros(len(emp))
    if known.sum() > 1:
        lg = np.log1p(emp[known])
        z[known] = (lg - lg.mean()) / (lg.std() or 1.0)
    return z


def _zq(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / sd if sd > 0 else np.zeros_like(x)


def _rank_in(scores: np.ndarray, t: int) -> float:
    """1-based rank of row ``t`` (ties broken by row order)."""
    st = scores[t]
    return float(1 + np.sum(scores > st) + np.sum(scores[:t] == st))


def _rrf_scores(*score_vectors: np.ndarray, depth: int = 1000, k: float = 60.0) -> np.ndarray:
    out = np.zeros(len(score_vectors[0]))
    for s in score_vectors:
        top = np.argsort(-s, kind="stable")[:depth]
        out[top] += 1.0 / (k + np.arange(1, len(top) + 1))
    return out


class ProtocolSystems:
    """The baselines and ``full-cv`` of one evaluation run, with their CV reports (for metrics.json)."""

    def __init__(self, base: Recommender, cases: Sequence[Case], n_splits: int = 5, ltr=None) -> None:
        self.base = base
        self.ltr = ltr
        self.n_splits = n_splits
        self.evaluable, _ = split_evaluable(cases)
        qrels = build_qrels(self.evaluable)
        self.truth = {c.id: next(iter(qrels.get(c.id, {})), None) for c in self.evaluable}
        self.groups = firm_groups(self.evaluable)
        self.ids = [c.id for c in self.evaluable]
        self.reports: dict[str, dict[str, Any]] = {}
        self.prior_ = employee_prior(base)

    # ------------------------------------------------------------------------------------ baselines
    def _text_scores(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        rec = self.base
        tf, dense = {}, {}
        for c in self.evaluable:
            text = c.query.text
            tf[c.id] = rec.tfidf_.caller_scores(clean_text(text).lower(), rec.id_to_idx_, rec.n_).astype(np.float64)
            dense[c.id] = (rec.vectors_[: rec.n_] @ rec._query_vector(text)).astype(np.float64)
        return tf, dense

    def baselines(self) -> dict[str, RankFn]:
        """``tfidf+prior`` and ``rrf+prior``, each with its prior weight chosen by grouped CV."""
        tf, dense = self._text_scores()
        text = {
            "tfidf+prior": {c: _zq(tf[c]) for c in tf},
            "rrf+prior": {c: _zq(_rrf_scores(tf[c], dense[c])) for c in tf},
        }
        out: dict[str, RankFn] = {}
        for name, base_scores in text.items():
            out[name] = self._prior_system(name, base_scores)
        return out

    def _prior_system(self, name: str, text: dict[str, np.ndarray]) -> RankFn:
        rows = {c: self.base.id_to_idx_.get(self.truth[c] or "", -1) for c in self.ids}

        def rank_of(cid: str, p) -> float:
            t = rows[cid]
            return math.inf if t < 0 else _rank_in(text[cid] + p["prior"] * self.prior_, t)

        cv = select_by_grouped_cv(self.ids, self.groups, rank_of, {"prior": 0.0}, {"prior": PRIOR_GRID},
                                  self.n_splits)  # fmt: skip
        self._report(name, cv)
        fold_of = {cid: k for k, ids in enumerate(cv.folds) for cid in ids}
        ids = [e.id for e in self.base.enterprises_]

        def rank(q: CaseQuery, k: int) -> list[tuple[Any, ...]]:
            p = cv.fold_params[fold_of[q.case_id]]
            s = text[q.case_id] + p["prior"] * self.prior_
            top = np.argsort(-s, kind="stable")[:k]
            return [(ids[i], float(s[i]), f"prior weight {p['prior']} (held-out fold)") for i in top]

        return rank

    # ------------------------------------------------------------------------------------ full-cv
    def pools(self) -> dict[str, tuple[list[str], np.ndarray]]:
        """Every case's candidate pool (all sources) and feature matrix, computed once."""
        if "_pools" not in self.__dict__:
            import copy

            rec = copy.copy(self.base)
            rec.sources = ALL_SOURCES
            rec.all_features = True
            catalogue = default_catalogue()
            self._pools = {}
            for c in self.evaluable:
                req = case_request(c.query, catalogue, rec, 200)
                self._pools[c.id] = rec.candidate_features(req, None)
        return self._pools

    def full_cv(self, held_at_zero: Sequence[str] = (), name: str = "full-cv") -> RankFn:
        """The product's blend (:func:`matcher.ranking.scoring.blend_scores`) over the pool, its parameters chosen
        by grouped CV (``held_at_zero`` stay 0: the ablations)."""
        pools = self.pools()
        truth_pos = {c: (pools[c][0].index(self.truth[c]) if self.truth[c] in pools[c][0] else -1) for c in self.ids}
        learned = {c: (self.ltr.model_scores(pools[c][1]) if self.ltr is not None and len(pools[c][0]) else None)
                   for c in self.ids}  # fmt: skip
        grid = {p: v for p, v in BLEND_GRID.items() if p not in held_at_zero and (p != "ltr" or self.ltr is not None)}
        init = {p: 0.0 for p in BlendWeights().params()}
        text = tuple(f for f in ("tfidf", "dense", "bm25") if f not in held_at_zero)

        def scores(cid: str, p) -> np.ndarray:
            w = BlendWeights(**{**p, "master": 0.0}, text=text)
            return blend_scores(pools[cid][1], w, learned[cid])[0]

        def rank_of(cid: str, p) -> float:
            t = truth_pos[cid]
            return math.inf if t < 0 else _rank_in(scores(cid, p), t)

        cv = select_by_grouped_cv(self.ids, self.groups, rank_of, init, grid, self.n_splits)
        self._report(name, cv, pool_recall=float(np.mean([truth_pos[c] >= 0 for c in self.ids])),
                     pool_size=float(np.mean([len(pools[c][0]) for c in self.ids])))  # fmt: skip
        fold_of = {cid: k for k, ids in enumerate(cv.folds) for cid in ids}

        def rank(q: CaseQuery, k: int) -> list[tuple[Any, ...]]:
            ids, _ = pools[q.case_id]
            if not ids:
                return []
            s = scores(q.case_id, cv.fold_params[fold_of[q.case_id]])
            top = np.argsort(-s, kind="stable")[:k]
            return [(ids[i], float(s[i]), "parameters chosen on other firms' folds") for i in top]

        return rank

    def holdout_slice(self, test_queries: Sequence[Any], ltr_weights: Sequence[float] = (0.0, 0.1, 0.25, 0.5, 1.0)) -> dict[str, Any]:
        """The expansion slice: held-out firms' hidden links (firms not used to train the ranker), ranked by the
        blend's text part (no size prior: hold-out firms are drawn regardless of size) plus ``ltr`` × learned."""
        from evaluation.protocol import rank_metrics

        out: dict[str, Any] = {"queries": len(test_queries), "firms": len({q.firm_id for q in test_queries})}
        for g in ltr_weights:
            ranks = []
            for q in test_queries:
                t = int(np.flatnonzero(q.labels == 2)[0])
                learned = self.ltr.model_scores(q.F) if self.ltr is not None and g else None
                s = blend_scores(q.F, BlendWeights(prior=0.0, master=0.0, ltr=g), learned)[0]
                ranks.append(_rank_in(s, t))
            out[f"text+{g}*ltr"] = rank_metrics(ranks)
        if self.ltr is not None:
            out["ltr_only"] = rank_metrics([_rank_in(self.ltr.model_scores(q.F), int(np.flatnonzero(q.labels == 2)[0]))
                                            for q in test_queries])  # fmt: skip
        self.reports["holdout-slice"] = out
        return out

    def systems(self, ablations: bool = True) -> dict[str, RankFn]:
        """All protocol systems by name (baselines, full-cv and its ablations of each new feature)."""
        out = self.baselines()
        out["full-cv"] = self.full_cv()
        if ablations:
            for f in ABLATED:
                if f == "ltr" and self.ltr is None:
                    continue
                out[f"full-cv-{f}"] = self.full_cv(held_at_zero=(f,), name=f"full-cv-{f}")
        return out

    def _report(self, name: str, cv: CVResult, **extra: float) -> None:
        self.reports[name] = {
            "protocol": f"GroupKFold({len(cv.folds)}) by investing firm, {len(set(self.groups))} firms, "
            f"{len(self.ids)} cases; coordinate search of R@10 + R@50 + MRR on training folds",
            "out_of_fold": cv.metrics(),
            "fold_params": cv.fold_params,
            "final_params": cv.final_params,
            **extra,
        }
