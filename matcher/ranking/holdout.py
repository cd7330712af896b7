"""Training queries made from the corpus by segment hold-out: a ranker trained without deal labels.

A firm with several product segments is the positive answer to a question we can ask without any deal: hide
one of its segments that maps to a catalogue link (from its profile text, vector, postings and portfolio), ask
for that link, and see whether the ranker finds the firm from what remains — its other products, its industry,
what firms like it make. That is the expansion case (a materials maker entering the next stage) the deals hold
about a third of; the firms that already make the link are relevant too (graded below the hidden one), so the
ranker also learns that makers come first.

Rounds: each round hides one segment in each of up to ``per_round`` distinct firms, fits a recommender on the
modified corpus (unchanged firms keep their vectors; the hidden profiles are embedded again) and asks every
hidden link once, as a region-less need of the link's chain. The product space is learned on the modified
corpus, so a hidden segment cannot reach its own relatedness inputs.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matcher.ranking.recommendation import Filters, RecommendRequest
from matcher.records import Enterprise

logger = logging.getLogger(__name__)

__all__ = ["HoldoutQuery", "HoldoutStats", "holdout_candidates", "holdout_queries"]

MIN_SCORE = 0.8  # mapping confidence of the hidden segment to its link
MIN_SHARE = 0.05  # revenue share of the hidden segment


@dataclass
class HoldoutQuery:
    """One training query: the pool's ids, feature rows (ordered as FEATURES) and graded labels."""

    firm_id: str
    link_id: str
    chain_id: str | None
    ids: list[str]
    F: np.ndarray
    labels: np.ndarray  # 2 = the firm whose segment was hidden, 1 = a firm that makes the link, 0 = other


@dataclass
class HoldoutStats:
    """What the training-query generation saw (for the model card)."""

    firms_eligible: int = 0
    queries_asked: int = 0
    queries_with_positive: int = 0
    mean_pool: float = 0.0
    rounds: int = 0
    seconds: float = 0.0
    links: int = 0
    chains: dict[str, int] = field(default_factory=dict)


def holdout_candidates(
    corpus: Sequence[Enterprise], mapper, rng: random.Random
) -> list[tuple[int, str, list[int]]]:
    """(corpus position, link to hide, product positions to drop) for every firm that has a hideable segment:
    at least two segments, one of them (≥ 5% of revenue) mapping to a link with confidence ≥ 0.8 while another
    segment maps elsewhere or remains."""
    out: list[tuple[int, str, list[int]]] = []
    for i, e in enumerate(corpus):
        if e.fictional or len(e.products) < 2:
            continue
        by_link: dict[str, list[int]] = {}
        for j, p in enumerate(e.products):
            if (p.share or 0.0) < MIN_SHARE:
                continue
            for m in mapper.map_product(p.name)[:1]:
                if m.score >= MIN_SCORE:
                    by_link.setdefault(m.link_id, []).append(j)
        options = [(lid, js) for lid, js in by_link.items() if len(js) < len(e.products)]
        if options:
            lid, js = rng.choice(sorted(options))
            # every segment naming the same link goes (a firm listing 铝棒 twice must not keep one copy)
            drop = [j for j, p in enumerate(e.products) if any(m.link_id == lid for m in mapper.map_product(p.name))]
            if len(drop) < len(e.products):
                out.append((i, lid, drop))
    return out


def _hidden(e: Enterprise, drop: list[int]) -> Enterprise:
    keep = [p for j, p in enumerate(e.products) if j not in set(drop)]
    return e.model_copy(update={"products": keep, "links": []}, deep=True)


