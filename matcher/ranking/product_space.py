"""Expansion propensity from the corpus itself: which catalogue links go together in firms (product space).

A firm that does not list the gap's product can still be the one to invest in it: a materials maker moves into
the next stage, a chemicals or equipment maker into a related new-energy product. Text similarity cannot see
this; co-occurrence can. From the fitted corpus (firm × mapped link, firm × Shenwan industry) we learn

- **link relatedness** R(a, b): normalised PMI of two links being made by the same firm (clipped at 0,
  smoothed, at least ``min_count`` firms making both);
- **industry relatedness** RI(industry, b): normalised PMI of a firm in that industry making link b — it serves
  firms with only a name and an industry;

and score each firm's **relatedness density** to a gap link: the revenue-weighted mean relatedness of its
current portfolio (the gap link itself excluded — making it is ``link_fit``'s evidence, not relatedness), and
its **vertical propensity** from the catalogue edges: the share of its revenue in the link's direct inputs or
outputs (上游原料企业向下游延伸, 下游用户向上游整合).

Everything is computed once per fit (a few hundred links: the matrices are small and dense); per request the
features cost one sparse product over the firms that make a related link.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["ProductSpace", "portfolio_weight"]

DEFAULT_SHARE = 0.1  # weight of a mapped product whose revenue share is unknown


def portfolio_weight(score: float, share: float | None) -> float:
    """Weight of one mapped link in a firm's portfolio: mapping confidence × revenue share (unknown → 0.1)."""
    return float(score) * (float(share) if share and share > 0 else DEFAULT_SHARE)


@dataclass
class Related:
    """The strongest related link behind a firm's density, for the reason text."""

    link_id: str
    relatedness: float


