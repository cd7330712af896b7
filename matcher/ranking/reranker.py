"""The learned reranker: a scikit-learn model over the scorer's feature vector, trained from labelled deals and
CRM feedback with grouped cross-validation, saved and versioned beside the data.

Rows are (group, features, label): one row per candidate the recommender returned for a need, label 1 for the
enterprise that really invested / signed (或 CRM 已签约), 0 otherwise. Groups tie rows that must not be split across
folds (the same investing enterprise or the same region), so cross-validated figures carry no leakage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from matcher.errors import NotFittedError
from matcher.ranking.scoring import FEATURES

logger = logging.getLogger(__name__)

MODEL_KINDS = ("logreg", "hgb")


@dataclass
class TrainingSet:
    """Rows for the reranker: one per (need, candidate)."""

    X: list[np.ndarray] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    need_ids: list[str] = field(default_factory=list)

    def add(self, need_id: str, group: str, features: np.ndarray, labels: np.ndarray) -> None:
        for f, lab in zip(features, labels):
            self.X.append(np.asarray(f, dtype=np.float32))
            self.y.append(int(lab))
            self.groups.append(group)
            self.need_ids.append(need_id)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.vstack(self.X) if self.X else np.zeros((0, len(FEATURES)), np.float32),
            np.array(self.y, dtype=np.int32),
            np.array(self.groups),
            np.array(self.need_ids),
        )


def connected_groups(keys: list[list[str]]) -> list[str]:
    """Union-find: items sharing any key (enterprise, region) end in the same group; returns a group label each."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent.setdefault(a, a) != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for ks in keys:
        for k in ks[1:]:
            parent[find(ks[0])] = find(k)
    return [find(ks[0]) for ks in keys]


class Reranker:
    """Logistic regression (transparent: contributions = coef × feature) or gradient boosting.

    Args:
        kind: "logreg" or "hgb".
    """

    def __init__(self, kind: str = "logreg", version: str | None = None) -> None:
        if kind not in MODEL_KINDS:
            raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
        self.kind = kind
        self.version = version or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.cv_metrics_: dict[str, float] = {}

    def _new_model(self):
        if self.kind == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_depth=3, class_weight="balanced")

    def fit(self, X: np.ndarray, y: np.ndarray) -> Reranker:
        if len(np.unique(y)) < 2:
            raise ValueError("training needs both positive and negative rows")
        self.model_ = self._new_model().fit(X, y)
        self.mean_ = X.mean(axis=0)
        self.n_rows_ = int(len(y))
        return self

    def cross_validate(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, need_ids: np.ndarray, n_splits: int = 5
    ) -> dict[str, float]:
        """Grouped K-fold: rank each held-out need's candidates; report recall@10 / MRR of the positives."""
        from sklearn.model_selection import GroupKFold

        n_groups = len(np.unique(groups))
        folds = GroupKFold(n_splits=min(n_splits, n_groups))
        hits10, rr = [], []
        for train, test in folds.split(X, y, groups):
            if len(np.unique(y[train])) < 2:
                continue
            m = Reranker(self.kind).fit(X[train], y[train])
            s = m.predict(X[test])
            for need in np.unique(need_ids[test]):
                sel = need_ids[test] == need
                if not y[test][sel].any():
                    continue
                order = np.argsort(-s[sel], kind="stable")
                ranks = np.flatnonzero(y[test][sel][order]) + 1
                hits10.append(float(ranks.min() <= 10))
                rr.append(1.0 / ranks.min())
        self.cv_metrics_ = {
            "recall@10": float(np.mean(hits10)) if hits10 else 0.0,
            "mrr": float(np.mean(rr)) if rr else 0.0,
            "n_needs": float(len(rr)),
            "n_folds": float(folds.n_splits),
        }
        return self.cv_metrics_

    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("Reranker.fit() or Reranker.load() must run before predict()")

    def predict(self, F: np.ndarray) -> np.ndarray:
        """Scores (probability of a deal) for a feature matrix ordered as FEATURES."""
        self._check()
        return self.model_.predict_proba(np.asarray(F, dtype=np.float32))[:, 1]

    def contributions(self, F: np.ndarray) -> np.ndarray:
        """Per-feature contributions: coef × (x − mean) for logreg; occlusion (score drop at the mean) for hgb."""
        self._check()
        F = np.asarray(F, dtype=np.float32)
        if self.kind == "logreg":
            return (F - self.mean_[None, :]) * self.model_.coef_[0][None, :]
        base = self.predict(F)
        out = np.zeros_like(F)
        for j in range(F.shape[1]):
            G = F.copy()
            G[:, j] = self.mean_[j]
            out[:, j] = base - self.predict(G)
        return out

    def save(self, path: Path) -> Path:
        """Write model.joblib and reranker.json (version, kind, features, CV metrics) atomically."""
        import joblib

        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / "model.joblib.tmp"
        joblib.dump({"model": self.model_, "mean": self.mean_}, tmp)
        tmp.replace(path / "model.joblib")
        meta = {
            "version": self.version,
            "kind": self.kind,
            "features": list(FEATURES),
            "cv_metrics": self.cv_metrics_,
            "n_rows": self.n_rows_,
            "saved_at": datetime.now(timezone.utc).isoformat(),
        }
        (path / "reranker.json.tmp").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        (path / "reranker.json.tmp").replace(path / "reranker.json")
        return path

    @classmethod
    def load(cls, path: Path) -> Reranker:
        import joblib

        path = Path(path)
        meta = json.loads((path / "reranker.json").read_text(encoding="utf-8"))
        if meta.get("features") != list(FEATURES):
            raise ValueError(f"reranker at {path} was trained on features {meta.get('features')}, expected {FEATURES}")
        obj = joblib.load(path / "model.joblib")
        rr = cls(meta["kind"], meta["version"])
        rr.model_, rr.mean_ = obj["model"], obj["mean"]
        rr.cv_metrics_ = meta.get("cv_metrics", {})
        rr.n_rows_ = meta.get("n_rows", 0)
        return rr
