"""Training data for the learned reranker: labelled deal cases and CRM feedback, as matcher feature rows.

- Cases (deals format): each evaluable case becomes the matcher request an officer could write (see
  :func:`evaluation.requests.case_request`); every candidate of the three sources is a row, labelled 1 for the
  enterprise that really invested. Groups join cases sharing the investing enterprise or the region, so grouped
  cross-validation never trains on a deal's own enterprise or region.
- CRM feedback: the final event of each lead with an outcome (已签约 = 1, 已放弃 = 0), with the feature vector the
  recommender produced when the lead was shortlisted; one group per need (tenant, region, chain, link).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evaluation.cases import Case, build_qrels, split_evaluable
from evaluation.requests import case_request
from evaluation.signal_history import case_as_of, case_book
from matcher.knowledge.catalogue import default_catalogue
from matcher.ranking.recommender import Recommender
from matcher.ranking.reranker import TrainingSet, connected_groups
from matcher.ranking.scoring import FEATURES
from matcher.store.signals import SignalEvent

logger = logging.getLogger(__name__)


def case_pools(
    rec: Recommender,
    cases: Sequence[Case],
    progress: Callable[[int, int], None] | None = None,
    signal_events: Sequence[SignalEvent] | None = None,
    half_life_days: float = 730.0,
) -> list[dict[str, Any]]:
    """Candidate ids, feature rows and labels of every evaluable case (one matcher pass each).

    With ``signal_events`` each case's sig_* columns come from its own time-safe view
    (:func:`evaluation.signal_history.case_view`: strictly earlier events, never its own record).
    """
    catalogue = default_catalogue()
    evaluable, _ = split_evaluable(cases)
    qrels = build_qrels(evaluable)
    groups = connected_groups(
        [[f"ent:{c.stock_code}", f"region:{c.region_prefecture or c.region_province}"] for c in evaluable]
    )
    pools = []
    for n, (case, group) in enumerate(zip(evaluable, groups), start=1):
        req = case_request(case.query, catalogue, rec, 200)
        case_rec = rec
        if signal_events is not None:
            case_rec = copy.copy(rec)
            case_rec.signals = case_book(signal_events, case, catalogue, half_life_days)
            req = req.model_copy(update={"as_of": case_as_of(case)})
        ids, F = case_rec.candidate_features(req, None)
        truth = set(qrels.get(case.id, {}))
        pools.append({"case_id": case.id, "group": group, "ids": ids, "F": F,
                      "labels": np.array([i in truth for i in ids], dtype=np.int32)})
        if progress:
            progress(n, len(evaluable))
    return pools


def pools_training_set(pools: Sequence[dict[str, Any]]) -> TrainingSet:
    ts = TrainingSet()
    for p in pools:
        if len(p["ids"]):
            ts.add(p["case_id"], p["group"], p["F"], p["labels"])
    return ts


def feedback_training_set(events: Sequence[dict[str, Any]], ts: TrainingSet | None = None) -> TrainingSet:
    """Rows from CRM lead outcomes (final events with a label and a recorded feature vector)."""
    ts = ts or TrainingSet()
    used = 0
    for ev in events:
        if not ev.get("final") or ev.get("label") is None or not ev.get("features"):
            continue
        feats = np.array([[float(ev["features"].get(f, 0.0)) for f in FEATURES]], dtype=np.float32)
        need = f"crm:{ev.get('tenant')}:{ev.get('region_id')}:{ev.get('chain_id')}:{ev.get('link_id')}"
        ts.add(need, need, feats, np.array([int(ev["label"])]))
        used += 1
    logger.info("feedback: %d labelled lead outcomes used of %d events", used, len(events))
    return ts


def default_scorer_cv(pools: Sequence[dict[str, Any]], rec: Recommender) -> dict[str, float]:
    """Recall@10 / MRR of the transparent default scorer over the same pools (the reranker's comparison)."""
    from matcher.ranking.scoring import weighted_scores

    hits, rr = [], []
    for p in pools:
        if not p["labels"].any():
            continue
        s, _ = weighted_scores(p["F"], rec.weights)
        order = np.argsort(-s, kind="stable")
        rank = int(np.flatnonzero(p["labels"][order]).min()) + 1
        hits.append(float(rank <= 10))
        rr.append(1.0 / rank)
    return {"recall@10": float(np.mean(hits)) if hits else 0.0, "mrr": float(np.mean(rr)) if rr else 0.0,
            "n_needs": float(len(rr))}
