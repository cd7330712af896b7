"""Time-aware expansion signals for the evaluation (#19 item 4): a case sees only history it could have known.

The deals file doubles as history for its *other* cases, only through this module: each dated case whose firm is
in the corpus becomes one 签约 event (``origin="deal"``, document ``deal:<case id>``); a case's view keeps events
dated strictly before the first day of the case's month and never its own record (:func:`case_view`). Undated
cases see nothing. Shipped starter events (``matcher/data/signals``) join the history under the same date rule.

The signal weights are fitted only by cross-validation grouped by the investing firm (:func:`fold_weights`):
each case is ranked with weights chosen on the other folds.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np

from evaluation.cases import Case
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.geo import province_short
from matcher.ranking.signals_features import SIGNAL_FEATURES, SignalBook
from matcher.store.signals import SignalEvent, SignalSource

__all__ = [
    "WEIGHT_GRID",
    "annotate_history",
    "case_as_of",
    "case_book",
    "case_view",
    "deal_events",
    "fold_weights",
]

logger = logging.getLogger(__name__)

WEIGHT_GRID: dict[str, tuple[float, ...]] = {
    "sig_any": (0.0, 0.1, 0.3, 1.0, 3.0),
    "sig_chain": (0.0, 0.3, 1.0, 3.0),
    "sig_link": (0.0, 0.3, 1.0, 3.0),
    "sig_province": (0.0, 0.3, 1.0),
}
"""The grid the grouped cross-validation picks signal weights from (sig_amount stays 0)."""

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?")


def case_as_of(case: Case) -> date | None:
    """The first day of the case's month (deals are dated to the month), or None when undated."""
    m = _MONTH.match(case.date or "")
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    return date(int(m.group(1)), int(m.group(2)), 1)


def deal_events(cases: Iterable[Case], mapper) -> list[SignalEvent]:
    """One 签约 event per dated case whose firm is in the corpus (history for the other cases only)."""
    out = []
    for c in cases:
        day = case_as_of(c)
        if day is None or not c.doc_id:
            continue
        link = None
        for phrase in [c.product_link, *re.split(r"[/、,，]", c.product_link or "")]:
            hits = mapper.map_product(phrase) if phrase else []
            if hits:
                link = hits[0].link_id
                break
        out.append(
            SignalEvent(
                id=f"deal:{c.id}",
                enterprise_id=c.doc_id,
                firm=c.listed_parent or c.enterprise or c.doc_id,
                day=day,
                kind="签约",
                product=c.product_link or "",
                link_id=link,
                province=province_short(c.region_province) or c.region_province,
                region=c.region_prefecture or "",
                amount=c.amount_cny * 10_000 if c.amount_cny else None,
                confidence=1.0,
                origin="deal",
                sources=[SignalSource(url=c.source or "", document=f"deal:{c.id}")],
            )
        )
    return out


def case_view(events: Iterable[SignalEvent], case: Case) -> list[SignalEvent]:
    """Events a case may see: dated strictly before its month, never its own record; none when undated."""
    as_of = case_as_of(case)
    if as_of is None:
        return []
    own = f"deal:{case.id}"
    return [e for e in events if e.day < as_of and e.id != own and all(s.document != own for s in e.sources)]


def case_book(events: Iterable[SignalEvent], case: Case, catalogue: Catalogue, half_life_days: float) -> SignalBook:
    """The :class:`SignalBook` of one case's view."""
    return SignalBook(case_view(events, case), catalogue, half_life_days)


def annotate_history(cases: Sequence[Case], events: Sequence[SignalEvent]) -> dict[str, bool]:
    """Whether each case's firm has an earlier event in its view; also stored as the slice ``signal_history``."""
    out = {}
    for c in cases:
        seen = any(e.enterprise_id == c.doc_id for e in case_view(events, c)) if c.doc_id else False
        out[c.id] = seen
        c.extra["signal_history"] = "yes" if seen else "no"
    return out


def _fit_score(pools: Sequence[dict], idx: Sequence[int], base: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(recall@10, MRR) of the weighted sum over some pools: what a fold's training cases reward."""
    hits, rr = [], []
    for i in idx:
        p = pools[i]
        if not p["labels"].any():
            hits.append(0.0)
            rr.append(0.0)
            continue
        s = p["base_scores"] + p["F"] @ w if "base_scores" in p else p["F"] @ (base + w)
        rank = int(np.flatnonzero(p["labels"][np.argsort(-s, kind="stable")]).min()) + 1
        hits.append(float(rank <= 10))
        rr.append(1.0 / rank)
    return (float(np.mean(hits)), float(np.mean(rr))) if hits else (0.0, 0.0)


def fold_weights(
    pools: Sequence[dict], base: np.ndarray, features: Sequence[str], groups: Sequence[str], n_splits: int = 5
) -> dict[str, np.ndarray]:
    """Per case, the signal weight vector (ordered as ``features``) chosen on the other folds.

    Folds are grouped by ``groups`` (the investing firm); in each, the grid point with the best recall@10 over
    the training folds' pools wins (ties: the better MRR, then the smaller total weight).
    """
    from sklearn.model_selection import GroupKFold

    cols = {f: features.index(f) for f in SIGNAL_FEATURES}
    grid = []
    for combo in itertools.product(*WEIGHT_GRID.values()):
        w = np.zeros(len(features), dtype=np.float32)
        for name, value in zip(WEIGHT_GRID, combo, strict=True):
            w[cols[name]] = value
        grid.append(w)
    chosen: dict[str, np.ndarray] = {}
    folds = GroupKFold(n_splits=min(n_splits, len(set(groups))))
    for train, test in folds.split(np.zeros(len(pools)), groups=np.asarray(groups)):
        best = max(grid, key=lambda w: (*_fit_score(pools, train, base, w), -float(w.sum())))
        logger.info("fold: signal weights %s", {f: float(best[cols[f]]) for f in WEIGHT_GRID})
        for i in test:
            chosen[pools[i]["case_id"]] = best
    return chosen
