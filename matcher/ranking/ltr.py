"""The learned ranker: LightGBM LambdaRank over the matcher's features, trained on segment hold-out queries.

It never sees a deal label: its training queries come from the corpus (:mod:`matcher.ranking.holdout`). The
employee prior is not one of its features (a hold-out positive is drawn without regard to size, so size
would be learned as noise); the final score adds ``prior_weight`` × z(log employees), the one weight chosen by
grouped cross-validation on the deals. Region context (链主, aiding, proximity) is added with the default
scorer's weights, since hold-out queries have no region.

Saved as a versioned directory: ``model.txt`` (LightGBM), ``card.json`` (the model card: data, features,
parameters, seed, training-query statistics, CV metrics, package versions).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from matcher.errors import NotFittedError
from matcher.ranking.scoring import FEATURES

logger = logging.getLogger(__name__)

__all__ = ["LTR_FEATURES", "LearnedRanker", "apply_saved_ranker"]

LTR_FEATURES: tuple[str, ...] = (
    "dense", "bm25", "tfidf", "link_fit", "share", "industry", "related", "ind_related", "vertical",
)  # fmt: skip
CONTEXT_FEATURES: tuple[str, ...] = ("master", "aiding", "proximity")
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.9,
    "lambdarank_truncation_level": 50,
    "label_gain": [0.0, 1.0, 3.0],
    "verbose": -1,
    "n_jobs": 1,
    "deterministic": True,
    "force_row_wise": True,
}


class LearnedRanker:
    """LambdaRank model + prior weight, usable as the recommender's ``reranker`` (``predict``, ``contributions``).

    Args:
        prior_weight: weight of z(log employees) added to the model's score.
        context_weights: weights of the region-context features added to the score.
        params: LightGBM parameters (defaults: :data:`DEFAULT_PARAMS`).
        seed: the training seed.
    """

    kind = "lambdarank"

    def __init__(
        self, prior_weight: float = 0.0, context_weights: dict[str, float] | None = None,
        params: dict[str, Any] | None = None, seed: int = 0, version: str | None = None,
    ) -> None:  # fmt: skip
        self.prior_weight = prior_weight
        self.context_weights = dict(context_weights or {"master": 0.05, "aiding": 0.03, "proximity": 0.02})
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed
        self.version = version or datetime.now(timezone.utc).strftime("ltr-%Y%m%dT%H%M%SZ")
        self.card: dict[str, Any] = {}
        self._cols = [FEATURES.index(f) for f in LTR_FEATURES]
        self._ctx = [(FEATURES.index(f), w) for f, w in self.context_weights.items()]
        self._cap = FEATURES.index("capacity")

    # ------------------------------------------------------------------------------------ training
    def fit(self, queries: list[tuple[np.ndarray, np.ndarray]]) -> LearnedRanker:
        """Train on ``[(F, labels)]`` per query (F ordered as FEATURES; graded labels 0/1/2)."""
        import lightgbm as lgb

        queries = [(F, y) for F, y in queries if len(y) and y.max() > 0]
        if not queries:
            raise ValueError("no training query has a positive row")
        X = np.vstack([F[:, self._cols] for F, _ in queries]).astype(np.float32)
        y = np.concatenate([y for _, y in queries])
        group = [len(y) for _, y in queries]
        self.model_ = lgb.LGBMRanker(random_state=self.seed, **self.params)
        self.model_.fit(X, y, group=group, feature_name=list(LTR_FEATURES))
        self.n_queries_, self.n_rows_ = len(queries), int(len(y))
        logger.info("learned ranker trained on %d queries, %d rows", self.n_queries_, self.n_rows_)
        return self

    def _check(self) -> None:
        if not hasattr(self, "model_") and not hasattr(self, "booster_"):
            raise NotFittedError("LearnedRanker.fit() or LearnedRanker.load() must run before predict()")

    def model_scores(self, F: np.ndarray) -> np.ndarray:
        """The LambdaRank score alone (no prior, no context)."""
        self._check()
        X = np.asarray(F, dtype=np.float32)[:, self._cols]
        if hasattr(self, "model_"):
            return np.asarray(self.model_.booster_.predict(X), dtype=np.float64)
        return np.asarray(self.booster_.predict(X), dtype=np.float64)

    def predict(self, F: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
        """Score of each row: model + prior_weight × prior + context. ``prior`` defaults to a z-score read back
        from the ``capacity`` feature (its percentile), so the recommender can call ``predict(F)``."""
        s = self.model_scores(F)
        if prior is None:
            prior = _z_from_percentile(np.asarray(F, dtype=np.float64)[:, self._cap])
        s = s + self.prior_weight * prior
        for j, w in self._ctx:
            s = s + w * np.asarray(F, dtype=np.float64)[:, j]
        return s

    def contributions(self, F: np.ndarray) -> np.ndarray:
        """Per-feature contributions (LightGBM SHAP values; prior on ``capacity``, context at their weights)."""
        self._check()
        F64 = np.asarray(F, dtype=np.float64)
        out = np.zeros_like(F64, dtype=np.float32)
        X = F64[:, self._cols].astype(np.float32)
        booster = self.model_.booster_ if hasattr(self, "model_") else self.booster_
        shap = booster.predict(X, pred_contrib=True)
        for k, c in enumerate(self._cols):
            out[:, c] = shap[:, k]
        out[:, self._cap] = self.prior_weight * _z_from_percentile(F64[:, self._cap])
        for j, w in self._ctx:
            out[:, j] = w * F64[:, j]
        return out

    # ------------------------------------------------------------------------------------ persistence
    def save(self, path: Path, card: dict[str, Any] | None = None) -> Path:
        """Write ``model.txt`` and ``card.json`` atomically into the directory ``path``."""
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        booster = self.model_.booster_ if hasattr(self, "model_") else self.booster_
        tmp = path / "model.txt.tmp"
        booster.save_model(str(tmp))
        tmp.replace(path / "model.txt")
        self.card = {
            **self.card, **(card or {}),
            "version": self.version, "kind": self.kind, "features": list(LTR_FEATURES),
            "all_features": list(FEATURES), "prior_weight": self.prior_weight,
            "context_weights": self.context_weights, "params": self.params, "seed": self.seed,
            "saved_at": datetime.now(timezone.utc).isoformat(),
        }  # fmt: skip
        (path / "card.json.tmp").write_text(json.dumps(self.card, ensure_ascii=False, indent=2), encoding="utf-8")
        (path / "card.json.tmp").replace(path / "card.json")
        return path

    @classmethod
    def load(cls, path: Path) -> LearnedRanker:
        """Read a saved ranker; refuses one trained on other features."""
        import lightgbm as lgb

        path = Path(path)
        card = json.loads((path / "card.json").read_text(encoding="utf-8"))
        if card.get("features") != list(LTR_FEATURES) or card.get("all_features") != list(FEATURES):
            raise ValueError(f"learned ranker at {path} was trained on other features: {card.get('features')}")
        lr = cls(card["prior_weight"], card.get("context_weights"), card.get("params"), card.get("seed", 0),
                 card.get("version"))  # fmt: skip
        lr.booster_ = lgb.Booster(model_file=str(path / "model.txt"))
        lr.card = card
        return lr


def _z_from_percentile(capacity: np.ndarray) -> np.ndarray:
    """An approximately standard-normal prior from the capacity feature (0.9 × percentile + 0.1 × listed)."""
    from scipy.stats import norm

    pct = np.clip(np.asarray(capacity, dtype=np.float64) / 0.9, 0.01, 0.99)
    return norm.ppf(pct)


def apply_saved_ranker(rec: Any, root: Path) -> bool:
    """Give ``rec`` the learned ranker of ``root/CURRENT`` when its card says it beat the blend out of fold.

    A missing, broken or losing artefact leaves the blend as it is (logged); returns whether the ranker is used.
    """
    current = Path(root) / "CURRENT"
    if not current.exists():
        return False
    try:
        lr = LearnedRanker.load(Path(root) / current.read_text(encoding="utf-8").strip())
        lr.model_scores(np.zeros((1, len(FEATURES)), dtype=np.float32))
    except Exception as exc:  # a broken artefact must not take the service down
        logger.warning("learned ranker under %s not usable (%s); using the blend without it", root, exc)
        return False
    if not lr.card.get("beats_default"):
        logger.info("learned ranker %s did not beat the blend out of fold: not used", lr.version)
        return False
    rec.ltr = lr
    rec.blend = rec.blend.model_copy(update={"ltr": float(lr.card.get("ltr_weight", 0.0))})
    logger.info("learned ranker %s used with weight %s", lr.version, rec.blend.ltr)
    return True
