"""Score fusion as pure functions: reciprocal-rank fusion of the candidate sources and a transparent weighted sum.

Features (each in [0, 1], computed per candidate by :mod:`matcher.ranking.recommender`):

============== ================================================================================================
dense          cosine similarity of the need and the profile passage (e5), min-max scaled within the request
bm25           BM25 score of the need's terms over products + scope + name, divided by the request's best
link_fit       mapped to the gap link (1.0 × mapping score), to a neighbouring link (0.5), to the chain (0.2)
share          revenue share of the product that maps to the gap link (√share, so a 25% segment counts 0.5)
master         supplies what the region's 链主 consumes, or consumes what it makes (across the chain's edges)
capacity       size: percentile of employees within the corpus (unknown → 0.3) × 0.9, + 0.1 if listed
aiding         the firm's home province is one of the region's 产业援疆 aiding provinces
proximity      1 − distance between home province and region province / 4 000 km
industry       the firm's industry (申万 / GB/T) agrees with the chain or link
rrf            reciprocal-rank fusion of the dense, lexical and graph candidate lists, scaled to [0, 1]
sig_*          expansion signals before the request's date (:mod:`matcher.ranking.signals_features`): any, same
               chain, same / neighbouring link, same province, amounts; weight 0 unless measured otherwise
============== ================================================================================================

Default score = Σ weight × feature, weights from :class:`ScoringWeights` (configurable; documented in the README).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel

FEATURES: tuple[str, ...] = (
    "dense",
    "bm25",
    "link_fit",
    "share",
    "master",
    "capacity",
    "aiding",
    "proximity",
    "industry",
    "rrf",
    "sig_any",
    "sig_chain",
    "sig_link",
    "sig_province",
    "sig_amount",
)


class ScoringWeights(BaseModel):
    """Weights of the transparent default scorer (sum need not be 1; scores are compared within a request)."""

    dense: float = 0.30
    bm25: float = 0.15
    link_fit: float = 0.20
    share: float = 0.10
    master: float = 0.05
    capacity: float = 0.30
    aiding: float = 0.03
    proximity: float = 0.02
    industry: float = 0.05
    rrf: float = 0.0  # RRF fuses the candidate lists; as a score term it duplicated dense+bm25+link_fit (ablation)
    sig_any: float = 0.0  # expansion signals (#19): 0 until grouped cross-validation says otherwise
    sig_chain: float = 0.0
    sig_link: float = 0.0
    sig_province: float = 0.0
    sig_amount: float = 0.0

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, f) for f in FEATURES], dtype=np.float32)

    def without(self, *groups: str) -> ScoringWeights:
        """A copy with some features switched off (for ablations)."""
        return self.model_copy(update={g: 0.0 for g in groups})


def rrf(rank_lists: Sequence[Sequence[int]], n: int, k: float = 60.0) -> np.ndarray:
    """Reciprocal-rank fusion: Σ_lists 1 / (k + rank) for each of ``n`` items (rank starts at 1)."""
    out = np.zeros(n, dtype=np.float32)
    for ranked in rank_lists:
        for r, idx in enumerate(ranked, start=1):
            out[idx] += 1.0 / (k + r)
    return out


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to zeros."""
    if x.size == 0:
        return x
    lo, hi = float(np.min(x)), float(np.max(x))
    if hi - lo < 1e-9:
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def weighted_scores(features: np.ndarray, weights: ScoringWeights) -> tuple[np.ndarray, np.ndarray]:
    """Scores (n,) and per-feature contributions (n, F) of a feature matrix (n, F) ordered as FEATURES."""
    contrib = features * weights.vector()[None, :]
    return contrib.sum(axis=1), contrib


def evidence_strength(features: Mapping[str, float], method: str | None) -> tuple[str, str]:
    """Strong / medium / weak with the rule that decided it.

    - strong: a product maps to the gap link (alias or token match) with ≥ 10% revenue share, or the firm is a
      supplier/customer of the region's 链主 on that link;
    - medium: mapped to the gap link with a smaller share, or to a neighbouring link, or high text similarity
      (dense ≥ 0.7 and BM25 ≥ 0.5 of the request's best);
    - weak: text similarity only.
    """
    fit, share = features.get("link_fit", 0.0), features.get("share", 0.0)
    if fit >= 0.9 and share >= np.sqrt(0.10) - 1e-6:
        return "strong", f"主营产品直接对应该环节（{method or '匹配'}），收入占比≥10%"
    if fit >= 0.9 and features.get("master", 0.0) > 0:
        return "strong", "产品对应该环节且与本地链主存在上下游关系"
    if fit >= 0.9:
        return "medium", "产品对应该环节，但收入占比较小"
    if fit >= 0.45:
        return "medium", "产品对应相邻环节（上下游配套）"
    if features.get("dense", 0.0) >= 0.7 and features.get("bm25", 0.0) >= 0.5:
        return "medium", "文本高度相似（语义与关键词均匹配）"
    return "weak", "仅文本相似，未映射到该环节"
