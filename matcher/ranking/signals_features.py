"""Expansion-signal features of candidate firms for one need, as of a date (#19).

For a need (chain, link, region province) and a date ``as_of``, each firm gets recency-weighted counts of its
expansion events dated strictly before ``as_of`` — weight ``confidence × 0.5 ** (age_days / half_life_days)`` —
and half that weight for events of its group (``parent_group``):

============== ===================================================================================================
sig_any        any expansion event
sig_chain      an event whose link belongs to the need's chain
sig_link       an event on the need's link (1.0) or a neighbouring link along the catalogue's edges (0.5)
sig_province   an event in the need's province
sig_amount     recency-weighted amounts (亿元)
============== ===================================================================================================

Counts are squashed to [0, 1] with ``1 − exp(−x)`` (amounts with ``log1p(x) / log1p(100)``, capped at 1), so one
fresh event reads about 0.63. Nothing dated on or after ``as_of`` can reach a feature (the evaluation relies on it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from matcher.knowledge.catalogue import Catalogue
from matcher.store.signals import EXPANSION_KINDS, SignalEvent

__all__ = ["SIGNAL_FEATURES", "SignalBook", "SignalNeed"]

SIGNAL_FEATURES: tuple[str, ...] = ("sig_any", "sig_chain", "sig_link", "sig_province", "sig_amount")

GROUP_WEIGHT = 0.5


@dataclass(frozen=True)
class SignalNeed:
    """What the features compare events with."""

    chain_id: str | None
    link_id: str | None
    province: str | None
    as_of: date


class SignalBook:
    """Expansion events indexed by firm and by group, ready to compute :data:`SIGNAL_FEATURES`.

    Args:
        events: the events (any order); kinds outside :data:`EXPANSION_KINDS` (e.g. 考察) are ignored.
        catalogue: for chain membership and neighbouring links.
        half_life_days: an event this old counts half.
    """

    def __init__(
        self, events: Iterable[SignalEvent], catalogue: Catalogue, half_life_days: float = 730.0
    ) -> None:
        self.catalogue = catalogue
        self.half_life_days = float(half_life_days)
        self.by_firm: dict[str, list[SignalEvent]] = defaultdict(list)
        self.by_group: dict[str, list[SignalEvent]] = defaultdict(list)
        self.by_link: dict[str, list[SignalEvent]] = defaultdict(list)
        for e in events:
            if e.kind not in EXPANSION_KINDS:
                continue
            if e.enterprise_id:
                self.by_firm[e.enterprise_id].append(e)
                if e.link_id:
                    self.by_link[e.link_id].append(e)
            if e.group:
                self.by_group[e.group].append(e)
        for lst in (*self.by_firm.values(), *self.by_group.values()):
            lst.sort(key=lambda e: e.day)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_firm.values())

    def history(self, firm_id: str, group: str | None, as_of: date) -> list[SignalEvent]:
        """The firm's and its group's events dated strictly before ``as_of``, newest first."""
        seen: dict[str, SignalEvent] = {}
        for e in (*self.by_firm.get(firm_id, ()), *(self.by_group.get(group, ()) if group else ())):
            if e.day < as_of:
                seen.setdefault(e.id or f"{e.firm}:{e.day}:{e.kind}:{e.product}", e)
        return sorted(seen.values(), key=lambda e: e.day, reverse=True)

    def active(self, start: date, end: date) -> tuple[set[str], set[str]]:
        """Firm ids and group names with an expansion event dated in ``[start, end)``."""
        firms = {f for f, evs in self.by_firm.items() if any(start <= e.day < end for e in evs)}
        groups = {g for g, evs in self.by_group.items() if any(start <= e.day < end for e in evs)}
        return firms, groups

    def candidates(self, links: dict[str, float], as_of: date, limit: int = 50) -> list[str]:
        """Firms with expansion events before ``as_of`` on the need's links (``{link: weight}``, e.g. the gap
        link 1.0 and its neighbours 0.5), strongest recency-weighted evidence first: a candidate source."""
        scores: dict[str, float] = defaultdict(float)
        for link, weight in links.items():
            for e in self.by_link.get(link, ()):
                if e.day < as_of and e.enterprise_id:
                    age = (as_of - e.day).days
                    scores[e.enterprise_id] += weight * e.confidence * 0.5 ** (age / self.half_life_days)
        return sorted(scores, key=lambda f: (-scores[f], f))[:limit]

    def features(self, firms: Sequence[tuple[str, str | None]], need: SignalNeed) -> np.ndarray:
        """Feature rows (len(firms), len(SIGNAL_FEATURES)) for ``(firm id, group)`` pairs."""
        out = np.zeros((len(firms), len(SIGNAL_FEATURES)), dtype=np.float32)
        if not self.by_firm and not self.by_group:
            return out
        chain_links: set[str] = set()
        if need.chain_id and need.chain_id in self.catalogue.chains:
            chain_links = set(self.catalogue.chains[need.chain_id].link_ids)
        near: set[str] = set()
        if need.link_id:
            near = self.catalogue.neighbours(need.link_id)
        for row, (fid, group) in enumerate(firms):
            own = self.by_firm.get(fid, ())
            grp = self.by_group.get(group, ()) if group else ()
            if not own and not grp:
                continue
            acc = [0.0] * 5
            for events, scale in ((own, 1.0), (grp, GROUP_WEIGHT)):
                for e in events:
                    if e.day >= need.as_of:
                        break  # sorted by day: nothing on or after as_of counts
                    if scale < 1.0 and e.enterprise_id == fid:
                        continue  # already counted as the firm's own
                    age = (need.as_of - e.day).days
                    w = scale * e.confidence * 0.5 ** (age / self.half_life_days)
                    acc[0] += w
                    if e.link_id and e.link_id in chain_links:
                        acc[1] += w
                    if need.link_id and e.link_id:
                        acc[2] += w if e.link_id == need.link_id else 0.5 * w if e.link_id in near else 0.0
                    if need.province and e.province == need.province:
                        acc[3] += w
                    if e.amount:
                        acc[4] += w * e.amount / 10_000.0
            out[row, :4] = [1.0 - math.exp(-x) for x in acc[:4]]
            out[row, 4] = min(math.log1p(acc[4]) / math.log1p(100.0), 1.0)
        return out
