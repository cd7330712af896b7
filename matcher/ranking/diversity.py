"""Diversity of the recommender's ranked lists: group dedupe and MMR."""

from __future__ import annotations

import logging

import numpy as np

from matcher.ranking.scoring import minmax

logger = logging.getLogger(__name__)

__all__ = ["Diversity"]


class Diversity:
    """Diversity of a ranked list: one firm per group (parent group / normalised name) and per stock code, then
    MMR over the profile vectors (``mmr_lambda``; 1.0 = relevance only).
    """

    def _dedupe_keys(self) -> list[tuple[str, ...]]:
        """Per firm: its group key and, when listed, its stock-code key (cached per fitted arrays)."""
        cached = getattr(self, "_dedupe_cache", None)
        if cached is None or cached[0] is not self.enterprises_ or cached[1] is not self.group_:
            keys = [
                (f"g:{g}", f"s:{e.stock_code[:6]}") if e.stock_code else (f"g:{g}",)
                for e, g in zip(self.enterprises_, self.group_, strict=True)
            ]
            cached = self._dedupe_cache = (self.enterprises_, self.group_, keys)
        return cached[2]

    def _diversify(self, idx: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
        """Group dedupe (one firm per group) then MMR over profile vectors; returns positions into idx."""
        order = np.argsort(-scores, kind="stable").tolist()
        need = k if self.mmr_lambda >= 1.0 else max(3 * k, 30)  # the most positions used below
        if self.group_dedupe:
            keys_of = self._dedupe_keys()
            rows = idx.tolist()
            seen: set[str] = set()
            kept = []
            for j in order:
                # one record per real firm: the same group, or the same stock code under another record (a
                # renamed shell, a demo profile of a listed firm)
                keys = keys_of[rows[j]]
                if any(key in seen for key in keys):
                    continue
                seen.update(keys)
                kept.append(j)
                if len(kept) >= need:  # the rest of the pool cannot enter the top k
                    break
            order = kept
        if self.mmr_lambda >= 1.0 or len(order) <= 1:
            return order[:k]
        pool = order[: max(3 * k, 30)]
        vecs = self.vectors_[idx[pool]]
        rel = minmax(scores[pool].astype(np.float32))
        chosen: list[int] = []
        max_sim = np.full(len(pool), -1.0, dtype=np.float32)
        available = np.ones(len(pool), dtype=bool)
        for _ in range(min(k, len(pool))):
            mmr = self.mmr_lambda * rel - (1 - self.mmr_lambda) * np.where(max_sim < 0, 0, max_sim)
            mmr[~available] = -np.inf
            p = int(np.argmax(mmr))
            chosen.append(pool[p])
            available[p] = False
            max_sim = np.maximum(max_sim, vecs @ vecs[p])
        return chosen