def holdout_queries(
    corpus: Sequence[Enterprise], fit: Callable[[list[Enterprise], np.ndarray | None], object],
    vectors: np.ndarray | None, catalogue, mapper, n_queries: int = 2000, per_round: int = 800, seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[HoldoutQuery], HoldoutStats]:
    """Make up to ``n_queries`` segment hold-out queries.

    Args:
        corpus: the shared corpus (fictional firms are never used).
        fit: ``fit(enterprises, vectors_or_None) -> Recommender`` fitted on a modified corpus; rows of hidden firms
            in ``vectors`` are NaN and must be embedded again.
        vectors: the corpus's profile vectors (None: every fit embeds).
        catalogue, mapper: the chain catalogue and link mapper.
        n_queries, per_round, seed: how many queries, firms hidden per fitted corpus, and the sampling seed.
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    cands = holdout_candidates(corpus, mapper, rng)
    rng.shuffle(cands)
    stats = HoldoutStats(firms_eligible=len(cands))
    cands = cands[:n_queries]
    queries: list[HoldoutQuery] = []
    pools: list[int] = []
    for start in range(0, len(cands), per_round):
        batch = cands[start : start + per_round]
        ents = list(corpus)
        vecs = None if vectors is None else np.array(vectors, dtype=np.float32, copy=True)
        for i, _, drop in batch:
            ents[i] = _hidden(corpus[i], drop)
            if vecs is not None:
                vecs[i] = np.nan
        rec = fit(ents, vecs)
        rec.all_features = True  # type: ignore[attr-defined]
        for i, lid, _ in batch:
            chains = catalogue.chains_of(lid)
            chain = chains[0] if chains else None
            req = RecommendRequest(chain=chain, link=lid, k=10, filters=Filters())
            ids, F = rec.candidate_features(req, None)  # type: ignore[attr-defined]
            stats.queries_asked += 1
            firm = corpus[i].id
            if firm not in ids:
                continue
            labels = np.zeros(len(ids), dtype=np.int32)
            col_fit = _feature_col("link_fit")
            labels[F[:, col_fit] >= 0.9] = 1
            labels[ids.index(firm)] = 2
            queries.append(HoldoutQuery(firm, lid, chain, ids, F, labels))
            pools.append(len(ids))
            stats.chains[chain or "-"] = stats.chains.get(chain or "-", 0) + 1
            if progress:
                progress(stats.queries_asked, len(cands))
        stats.rounds += 1
    stats.queries_with_positive = len(queries)
    stats.mean_pool = float(np.mean(pools)) if pools else 0.0
    stats.links = len({q.link_id for q in queries})
    stats.seconds = round(time.perf_counter() - t0, 1)
    logger.info(
        "hold-out queries: %d asked, %d with the hidden firm in the pool (mean pool %.0f), %d links, %.0fs",
        stats.queries_asked, stats.queries_with_positive, stats.mean_pool, stats.links, stats.seconds,
    )  # fmt: skip
    return queries, stats


def _feature_col(name: str) -> int:
    from matcher.ranking.scoring import FEATURES

    return FEATURES.index(name)


def train_ranker(
    base, corpus: Sequence[Enterprise], cache=None, n_queries: int = 1200, seed: int = 0,
    test_fraction: float = 0.2, params: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
):
    """Make hold-out queries over ``base``'s fitted corpus, split them by firm into train / test, and train a
    :class:`~matcher.ranking.ltr.LearnedRanker` on the training part (labels: the hidden firm only).

    Returns ``(ranker, stats, test_queries)``; the test queries are the expansion slice the evaluation reports.
    """
    from matcher.ranking.ltr import LearnedRanker
    from matcher.ranking.recommender import Recommender

    def fit(ents: list[Enterprise], vecs: np.ndarray | None):
        rec = Recommender(base.catalogue, base.embedder)
        if vecs is None:
            return rec.fit(ents, cache=cache)
        bad = [i for i in range(len(ents)) if np.isnan(vecs[i, 0])]
        for i in bad:
            ents[i].links = rec.mapper.map(ents[i])
        if bad:
            vecs[bad] = rec._embed_passages([ents[i] for i in bad], None, cache)
        return rec.fit(ents, vectors=vecs)

    queries, stats = holdout_queries(
        corpus, fit, np.asarray(base.vectors_[: base.n_]), base.catalogue, base.mapper, n_queries=n_queries,
        seed=seed, progress=progress,
    )  # fmt: skip
    rng = random.Random(seed)
    firms = sorted({q.firm_id for q in queries})
    rng.shuffle(firms)
    test_firms = set(firms[: int(len(firms) * test_fraction)])
    train = [q for q in queries if q.firm_id not in test_firms]
    test = [q for q in queries if q.firm_id in test_firms]
    ranker = LearnedRanker(params=params, seed=seed).fit([(q.F, (q.labels == 2).astype(np.int32)) for q in train])
    ranker.card = {
        "training_data": "segment hold-out queries from the corpus (no deal labels): one hidden segment per firm",
        "holdout": {**stats.__dict__, "train_queries": len(train), "test_queries": len(test),
                    "test_firms": len(test_firms), "seed": seed},
    }  # fmt: skip
    return ranker, stats, test
