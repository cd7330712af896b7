"""Ranking: from a need (region, chain, link, text) to explained, diverse candidates.

- `recommendation`: request / candidate / result records; `query`: the need as a query;
  `profile_text`: the passage embedded per enterprise (import the function from that module);
  `scoring`: features and the weighted scorer;
- `recommender` (`Recommender`) composed of `corpus` (fit, updates), `candidates` (sources, features),
  `diversity` and `explain`; `reranker`: the learned reranker;
- `fit`: the reverse direction (regions whose gaps a firm fits); `engine`: everything wired for the service.
"""

from __future__ import annotations

from matcher.ranking.candidates import SIZE_BRACKETS, CandidateSources, SourceDepth
from matcher.ranking.corpus import FittedCorpus, PreparedUpdate
from matcher.ranking.diversity import Diversity
from matcher.ranking.engine import Engine
from matcher.ranking.explain import Explanations
from matcher.ranking.fit import FIT_WEIGHTS, GapIndex, RegionFit, gap_text
from matcher.ranking.profile_text import (
    MAX_CHARS,
    MAX_LINKS,
    MAX_PRODUCTS,
    MIN_SCOPE_CHARS,
    short_name,
)
from matcher.ranking.query import CHAIN_WEIGHT, NEIGHBOUR_WEIGHT, NeedQuery, build_query, master_links_of
from matcher.ranking.recommendation import MAX_K, Candidate, Filters, Recommendation, RecommendRequest
from matcher.ranking.recommender import Recommender
from matcher.ranking.reranker import MODEL_KINDS, Reranker, TrainingSet, connected_groups
from matcher.ranking.scoring import FEATURES, ScoringWeights, evidence_strength, minmax, rrf, weighted_scores

__all__ = [
    "CHAIN_WEIGHT",
    "Candidate",
    "CandidateSources",
    "Diversity",
    "Engine",
    "Explanations",
    "FEATURES",
    "FIT_WEIGHTS",
    "Filters",
    "FittedCorpus",
    "GapIndex",
    "MAX_CHARS",
    "MAX_K",
    "MAX_LINKS",
    "MAX_PRODUCTS",
    "MIN_SCOPE_CHARS",
    "MODEL_KINDS",
    "NEIGHBOUR_WEIGHT",
    "NeedQuery",
    "PreparedUpdate",
    "RecommendRequest",
    "Recommendation",
    "Recommender",
    "RegionFit",
    "Reranker",
    "SIZE_BRACKETS",
    "ScoringWeights",
    "SourceDepth",
    "TrainingSet",
    "build_query",
    "connected_groups",
    "evidence_strength",
    "gap_text",
    "master_links_of",
    "minmax",
    "rrf",
    "short_name",
    "weighted_scores",
]
