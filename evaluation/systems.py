"""Matcher-backed ranking systems for ``chainmatch evaluate`` (full, hybrid, dense, bm25-matcher, graph, ablations).

Each system is a callable ``rank(query: evaluation.cases.CaseQuery, k: int) -> [(doc_id, score, why)]`` whose doc
ids are the corpus enterprise ids (``ashare-<code>``). A case becomes a matcher request using only what a
promotion officer knows before the deal: the place (an ad hoc region: province / prefecture / park, no residents),
the chain (resolved against the catalogue by name or alias, else through the product link), the product link
(mapped onto a catalogue link by the LinkMapper) and the masked project text.

All systems share one fitted Recommender (one embedding pass, cached); each is a shallow copy with its own
sources, weights and diversity settings.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from evaluation.cases import CaseQuery
from evaluation.requests import case_request
from matcher.knowledge.catalogue import Catalogue, default_catalogue
from matcher.ranking.recommender import Recommender
from matcher.ranking.scoring import FEATURES, ScoringWeights, blend_scores
from matcher.records import Enterprise
from matcher.settings import Settings

logger = logging.getLogger(__name__)

RankFn = Callable[[CaseQuery, int], list[tuple[Any, ...]]]

ABLATIONS: dict[str, dict[str, Any]] = {  # changes to the shipped blend (scoring.BlendWeights)
    "-dense": {"text": ("tfidf", "bm25")},
    "-bm25": {"text": ("tfidf", "dense")},
    "-tfidf": {"text": ("dense", "bm25")},
    "-prior": {"prior": 0.0},
    "-context": {"master": 0.0, "aiding": 0.0, "proximity": 0.0},
}


def _variant(base: Recommender, **changes: Any) -> Recommender:
    rec = copy.copy(base)
    for key, value in changes.items():
        setattr(rec, key, value)
    return rec


def _ranker(rec: Recommender, catalogue: Catalogue) -> RankFn:
    def rank(q: CaseQuery, k: int) -> list[tuple[Any, ...]]:
        req = case_request(q, catalogue, rec, k)
        result = rec.recommend(req, book=None)
        # what an officer is shown, in order: the evidenced candidates, the expansion candidates, the leads
        return [(c.enterprise_id, c.score, "；".join(c.reasons[:2]))
                for c in [*result.candidates, *result.expansions, *result.leads]]

    return rank


def fitted_recommender(corpus: list[Enterprise], settings: Settings, embedder=None) -> Recommender:
    """One Recommender fitted on the corpus with the configured embedder and the embedding cache."""
    from models.cache import EmbeddingCache
    from models.embedders import get_embedder

    emb = embedder or get_embedder(settings.embedder, cache_dir=settings.cache_dir)
    settings.ensure_dirs()
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
    logger.info("fitting the matcher on %d enterprises with %s", len(corpus), emb.id)
    return Recommender(default_catalogue(), emb).fit(corpus, cache=cache)


def reranker_cv_system(base: Recommender, cases: list, kind: str = "logreg", n_splits: int = 5) -> RankFn:
    """The learned reranker evaluated by grouped cross-validation on the cases it is trained on.

    Every evaluable case's candidate pool is scored by a model trained on the other folds only (groups join cases
    sharing the investing enterprise or region), so no case is ranked by a model that saw it.
    """
    import numpy as np
    from sklearn.model_selection import GroupKFold

    from evaluation.training import case_pools
    from matcher.ranking.reranker import Reranker

    pools = case_pools(base, cases)
    groups = np.array([p["group"] for p in pools])
    ranked: dict[str, list[tuple[str, float, str]]] = {}
    folds = GroupKFold(n_splits=min(n_splits, len(set(groups))))
    for train, test in folds.split(np.zeros(len(pools)), groups=groups):
        X = np.vstack([pools[i]["F"] for i in train if len(pools[i]["ids"])])
        y = np.concatenate([pools[i]["labels"] for i in train if len(pools[i]["ids"])])
        model = Reranker(kind).fit(X, y)
        for i in test:
            p = pools[i]
            if not len(p["ids"]):
                ranked[p["case_id"]] = []
                continue
            s = model.predict(p["F"])
            order = np.argsort(-s, kind="stable")
            ranked[p["case_id"]] = [(p["ids"][j], float(s[j]), "reranker (held-out fold)") for j in order]

    def rank(q: CaseQuery, k: int) -> list[tuple[Any, ...]]:
        return ranked.get(q.case_id, [])[:k]

    return rank


def signals_cv_system(
    base: Recommender, cases: list, catalogue: Catalogue, half_life_days: float = 730.0, extra_events=()
) -> RankFn:
    """``full`` plus expansion signals, time-aware and fitted out of fold (#19).

    Each case sees only events dated strictly before its month and never its own record
    (:mod:`evaluation.signal_history`); the sig_* weights are chosen by cross-validation grouped by the
    investing firm, so a case is ranked with weights fitted on other firms' cases only.
    """
    from evaluation.cases import split_evaluable
    from evaluation.signal_history import annotate_history, case_as_of, case_book, deal_events, fold_weights
    from evaluation.training import case_pools

    events = [*deal_events(cases, base.mapper), *extra_events]
    history = annotate_history(cases, events)
    evaluable, _ = split_evaluable(cases)
    pools = case_pools(base, evaluable, signal_events=events, half_life_days=half_life_days)
    for p in pools:  # the product's blend is the base the signal weights are added to
        p["base_scores"] = blend_scores(p["F"], base.blend)[0] if len(p["F"]) else np.zeros(0)
    chosen = fold_weights(pools, base.weights.vector(), list(FEATURES), [c.stock_code or c.id for c in evaluable])
    logger.info("signals: %d events, %d of %d evaluable cases with earlier history", len(events),
                sum(history[c.id] for c in evaluable), len(evaluable))  # fmt: skip
    by_id = {c.id: c for c in cases}
    base_w = base.weights.vector()

    def rank(q: CaseQuery, k: int) -> list[tuple[Any, ...]]:
        case = by_id[q.case_id]
        w = chosen.get(q.case_id, np.zeros_like(base_w))
        sig = {f: float(v) for f, v in zip(FEATURES, w, strict=True) if f.startswith("sig_")}
        rec = _variant(base, signals=case_book(events, case, catalogue, half_life_days),
                       blend=base.blend.model_copy(update=sig))  # fmt: skip
        req = case_request(q, catalogue, rec, k).model_copy(update={"as_of": case_as_of(case)})
        result = rec.recommend(req, book=None)
        # what an officer is shown, in order: the evidenced candidates, the expansion candidates, the leads
        return [(c.enterprise_id, c.score, "；".join(c.reasons[:2]))
                for c in [*result.candidates, *result.expansions, *result.leads]]

    return rank


def matcher_systems(
    corpus: list[Enterprise], settings: Settings, embedder=None, cases: list | None = None
) -> dict[str, RankFn]:
    """Ranking systems built on the matcher over ``corpus``, by name.

    ``full`` is the product's pipeline; ``hybrid`` = dense + BM25 fused by RRF only; ``dense``, ``bm25-matcher`` and
    ``graph`` are the single sources; ``full-<group>`` drops one feature group; ``full-mmr`` turns diversity off.
    """
    catalogue = default_catalogue()
    base = fitted_recommender(corpus, settings, embedder)
    zero = ScoringWeights(**{f: 0.0 for f in FEATURES})
    systems: dict[str, RankFn] = {
        "full": _ranker(base, catalogue),
        "hybrid": _ranker(_variant(base, scorer="weighted", evidence_bar=False, sources=("dense", "lexical"), weights=zero.model_copy(update={"rrf": 1.0})), catalogue),
        "dense": _ranker(_variant(base, scorer="weighted", evidence_bar=False, sources=("dense",), weights=zero.model_copy(update={"dense": 1.0})), catalogue),
        "bm25-matcher": _ranker(_variant(base, scorer="weighted", evidence_bar=False, sources=("lexical",), weights=zero.model_copy(update={"bm25": 1.0})), catalogue),
        "graph": _ranker(
            _variant(base, scorer="weighted", evidence_bar=False, sources=("graph",), weights=zero.model_copy(update={"link_fit": 1.0, "share": 0.5, "capacity": 0.2})),
            catalogue,
        ),
        "weighted": _ranker(_variant(base, scorer="weighted", evidence_bar=False, sources=("dense", "lexical", "graph")), catalogue),
        "full-mmr": _ranker(_variant(base, mmr_lambda=1.0), catalogue),
    }
    for name, change in ABLATIONS.items():
        systems[f"full{name}"] = _ranker(_variant(base, blend=base.blend.model_copy(update=change)), catalogue)
    if cases:
        systems["reranker-cv"] = reranker_cv_system(base, cases)
        systems.update(protocol_systems(base, cases, settings))
        systems["full+signals"] = signals_cv_system(base, cases, catalogue)
    return systems


def protocol_systems(base: Recommender, cases: list, settings: Settings, n_queries: int = 1200) -> dict[str, RankFn]:
    """The grouped-CV systems (strong baselines, full-cv and its ablations) with a learned ranker trained on segment
    hold-out queries of the corpus; their reports (and the expansion slice) ride on ``systems["full-cv"].protocol``."""
    from evaluation.cv_systems import ProtocolSystems
    from matcher.ranking.holdout import train_ranker
    from models.cache import EmbeddingCache

    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite")
    ltr, _, test = train_ranker(base, base.enterprises_[: base.n_], cache, n_queries=n_queries, seed=0)
    protocol = ProtocolSystems(base, cases, ltr=ltr)
    out = protocol.systems()
    protocol.holdout_slice(test)
    protocol.reports["learned-ranker"] = ltr.card
    out["full-cv"].protocol = protocol.reports  # type: ignore[attr-defined]
    return out