class ProductSpace:
    """Link–link and industry–link relatedness learned from firms' portfolios.

    Args:
        min_count: firms that must make both links (or be in the industry and make the link) for a pair to count.
        min_score: mapping confidence for a link to count as made by a firm (weak token matches are noise here:
            "中板材" once looked like PVC型材, and steelmakers became "related" to PVC profiles).
        shrink: NPMI × c / (c + shrink), so a pair seen in 3 firms counts less than one seen in 30.
    """

    def __init__(self, min_count: int = 3, min_score: float = 0.8, shrink: float = 2.0) -> None:
        self.min_count = min_count
        self.min_score = min_score
        self.shrink = shrink

    def fit(
        self, portfolios: Sequence[Sequence[tuple[str, float, float | None]]], industries: Sequence[str | None]
    ) -> ProductSpace:
        """Learn relatedness from firms' mapped links ``[(link_id, score, share)]`` and their industries."""
        links = sorted({lid for p in portfolios for lid, s, _ in p if s >= self.min_score})
        self.link_ids_ = links
        self.link_pos_ = {lid: i for i, lid in enumerate(links)}
        inds = sorted({i for i in industries if i})
        self.industry_pos_ = {ind: i for i, ind in enumerate(inds)}
        import scipy.sparse as sp

        n, L = len(portfolios), len(links)
        rows, cols = [], []
        for f, p in enumerate(portfolios):
            for lid in {lid for lid, s, _ in p if s >= self.min_score}:
                rows.append(f)
                cols.append(self.link_pos_[lid])
        M = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, L))
        frows = [f for f, ind in enumerate(industries) if ind]
        fcols = [self.industry_pos_[industries[f]] for f in frows]  # type: ignore[index]
        I = sp.csr_matrix((np.ones(len(frows), np.float32), (frows, fcols)), shape=(n, len(inds)))
        made = np.asarray(M.sum(0)).ravel()
        joint = (M.T @ M).toarray()
        self.joint_ = joint.astype(np.int32)  # firms making both links (the reasons quote these counts)
        self.R_ = _npmi(joint, made, made, n, self.min_count, zero_diagonal=True) * (joint / (joint + self.shrink))
        joint_i = (I.T @ M).toarray()
        self.joint_industry_ = joint_i.astype(np.int32)
        firms_i = np.asarray(I.sum(0)).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):  # P(link | industry): the share of its firms making it
            self.industry_share_ = np.where(firms_i[:, None] > 0, joint_i / firms_i[:, None], 0.0).astype(np.float32)
        self.RI_ = _npmi(joint_i, firms_i, made, n, self.min_count, False) * (
            joint_i / (joint_i + self.shrink)
        )
        self.R_, self.RI_ = self.R_.astype(np.float32), self.RI_.astype(np.float32)
        self.n_firms_ = n
        logger.info(
            "product space: %d links, %d industries, %d related link pairs, %d industry-link pairs over %d firms",
            L, len(inds), int((self.R_ > 0).sum() // 2), int((self.RI_ > 0).sum()), n,
        )  # fmt: skip
        return self

    def related_links(self, link_id: str) -> dict[str, float]:
        """Links related to ``link_id`` with their relatedness (> 0), strongest first."""
        j = self.link_pos_.get(link_id)
        if j is None:
            return {}
        col = self.R_[:, j]
        nz = np.flatnonzero(col > 0)
        nz = nz[np.argsort(-col[nz], kind="stable")]
        return {self.link_ids_[i]: float(col[i]) for i in nz}

    def density(self, portfolio: Sequence[tuple[str, float, float | None]], link_id: str) -> tuple[float, Related | None]:
        """Revenue-weighted mean relatedness of a portfolio to ``link_id`` (the link itself excluded)."""
        j = self.link_pos_.get(link_id)
        if j is None:
            return 0.0, None
        num = den = 0.0
        best: Related | None = None
        for lid, s, share in portfolio:
            if lid == link_id or s < self.min_score:
                continue
            w = portfolio_weight(s, share)
            i = self.link_pos_.get(lid)
            r = float(self.R_[i, j]) if i is not None else 0.0
            num += w * r
            den += w
            if r > 0 and (best is None or r > best.relatedness):
                best = Related(lid, r)
        return (num / den if den > 0 else 0.0), best

    def co_makers(self, a: str, b: str) -> int:
        """How many corpus firms make both links (confident mappings)."""
        i, j = self.link_pos_.get(a), self.link_pos_.get(b)
        return int(self.joint_[i, j]) if i is not None and j is not None else 0

    def industry_makers(self, industry: str | None, link_id: str) -> int:
        """How many corpus firms of ``industry`` make ``link_id`` (confident mappings)."""
        i, j = self.industry_pos_.get(industry or ""), self.link_pos_.get(link_id)
        return int(self.joint_industry_[i, j]) if i is not None and j is not None else 0

    def industry_share(self, industry: str | None, link_id: str) -> float:
        """The share of the corpus firms of ``industry`` that make ``link_id`` (confident mappings)."""
        i, j = self.industry_pos_.get(industry or ""), self.link_pos_.get(link_id)
        return float(self.industry_share_[i, j]) if i is not None and j is not None else 0.0

    def industry_relatedness(self, industry: str | None, link_id: str) -> float:
        """How much more often than chance firms of ``industry`` make ``link_id`` (NPMI, ≥ 0)."""
        i = self.industry_pos_.get(industry or "")
        j = self.link_pos_.get(link_id)
        if i is None or j is None:
            return 0.0
        return float(self.RI_[i, j])


def _npmi(
    joint: np.ndarray, count_a: np.ndarray, count_b: np.ndarray, n: int, min_count: int, zero_diagonal: bool
) -> np.ndarray:
    """Normalised PMI of co-occurrence counts, clipped to [0, 1]; pairs seen fewer than ``min_count`` times → 0."""
    if n == 0 or joint.size == 0:
        return np.zeros_like(joint, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_ab = joint / n
        pmi = np.log(p_ab / ((count_a[:, None] / n) * (count_b[None, :] / n)))
        npmi = pmi / -np.log(p_ab)
    npmi = np.where((joint >= min_count) & np.isfinite(npmi), npmi, 0.0)
    npmi = np.clip(npmi, 0.0, 1.0).astype(np.float32)
    if zero_diagonal:
        np.fill_diagonal(npmi, 0.0)
    return npmi
