"""Explanations of the recommender's candidates."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np

from matcher.knowledge.mapping import MAKER_SCORE
from matcher.ranking.query import NeedQuery
from matcher.ranking.recommendation import Candidate, SignalReason
from matcher.ranking.scoring import FEATURES, TEXT_EVIDENCE, evidence_strength
from matcher.records import LinkMatch, Region
from matcher.text import char_ngrams, normalize_text

logger = logging.getLogger(__name__)

__all__ = ["Explanations"]


CONFIDENT = MAKER_SCORE  # mapping confidence from which a product is said to fill the link (one constant with mapping)
MAIN_SHARE = 0.1  # revenue share from which a segment is called 主营


def _share(s: float) -> str:
    return "收入占比不足1%" if s < 0.005 else f"收入占比{s:.0%}"


class ExpansionReasons:
    """Plain reasons for the expansion features (relatedness, vertical integration); a mixin of Explanations."""

    def _expansion_reasons(self, i: int, feats: dict[str, float], q, link_id: str) -> list[str]:
        out: list[str] = []
        lname = self.catalogue.links[link_id].name
        space = self.__dict__.get("space_")
        if feats.get("related", 0.0) >= 0.3 and space is not None:
            _, best = self._density(i, link_id)
            if best is not None:
                other = self.catalogue.links[best.link_id].name if best.link_id in self.catalogue.links else best.link_id
                n = space.co_makers(best.link_id, link_id)
                out.append(f"语料中 {n} 家企业同时生产「{other}」与「{lname}」，本企业已有「{other}」业务")
        industry = self.enterprises_[i].sw_industry
        if feats.get("ind_related", 0.0) >= 0.3 and industry and space is not None:
            n = space.industry_makers(industry, link_id)
            out.append(f"同属「{industry}」行业的 {n} 家企业生产「{lname}」")
        if feats.get("vertical", 0.0) >= 0.3:
            made = {m.link_id: m for m in self.enterprises_[i].links if m.score >= CONFIDENT and m.method != "trade"}
            ups = [e.source for e in self.catalogue.suppliers(link_id, q.chain_id) if e.source in made]
            downs = [e.target for e in self.catalogue.customers(link_id, q.chain_id) if e.target in made]
            if ups:
                out.append(f"上游原料企业向下游延伸：{self._held(made[ups[0]])}")
            elif downs:
                out.append(f"下游用户向上游整合：{self._held(made[downs[0]])}")
        return out

    def _held(self, m: LinkMatch) -> str:
        """What the firm's own data says it has on a link: its product words and share, then the link they map to
        (never the link's name as a production claim: a recycler's 铝锭 is no 电解铝)."""
        lname = self.catalogue.links[m.link_id].name
        if not m.evidence or normalize_text(m.evidence) == normalize_text(lname):
            return f"已有「{lname}」业务" + (f"（{_share(m.share)}）" if m.share is not None else "")
        share = f"，{_share(m.share)}" if m.share is not None else ""
        return f"已有「{m.evidence}」业务（对应「{lname}」环节{share}）"


class Explanations(ExpansionReasons):
    """Why each candidate is recommended: link filled, matched products with revenue share, 链主 relation, aiding
    pairing, evidence strength and each feature's contribution to the score.
    """

    @staticmethod
    def _texts_agree(feats: dict[str, float]) -> bool:
        """Both text signals high (:data:`TEXT_EVIDENCE`)."""
        return all(feats.get(f, 0.0) >= t for f, t in TEXT_EVIDENCE.items())

    def _text_agreement(self, feats: dict[str, float], link_id: str) -> list[str]:
        """The text-agreement evidence (both text signals high, :data:`TEXT_EVIDENCE`) as a reason, when it holds."""
        if self._texts_agree(feats):
            return [f"产品描述与「{self.catalogue.links[link_id].name}」需求高度相似（字符与语义相似度均高）"]
        return []

    def _main_line(self, i: int, chain_id: str | None) -> str | None:
        """"<chain>企业：主营X（share）" for the firm's largest confident product on one of the chain's links, when it is
        a main segment (≥ MAIN_SHARE), else None."""
        if chain_id is None:
            return None
        members = self._producing_links(chain_id, set(self.catalogue.chains[chain_id].link_ids))  # not 纺机 for 纺织
        made = [m for m in self.enterprises_[i].links
                if m.link_id in members and m.score >= CONFIDENT and m.method != "trade" and (m.share or 0.0) >= MAIN_SHARE]  # fmt: skip
        if not made:
            return None
        m = max(made, key=lambda m: m.share or 0.0)
        return f"{self.catalogue.chains[chain_id].name}企业：主营{m.evidence or self.catalogue.links[m.link_id].name}（{m.share:.0%}）"

    def _text_products(self, i: int, text: str, limit: int = 2) -> list[tuple[str, float | None]]:
        """The firm's own products that share the most character bigrams with the need's text (at least two):
        what a free-text need matched in the firm's data, quoted with its revenue share."""
        grams = set(char_ngrams(normalize_text(text), 2, 2))
        scored = []
        for p in self.enterprises_[i].products:
            shared = len(grams & set(char_ngrams(normalize_text(p.name), 2, 2)))
            if shared >= 2:
                scored.append((-shared, -(p.share or 0.0), p.name, p.share))
        return dedupe_products([(name, share) for _, _, name, share in sorted(scored)])[:limit]

    def _explain(
        self, rank: int, i: int, score: float, feats: dict[str, float], contrib: np.ndarray, q: NeedQuery,
        region: Region | None, aiding: set[str], sources: list[str], presence: str | None = None,
    ) -> Candidate:
        e = self.enterprises_[i]
        target = q.link_id
        matches = [m for m in e.links if m.link_id == target] if target else []
        neighbour = not matches
        if not matches:  # a chain-level need, or a firm of a neighbouring link: its best match among the targets
            producing = self._producing_links(q.chain_id, set(q.target_links)) if q.chain_id and target is None else ()
            matches = sorted(  # the most-weighted target first; on it, a maker-grade product with the largest share
                (m for m in e.links if m.link_id in q.target_links),
                key=lambda m: (
                    m.link_id not in producing if producing else False,  # a product link before equipment/services
                    not (m.score >= CONFIDENT and m.method != "trade"),  # what it makes before a trade or loose match
                    -q.target_links[m.link_id] * min(m.score, CONFIDENT),
                    -(m.score >= CONFIDENT and m.method != "trade"),
                    -(m.share or 0.0),
                    -m.score,
                ),
            )[:2]
        link_id = (matches[0].link_id if matches else target) if target is None else target
        products = dedupe_products([(m.evidence, m.share) for m in matches if m.evidence])[:3]
        rel_score, relation = self._master_relation(i, q)
        strength, rule = evidence_strength(feats, matches[0].method if matches else None)
        prov = self.province_[i]
        aid = f"{prov}为{region.name if region else '该地区'}的产业援疆结对省份" if prov in aiding else None
        reasons = []
        if e.fictional:
            reasons.append("虚构示例企业（演示数据，并非真实企业）")
        if target and neighbour and matches:  # it makes a neighbouring link, not the one asked for
            m = matches[0]
            nb = self.catalogue.links[m.link_id].name
            if m.method == "trade" or m.score < CONFIDENT:  # the evidence that listed it first, the loose match after
                reasons.extend(self._text_agreement(feats, target))
                reasons.extend(self._expansion_reasons(i, feats, q, target))
                reasons.append(f"产品与相邻环节「{nb}」部分相似（{m.evidence or nb}），待核实")
            elif m.share is not None and m.share < MAIN_SHARE:  # a small segment is never called 主营
                reasons.append(f"相邻环节「{nb}」：涉及{m.evidence or nb}（{_share(m.share)}）")
            else:
                what = f"{m.evidence}（{m.share:.0%}）" if m.share else (m.evidence or nb)
                reasons.append(f"相邻环节「{nb}」企业：主营{what}")
            if m.method != "trade" and m.score >= CONFIDENT:
                reasons.extend(self._expansion_reasons(i, feats, q, target))
        elif (
            target is None and q.chain_id and not any(m.score >= CONFIDENT and m.method != "trade" for m in matches)
            and (named := self._chain_products(i, q.chain_id)[:2])
        ):
            cname = self.catalogue.chains[q.chain_id].name
            lead = "主营" if all(s is None or s >= MAIN_SHARE for _, s in named) else "涉及"
            what = "、".join(f"{p}（{_share(s) if lead == '涉及' else f'{s:.0%}'}）" if s else p for p, s in named)
            reasons.append(f"{cname}企业：{lead}{what}（产品名称未细分到具体环节）")
        elif link_id:
            lname = self.catalogue.links[link_id].name
            # only the evidence of the link named (a chain-level need matches several links: never name one link
            # with another link's product, as in "煤炭洗选：主营甲醇")
            on_link = [m for m in matches if m.link_id == link_id]
            confident = [m for m in on_link if m.score >= CONFIDENT and m.method != "trade"]
            traded = [m for m in on_link if m.method == "trade"]
            made = dedupe_products([(m.evidence, m.share) for m in confident if m.evidence])[:3]
            main = [(p, s) for p, s in made if s is None or s >= MAIN_SHARE]
            minor = [(p, s) for p, s in made if s is not None and s < MAIN_SHARE]
            if main:
                ps = "、".join(f"{p}（{s:.0%}）" if s else p for p, s in main)
                reasons.append(f"可填补「{lname}」环节：主营{ps}")
            elif minor:  # a small segment is never called 主营
                # a chain-level need met by a sliver (恒力's 对二甲苯 <1%): the firm's main line in the chain first
                if target is None and (line := self._main_line(i, q.chain_id)):
                    reasons.append(line)
                reasons.append(f"可填补「{lname}」环节：涉及{'、'.join(f'{p}（{_share(s)}）' for p, s in minor)}")
            elif traded:  # a trader is told apart from a maker
                ts = "、".join(f"{m.evidence}（{m.share:.0%}）" if m.share else m.evidence for m in traded[:2])
                reasons.append(f"经营「{lname}」相关贸易（{ts}），并非生产企业")
            partial = None
            if not (main or minor or traded) and on_link:
                partial = f"产品名称与「{lname}」部分相似（{on_link[0].evidence}），待核实"
            elif not (main or minor or traded) and matches:
                other = self.catalogue.links[matches[0].link_id].name
                partial = f"产品与「{other}」部分相似（{matches[0].evidence}），待核实"
            expansion = self._expansion_reasons(i, feats, q, link_id)
            if partial:  # the evidence that listed it first (text agreement, relatedness), the loose match after
                reasons.extend(self._text_agreement(feats, link_id))
                reasons.extend(expansion)
                reasons.append(partial)
            else:
                if not matches and not expansion:  # nothing but the text: say so
                    reasons.append(f"与「{lname}」环节文本相似")
                reasons.extend(expansion)  # with no product rows, the evidence that listed the firm comes first
        elif target is None and q.chain_id is None and (said := self._text_products(i, q.text)):
            # a free-text need: the firm's own products the text matched, quoted as they are
            what = "、".join(f"{p}（{_share(s)}）" if s is not None else p for p, s in said)
            agree = "，字符与语义相似度均高" if self._texts_agree(feats) else ""
            reasons.append(f"产品与需求描述相近：{what}{agree}")
        if presence:  # right after the evidence that listed it: the officer reads first that the firm is local
            reasons.insert(min(1, len(reasons)), f"已在本地布局（{presence}），可引导增资扩产")
        if relation:
            reasons.append(relation)
        signals = self._signal_reasons(e, q)
        if signals:
            reasons.append(f"近期扩张：{signals[0].text}")
        if aid:
            reasons.append(aid)
        if e.extra.get("listing_status") == "delisted":
            reasons.append(f"已退市（原股票代码 {e.stock_code}）")
        elif e.listed:
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
            retrieved_by=sources,
            signals=signals,
            fictional=e.fictional,
            stock_code=e.stock_code,
            listing_status=e.extra.get("listing_status") or ("listed" if e.listed else None),
            former_names=list(e.extra.get("former_names") or []),
            group=e.parent_group,
            sources=list(e.extra.get("sources") or ([e.source] if e.source else [])),
            as_of=e.updated_at.date().isoformat(),
            local_presence=presence,
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
