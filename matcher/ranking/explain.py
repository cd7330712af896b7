"""Explanations of the recommender's candidates."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np

from matcher.ranking.query import NeedQuery
from matcher.ranking.recommendation import Candidate, SignalReason
from matcher.ranking.scoring import FEATURES, evidence_strength
from matcher.records import Region
from matcher.text import normalize_text

logger = logging.getLogger(__name__)

__all__ = ["Explanations"]


class Explanations:
    """Why each candidate is recommended: link filled, matched products with revenue share, 链主 relation, aiding
    pairing, evidence strength and each feature's contribution to the score.
    """

    def _explain(
        self, rank: int, i: int, score: float, feats: dict[str, float], contrib: np.ndarray, q: NeedQuery,
        region: Region | None, aiding: set[str], sources: list[str],
    ) -> Candidate:
        e = self.enterprises_[i]
        target = q.link_id
        matches = [m for m in e.links if m.link_id == target] if target else []
        if not matches:
            matches = sorted(
                (m for m in e.links if m.link_id in q.target_links),
                key=lambda m: -q.target_links[m.link_id] * m.score,
            )[:2]
        link_id = matches[0].link_id if matches else target
        products = dedupe_products([(m.evidence, m.share) for m in matches if m.evidence])[:3]
        rel_score, relation = self._master_relation(i, q)
        strength, rule = evidence_strength(feats, matches[0].method if matches else None)
        prov = self.province_[i]
        aid = f"{prov}为{region.name if region else '该地区'}的产业援疆结对省份" if prov in aiding else None
        reasons = []
        if e.fictional:
            reasons.append("虚构示例企业（演示数据，并非真实企业）")
        if link_id:
            lname = self.catalogue.links[link_id].name
            main = [(p, s) for p, s in products if s is None or s > 0]
            minor = [p for p, s in products if s is not None and s <= 0]
            if main:
                ps = "、".join(f"{p}（{s:.0%}）" if s else p for p, s in main)
                reasons.append(f"可填补「{lname}」环节：主营{ps}")
            elif minor:  # a segment with no revenue share is never called 主营
                reasons.append(f"可填补「{lname}」环节：涉及{'、'.join(minor)}（收入占比约0%）")
            else:
                reasons.append(f"与「{lname}」环节文本相似")
        if relation:
            reasons.append(relation)
        signals = self._signal_reasons(e, q)
        if signals:
            reasons.append(f"近期扩张：{signals[0].text}")
        if aid:
            reasons.append(aid)
        if e.listed:
            reasons.append(f"上市公司（{e.stock_code}）")
        if e.employees and not e.fictional:  # an example firm's size is invented: never stated as a fact
            reasons.append(f"员工约{e.employees}人")
        return Candidate(
            rank=rank,
            enterprise_id=e.id,
            name=e.name,
            province=e.province,
            city=e.city,
            score=round(score, 4),
            link_id=link_id,
            link_name=self.catalogue.links[link_id].name if link_id else None,
            matched_products=products,
            chain_master_relation=relation,
            aiding=aid,
            evidence_strength=strength,
            strength_rule=rule,
            features=feats,
            contributions={f: round(float(c), 4) for f, c in zip(FEATURES, contrib)},
            reasons=reasons,
            sources=sources,
            signals=signals,
            fictional=e.fictional,
        )

    def _signal_reasons(self, e, q: NeedQuery, limit: int = 3) -> list[SignalReason]:
        """The firm's (and its group's) latest expansion events before the need's date, with their sources."""
        book = getattr(self, "signals", None)
        if book is None:
            return []
        return [
            SignalReason(month=ev.month, kind=ev.kind, text=ev.reason(), urls=[s.url for s in ev.sources if s.url])
            for ev in book.history(e.id, e.parent_group, q.as_of or date.today())[:limit]
        ]


def dedupe_products(products: list[tuple[str, float | None]]) -> list[tuple[str, float | None]]:
    """Each product once, in first-seen order (a firm matching two links by the same product names it twice);
    a known revenue share wins over an unknown one."""
    out: dict[str, tuple[str, float | None]] = {}
    for name, share in products:
        key = normalize_text(name)
        if key not in out or (out[key][1] is None and share is not None):
            out[key] = (out[key][0] if key in out else name, share)
    return list(out.values())
