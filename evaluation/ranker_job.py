"""`chainmatch train-ranker`: train the learned ranker on segment hold-out queries of the corpus, select it on
deals by grouped cross-validation, and write a versioned artefact with its model card.

The ranker never sees a deal label (:mod:`matcher.ranking.holdout`). The deals decide only *whether* and *how
much* the product uses it: the blend's parameters are chosen by grouped CV with and without the ranker; the card
records both out-of-fold figures, the weight chosen on all cases, and ``beats_default`` — true only when the
blend with the ranker beats the blend without it out of fold (R@10 + R@50 + MRR). The service loads the
artefact only then.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluation.cv_systems import ProtocolSystems
from evaluation.environment import environment_info
from matcher.ranking.holdout import train_ranker
from matcher.ranking.ltr import LearnedRanker
from matcher.ranking.recommender import Recommender

logger = logging.getLogger(__name__)

__all__ = ["build_ranker", "write_ranker"]


def _objective(m: dict[str, float]) -> float:
    return m["recall@10"] + m["recall@50"] + m["mrr"]


def build_ranker(
    rec: Recommender, cases: Sequence[Any] | None, cache=None, n_queries: int = 1200, seed: int = 0,
    progress: Callable[[int, int], None] | None = None, params: dict[str, Any] | None = None,
) -> tuple[LearnedRanker, dict[str, Any]]:
    """Train the ranker on ``rec``'s corpus and (with ``cases``) select it by grouped CV; returns it and its card."""
    ltr, stats, test = train_ranker(rec, rec.enterprises_[: rec.n_], cache, n_queries=n_queries, seed=seed,
                                    params=params, progress=progress)  # fmt: skip
    card: dict[str, Any] = dict(ltr.card)
    if cases:
        protocol = ProtocolSystems(rec, cases, ltr=ltr)
        protocol.full_cv(name="with-ranker")
        protocol.full_cv(held_at_zero=("ltr",), name="without-ranker")
        protocol.holdout_slice(test)
        with_r, without = protocol.reports["with-ranker"], protocol.reports["without-ranker"]
        chosen = float(with_r["final_params"].get("ltr", 0.0))
        beats = _objective(with_r["out_of_fold"]) > _objective(without["out_of_fold"]) + 1e-9 and chosen > 0
        card.update(
            selection="grouped CV by investing firm on the deals (blend with vs without the ranker)",
            cv_with_ranker=with_r, cv_without_ranker=without, expansion_slice=protocol.reports["holdout-slice"],
            ltr_weight=chosen, beats_default=beats, cases=len(protocol.ids),
        )  # fmt: skip
        ltr.prior_weight = float(with_r["final_params"].get("prior", 0.0))
    else:
        card.update(selection="none (no deals given): not used by the service", beats_default=False, ltr_weight=0.0)
    card["environment"] = environment_info(embedder_id=rec.embedder.id)
    card["corpus"] = {"firms": int(rec.n_), "embedder": rec.embedder.id}
    ltr.card = card
    return ltr, card


def write_ranker(ltr: LearnedRanker, root: Path) -> Path:
    """Save under ``root/<version>/`` and point ``root/CURRENT`` at it (atomic rename)."""
    path = ltr.save(Path(root) / ltr.version)
    digest = hashlib.sha256((path / "model.txt").read_bytes()).hexdigest()[:16]
    ltr.card["model_sha256_16"] = digest
    ltr.save(path)
    tmp = Path(root) / "CURRENT.tmp"
    tmp.write_text(ltr.version + "\n", encoding="utf-8")
    tmp.replace(Path(root) / "CURRENT")
    return path
