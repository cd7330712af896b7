"""Product → chain-link mapping: every enterprise gets (link id, score, method, evidence).

A product phrase is normalised, split into segments (on 、/及/与/和, dashes between Chinese words), and
stripped of affixes that say nothing about the product (销售, 业务, 内销, …分部, …批发). Each segment is
scored against every catalogue term (link name, alias, typical product):

- ``alias``: the segment *is* a term (1.0 for the raw phrase, 0.95 for a stripped segment) or *contains*
  one. Containment is scored by how much of the segment the term covers and whether the term is the
  head of the phrase: Chinese compounds put the head last (高效单晶PERC**电池片**), and a term that
  only modifies something else is weak (锂电池**隔膜**, 氧化铝**陶瓷**). A term nested inside a longer
  matching term is dropped, so longest match wins (铝电解电容器 never maps to 电解铝).
- ``token``: IDF-weighted overlap of jieba tokens (term coverage × product coverage^¼, plus a head
  check), for segments that contain no term verbatim. Generic and activity words (其他, 材料, 设备,
  批发, 研发 …) never seed a match; one-character words count but never seed one.
- ``embedding`` (optional): cosine similarity with any embedder that has ``encode_queries`` /
  ``encode_passages``; used only when the lexical signals found nothing, and weighted below them.
- ``gbt``: the enterprise's GB/T 4754 codes agreeing with a link's codes: a small bonus on matched
  links, or a weak match on its own when the code is specific to at most a few links.

Every score is scaled by how much of the segment the link explains. "X设备 / X装备 / X生产线" maps to
the equipment link of X's chain (光伏设备, 塑料机械), never to X. Business scope (经营范围) goes through
the same machinery with scores scaled down. Segment-type rows (其他业务, 主营业务, 分部间抵销) and
geography / sales-channel rows (国内, 华东地区, 外销) map to nothing. Results are cached per distinct
normalised phrase and per segment.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.industries import industry_reading, market_label, sells_not_makes, service_link
from matcher.knowledge.recycling import recycling_routes, reroute_recycled
from matcher.knowledge.segments import (
    _EQUIPMENT_SUFFIX,
    _TRANSPARENT_TAIL,
    _VARIANT_DROP,
    GENERIC_WORDS,
    _content_token,
    _inside,
    _vector_tokens,
    is_generic_segment,
    split_segments,
)
from matcher.records import Enterprise, LinkMatch
from matcher.text import add_words, normalize_text

__all__ = ["LinkMapper", "TextEmbedder"]

logger = logging.getLogger(__name__)

class TextEmbedder(Protocol):
    """Anything that embeds texts into L2-normalised float32 rows (``models.embedders.get_embedder()``)."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


#: Mapping confidence from which a product is read as the link itself (the maker bar and the reasons use it too).
MAKER_SCORE = 0.8


def _evidence_key(m: LinkMatch) -> tuple[bool, float, float]:
    """Which of a firm's phrases speaks for a link: a confident (maker-grade) match first, and among those the
    larger revenue share — 风力发电塔架 at 99% before 海上风电基础管桩 at 0.4%, though the latter is an exact alias —
    then the score."""
    confident = m.score >= MAKER_SCORE and m.method != "trade"
    return (confident, (m.share or 0.0) if confident else 0.0, m.score)


def _inside_latin_word(text: str, a: int, b: int) -> bool:
    """``text[a:b]`` starts or ends with a Latin letter that continues into a neighbouring letter (PP in PPP)."""
    left = a > 0 and text[a].isascii() and text[a].isalpha() and text[a - 1].isascii() and text[a - 1].isalpha()
    right = (
        b < len(text) and text[b - 1].isascii() and text[b - 1].isalpha() and text[b].isascii() and text[b].isalpha()
    )
    return left or right


#: A phrase naming trade in a product (铝棒贸易, 钢材批发): the firm is a trader, not a maker.
TRADE_PHRASE = re.compile(r"贸易|批发|零售|经销|代理|进出口|商贸|供应链|^销售(?!自产)")  # 销售聚丙烯 by a shipping firm
TRADE_CAP = 0.5  # = the default min_score: a trader stays mapped (so reasons can say 贸易) but never as a maker
AMBIGUITY_GAP = 0.03  # token matches this close to the best one compete with it
AMBIGUOUS_CAP = 0.5  # an ambiguous token match: a hint, never a confident mapping (the evidence bar needs 0.8)
#: Single characters that name a material; a token match across two different materials is refused.
MATERIALS = frozenset("铝铜锌铅镍钴锂钛镁钢铁硅锡银钽钨钼锰铬锆锑铟镓锗钒")

_SCOPE_SPLIT = re.compile(
    r"[;,。.、:()\[\]]|一般项目|许可项目|依法须经批准的项目|经相关部门批准后方可开展经营活动"
)


@dataclass(frozen=True)
class _Hit:
    link_id: str
    score: float
    method: str


@dataclass(frozen=True, eq=False)  # hashed by identity
class _Term:
    text: str
    link_id: str
    kind: int  # 0 = name, 1 = alias, 2 = typical product
    weights: dict[str, float]  # token (incl. meaningful single characters) -> IDF
    norm: float


#: Built term indexes per catalogue object (weakly held), so building another mapper is cheap.
_INDEXES: weakref.WeakKeyDictionary[Catalogue, dict[str, object]] = weakref.WeakKeyDictionary()


_INDEX_ATTRS = (
    "_idf", "_idf_unseen", "_exact", "_by_token", "_link_text", "_token_lengths", "_contain_keys",
    "_lengths", "_equipment", "_gbt_links",
)  # fmt: skip


class LinkMapper:
    """Maps an enterprise's products, business scope and industry codes onto catalogue links.

    Args:
        catalogue: the chain catalogue whose links are the targets.
        embedder: optional embedder (``encode_queries`` / ``encode_passages`` → normalised float32 rows); when
            given, phrases with no lexical match may still map by embedding similarity.
        min_score: matches scoring below this are dropped.
        scope_weight: multiplier on scores of business-scope phrases (a weaker signal than products).
        embedding_threshold: minimum cosine for an embedding match. With multilingual-e5-small,
            phrases the lexical signals miss score 0.88–0.90 as often for NONE labels as for right
            links; at 0.92 embeddings add 3 correct mappings on the 150 such fixture phrases (and 1
            false one). Hence off by default, with a high threshold.
        max_cache: distinct phrases kept in the cache before it is cleared.

    Example:
        >>> from matcher.knowledge.catalogue import default_catalogue
        >>> mapper = LinkMapper(default_catalogue())
        >>> mapper.map_product("重熔用铝锭")[0].link_id
        'electrolytic_aluminium'
    """

    def __init__(
        self,
        catalogue: Catalogue,
        embedder: TextEmbedder | None = None,
        min_score: float = 0.5,
        scope_weight: float = 0.6,
        embedding_threshold: float = 0.92,
        max_cache: int = 500_000,
    ) -> None:
        self.catalogue = catalogue
        self.embedder = embedder
        self.min_score = min_score
        self.scope_weight = scope_weight
        self.embedding_threshold = embedding_threshold
        self.max_cache = max_cache
        self._order = {lid: i for i, lid in enumerate(catalogue.links)}
        self._recyclers = recycling_routes(catalogue)
        self._cache: dict[str, tuple[_Hit, ...]] = {}
        self._seg_cache: dict[str, dict[str, tuple[float, str]]] = {}
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        shared = _INDEXES.get(catalogue)
        if shared is None:  # the term index is immutable: mappers of one catalogue share it
            self._build_terms()
            self._build_gbt()
            _INDEXES[catalogue] = {a: getattr(self, a) for a in _INDEX_ATTRS}
        else:
            self.__dict__.update(shared)
        self._link_vectors: np.ndarray | None = None
        self._link_ids: list[str] = list(catalogue.links)

    # --- construction -------------------------------------------------------------------------
    def _build_terms(self) -> None:
        raw: dict[tuple[str, str], int] = {}
        for link in self.catalogue.links.values():
            surface = [(link.name, 0), *((a, 1) for a in link.aliases), *((p, 2) for p in link.products)]
            for text, kind in surface:
                key = normalize_text(text)
                if len(key) < 2:
                    continue
                prev = raw.get((key, link.id))
                raw[(key, link.id)] = kind if prev is None else min(prev, kind)
        add_words(k for k, _ in raw)
        token_sets = {key: _vector_tokens(key) for key, _ in raw}
        df: dict[str, int] = defaultdict(int)
        for toks in token_sets.values():
            for t in toks:
                df[t] += 1
        n = max(len(token_sets), 1)
        self._idf: dict[str, float] = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        self._idf_unseen = math.log(n + 1) + 1.0
        # exact table: normalised term → terms (several links may list the same typical product)
        self._exact: dict[str, list[_Term]] = defaultdict(list)
        self._by_token: dict[str, list[_Term]] = defaultdict(list)
        link_texts: dict[str, list[str]] = defaultdict(list)
        for (key, lid), kind in raw.items():
            weights = {t: self._idf[t] for t in token_sets[key]}
            term = _Term(key, lid, kind, weights, math.sqrt(sum(w * w for w in weights.values())))
            self._exact[key].append(term)
            link_texts[lid].append(key)
            for t in weights:
                if _content_token(t):
                    self._by_token[t].append(term)
        for key in list(self._exact):
            variant = key.translate(_VARIANT_DROP)
            if variant != key and len(variant) >= 3 and variant not in self._exact:
                self._exact[variant] = list(self._exact[key])  # 组合式变压器 also matches 组合变压器
        for terms in self._exact.values():
            terms.sort(key=lambda t: (t.kind, self._order[t.link_id]))
        self._link_text = {lid: "|".join(texts) for lid, texts in link_texts.items()}
        self._token_lengths = sorted({len(t) for t in self._by_token})
        # containment uses every non-generic term of two or more characters
        self._contain_keys = {k for k in self._exact if k not in GENERIC_WORDS}
        self._lengths = sorted({len(k) for k in self._contain_keys}, reverse=True)
        # equipment links: links whose own name says they are equipment for their chain (光伏设备, 塑料机械)
        self._equipment = {
            lid for lid, link in self.catalogue.links.items() if _EQUIPMENT_SUFFIX.search(link.name)
        }
        logger.debug("mapper: %d terms, %d tokens", len(self._exact), len(self._idf))

    def _build_gbt(self) -> None:
        self._gbt_links: dict[str, list[str]] = defaultdict(list)
        for link in self.catalogue.links.values():
            for code in link.gbt:
                self._gbt_links[code].append(link.id)

    def _ensure_link_vectors(self) -> np.ndarray | None:
        if self.embedder is None:
            return None
        if self._link_vectors is None:
            texts = []
            for lid in self._link_ids:
                link = self.catalogue.links[lid]
                texts.append("、".join(dict.fromkeys((link.name, *link.aliases, *link.products))))
            vecs = np.asarray(self.embedder.encode_passages(texts), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(texts):
                raise ValueError(f"embedder returned shape {vecs.shape}, expected ({len(texts)}, dim)")
            self._link_vectors = vecs
        return self._link_vectors

    # --- public API -----------------------------------------------------------------------------
    def map_product(self, name: str) -> list[LinkMatch]:
        """Links one product phrase maps to, best first (``evidence`` = the phrase, ``share`` = None)."""
        return [
            LinkMatch(link_id=h.link_id, score=h.score, method=h.method, evidence=name)
            for h in self._hits(name)
            if h.score >= self.min_score
        ]

    def map_products(self, names: Iterable[str]) -> list[list[LinkMatch]]:
        """:meth:`map_product` for many phrases (with an embedder, uncached ones are embedded in a batch)."""
        names = list(names)
        if self.embedder is not None:
            self._prefill_embeddings(names)
        return [self.map_product(n) for n in names]

    def map(self, enterprise: Enterprise) -> list[LinkMatch]:
        """Links of one enterprise, best first.

        One match per link: the strongest evidence among its products (with the product's revenue share), its
        business-scope phrases (scores scaled by :attr:`scope_weight`) and its GB/T codes. Ordered by score,
        with revenue share breaking near-ties (a 70% segment before a 2% one of equal confidence).
        """
        best: dict[str, LinkMatch] = {}

        def offer(m: LinkMatch) -> None:
            cur = best.get(m.link_id)
            if cur is None or _evidence_key(m) > _evidence_key(cur):
                best[m.link_id] = m

        if self.embedder is not None:
            self._prefill_embeddings([p.name for p in enterprise.products])
        for product in enterprise.products:
            for h in self._hits(product.name):
                meant = industry_reading(enterprise.sw_industry, h.link_id, product.name)
                if meant and h.score >= self.min_score and not self._market(enterprise, product.name, h.link_id):
                    offer(
                        LinkMatch(
                            link_id=meant,
                            score=h.score,
                            method=h.method,
                            evidence=product.name,
                            share=product.share,
                        )
                    )
        for phrase in self.scope_phrases(enterprise.scope):
            for h in self._hits(phrase):
                score = round(h.score * self.scope_weight, 4)
                if score >= self.min_score * self.scope_weight:
                    offer(LinkMatch(link_id=h.link_id, score=score, method=h.method, evidence=phrase))
        self._apply_gbt(enterprise.gbt_codes, best)
        for m in reroute_recycled(enterprise, best, self._recyclers):
            offer(m)
        if sells_not_makes(enterprise.sw_industry):  # a pharmacy's 中成药, a trading house's 服装: sold, not made
            for lid, m in best.items():
                if m.method != "trade" and not service_link(self.catalogue.links[lid].gbt):
                    best[lid] = m.model_copy(update={"score": min(m.score, TRADE_CAP), "method": "trade"})
        return sorted(
            best.values(),
            key=lambda m: (
                -(m.score * (0.8 + 0.2 * (m.share or 0.0))),
                -m.score,
                self._order.get(m.link_id, 0),
            ),
        )

    def _market(self, enterprise: Enterprise, name: str, link_id: str) -> bool:
        # the link's normalised terms as built once ("|"-joined); market_label normalises nothing for most firms
        gbt = self.catalogue.links[link_id].gbt
        return market_label(enterprise.sw_industry, name, self._link_text.get(link_id, ""), gbt)

    def map_many(self, enterprises: Iterable[Enterprise]) -> dict[str, list[LinkMatch]]:
        """``{enterprise id: links}`` for many enterprises."""
        return {e.id: self.map(e) for e in enterprises}

    @staticmethod
    def scope_phrases(scope: str) -> list[str]:
        """Phrases of a business-scope text worth mapping (generic and licence boiler-plate removed)."""
        if not scope:
            return []
        out: list[str] = []
        for part in _SCOPE_SPLIT.split(normalize_text(scope)):
            part = part.strip()
            if len(part) >= 2 and not is_generic_segment(part) and part not in out:
                out.append(part)
        return out

    def cache_info(self) -> dict[str, int]:
        """Cache statistics: ``hits``, ``misses``, ``size``."""
        return {"hits": self.cache_hits, "misses": self.cache_misses, "size": len(self._cache)}

    def clear_cache(self) -> None:
        """Forget cached phrases (e.g. after swapping the embedder)."""
        with self._lock:
            self._cache.clear()
            self._seg_cache.clear()
            self.cache_hits = self.cache_misses = 0

    # --- scoring --------------------------------------------------------------------------------
    def _hits(self, name: str) -> tuple[_Hit, ...]:
        key = normalize_text(name)
        hits = self._cache.get(key)
        if hits is not None:
            self.cache_hits += 1
            return hits
        self.cache_misses += 1
        hits = self._compute(key)
        if self.embedder is not None and not self._confident(hits):
            hits = self._merge(hits, self._embedding_hits([key])[0])
        self._store(key, hits)
        return hits

    def _store(self, key: str, hits: tuple[_Hit, ...]) -> None:
        with self._lock:
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
                self._seg_cache.clear()
            self._cache[key] = hits

    def _compute(self, key: str) -> tuple[_Hit, ...]:
        if not key or is_generic_segment(key):
            return ()
        scores: dict[str, _Hit] = {}

        def offer(lid: str, score: float, method: str) -> None:
            cur = scores.get(lid)
            if cur is None or score > cur.score:
                scores[lid] = _Hit(lid, round(score, 4), method)

        for term in self._exact.get(key, ()):  # the raw phrase is a catalogue term
            offer(term.link_id, 1.0 - 0.01 * (term.kind == 2), "alias")
        trade = bool(TRADE_PHRASE.search(key))
        for rank, seg in enumerate(split_segments(key, self._exact)):
            order_penalty = 0.01 * min(rank, 5)  # earlier-listed segments first on ties
            # distinct phrases often share segments (铝型材 / 铝型材销售 / 铝型材(建筑))
            seg_scores = self._seg_cache.get(seg)
            if seg_scores is None:
                seg_scores = self._seg_cache[seg] = self._score_segment(seg)
            for lid, (score, method) in seg_scores.items():
                offer(lid, score - order_penalty, method)
        self._cap_ambiguous(scores)
        negated = key.startswith("非") and key not in self._exact  # 非油田用化学品: anything but that product
        for lid, hit in list(scores.items()):
            if hit.method == "token" and (len(key) <= 2 or negated or self._material_conflict(key, lid)):
                # 铜合金棒 is not 铝棒 (a shared token cannot bridge two materials); 板材 alone is too generic
                del scores[lid]
            elif trade:  # 铝棒贸易: the firm trades the product, it does not make it
                scores[lid] = _Hit(lid, min(hit.score, TRADE_CAP), "trade")
        return tuple(sorted(scores.values(), key=lambda h: (-h.score, self._order[h.link_id])))

    def _cap_ambiguous(self, scores: dict[str, _Hit]) -> None:
        """A token match that fits links of unrelated chains about equally (电池和配件: 电池片 of photovoltaics or
        锂电池电芯 of batteries) says which word, not which product: those hits are capped below a confident
        mapping (:data:`AMBIGUOUS_CAP`)."""
        tokens = sorted((h for h in scores.values() if h.method == "token"), key=lambda h: -h.score)
        if len(tokens) < 2 or any(h.method == "alias" and h.score >= tokens[0].score for h in scores.values()):
            return
        close = [h for h in tokens if h.score >= tokens[0].score - AMBIGUITY_GAP]
        chains = [set(self.catalogue.chains_of(h.link_id)) for h in close]
        if len(close) >= 2 and any(not (chains[0] & c) for c in chains[1:]):
            for h in close:
                scores[h.link_id] = _Hit(h.link_id, min(h.score, AMBIGUOUS_CAP), h.method)

    def _material_conflict(self, phrase: str, link_id: str) -> bool:
        """The phrase names a material (铜, 铝, 锂 …) and the link names others, none shared."""
        mine = set(phrase) & MATERIALS
        if not mine:
            return False
        link = self.catalogue.links[link_id]
        theirs = set("".join((link.name, *link.aliases))) & MATERIALS
        return bool(theirs) and not (mine & theirs)

    def _score_segment(self, seg: str) -> dict[str, tuple[float, str]]:
        """Score every candidate link of one segment: containment or token evidence, scaled by explanation."""
        contained, covered = self._containment(seg)
        if not contained and not self._has_seed(seg):
            return {}  # no catalogue term or token occurs in the segment: nothing to tokenise
        if seg in self._exact and not _EQUIPMENT_SUFFIX.search(seg):
            # the segment is a catalogue term: tokens cannot add anything
            return {lid: (score, "alias") for lid, score in contained.items()}
        vector = _vector_tokens(seg)
        toks = [t for t in vector if _content_token(t)]
        weights = {t: self._idf.get(t, self._idf_unseen) for t in vector}
        token_scores = self._token_overlap(seg, toks, weights, covered)
        out: dict[str, tuple[float, str]] = {}
        mass = sum(weights[t] for t in toks)
        for lid in contained.keys() | token_scores.keys():
            cont, tok = contained.get(lid, 0.0), token_scores.get(lid, 0.0)
            text = self._link_text[lid]
            explained = sum(weights[t] for t in toks if t in text) / mass if mass else 1.0
            score = max(cont, tok) * (0.85 + 0.15 * explained)
            out[lid] = (score, "alias" if cont >= tok else "token")
        if _EQUIPMENT_SUFFIX.search(seg) and not any(b == len(seg) for _, b in covered):
            # 'X设备': the firm sells equipment for X, not X itself
            for lid in list(out):
                if lid not in self._equipment:
                    out[lid] = (min(out[lid][0], 0.45), out[lid][1])
            equipment = self._equipment_for(seg, out)
            if equipment is not None:
                lid, score = equipment
                out[lid] = (max(score, out.get(lid, (0.0, ""))[0]), "alias")
        return out

    def _has_seed(self, seg: str) -> bool:
        """True when some substring of ``seg`` is a catalogue token (so tokenising can find a seed)."""
        n = len(seg)
        return any(seg[i : i + k] in self._by_token for k in self._token_lengths for i in range(n - k + 1))

    def _equipment_for(self, seg: str, scored: dict[str, tuple[float, str]]) -> tuple[str, float] | None:
        """For 'X设备 / X装备 / X生产线', the equipment link of X's chain (None when there is none).

        An equipment link is chosen when it shares wording with X (光伏组件装备 → 光伏设备), or, sharing
        none, when it is the one equipment link that supplies X's link in the chain graph (PE管生产线 →
        塑料机械, which feeds PE管材; 饮料加工设备 is not 畜牧机械, which feeds dairy farming only).
        """
        m = _EQUIPMENT_SUFFIX.search(seg)
        if m is None or m.start() < 2:
            return None
        modifier = seg[: m.start()]
        scored_mod = self._score_segment(modifier)
        mod_links = sorted(
            (lid for lid in scored_mod if scored_mod[lid][0] >= 0.3), key=lambda x: -scored_mod[x][0]
        )
        grams = {modifier[i : i + 2] for i in range(len(modifier) - 1)} - GENERIC_WORDS

        def overlap(eq: str) -> int:
            return sum(1 for g in grams if g in self._link_text[eq])

        related = {eq for eq in scored if eq in self._equipment}  # matched by the phrase itself
        for lid in mod_links:
            for cid in self.catalogue.chains_of(lid):
                related.update(eq for eq in self.catalogue.chains[cid].link_ids if eq in self._equipment)
        shared = [eq for eq in related if overlap(eq)]
        if shared:
            return max(shared, key=lambda eq: (overlap(eq), eq in scored, -self._order[eq])), 0.8
        if mod_links:
            feeding = [eq for eq in self.catalogue.neighbours(mod_links[0]) if eq in self._equipment]
            if len(feeding) == 1:
                return feeding[0], 0.7
        return None

    def _containment(self, seg: str) -> tuple[dict[str, float], list[tuple[int, int]]]:
        """Terms found verbatim in ``seg`` (nested shorter ones dropped), scored by coverage and head."""
        n = len(seg)
        spans: list[tuple[int, int, str]] = []
        for i in range(n - 1):
            for length in self._lengths:
                if length > n - i or length < 2:
                    continue
                sub = seg[i : i + length]
                if sub in self._contain_keys and not (i and seg[i - 1] in "聚非" and sub[0] != seg[i - 1]):
                    if _inside_latin_word(seg, i, i + length):
                        continue  # PPP项目 is not PP, HDPE's PE is its own term
                    spans.append((i, i + length, sub))  # 聚乙二醇 is not 乙二醇; 非油田化学品 is not 油田化学品
        kept = [
            s
            for s in spans
            if not any(
                o is not s and o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0] for o in spans
            )
        ]
        tail = _TRANSPARENT_TAIL.search(seg)
        end = tail.start() if tail and tail.start() >= 2 else n  # 风电场发电: the head ends before 发电
        out: dict[str, float] = {}
        for a, b, sub in kept:
            coverage = (b - a) / max(end, b)
            if a == 0 and b == n:
                score = 0.95  # the whole segment is a term
            elif a == 0 and b == end:
                score = 0.9  # the term plus a transparent tail (大数据应用)
            elif b >= end and self._chain_qualified(seg, a, sub, kept):
                score = 0.9  # 风力发电 + 塔架: the qualifier names the head's own chain
            elif b >= end:  # the term is the head of the compound (… 电池片)
                score = 0.6 + 0.3 * coverage
            else:  # the term modifies something else (锂电池 隔膜, 氧化铝 陶瓷): weak
                score = 0.3 + 0.25 * coverage
            for term in self._exact[sub]:
                s = score - 0.01 * (term.kind == 2)
                if s > out.get(term.link_id, 0.0):
                    out[term.link_id] = s
        return out, [(a, b) for a, b, _ in kept]

    def _chain_qualified(self, seg: str, a: int, head: str, kept: list[tuple[int, int, str]]) -> bool:
        """Everything before the head term ``seg[a:]`` is covered by terms of links sharing a chain with it."""
        before = [(x, y, t) for x, y, t in kept if y <= a]
        if not before or sum(y - x for x, y, _ in before) < a:
            return False
        head_chains = {c for term in self._exact[head] for c in self.catalogue.chains_of(term.link_id)}
        return all(
            head_chains & {c for term in self._exact[t] for c in self.catalogue.chains_of(term.link_id)}
            for _, _, t in before
        )

    def _token_overlap(
        self, seg: str, toks: list[str], weights: dict[str, float], covered: list[tuple[int, int]]
    ) -> dict[str, float]:
        """IDF-weighted overlap between the segment's tokens and each catalogue term's tokens.

        similarity = term coverage × product coverage^¼: a term fully present among unknown
        modifiers still matches (自制软件 ~ 应用软件), a term whose distinctive part is missing does not
        (钨精矿 ≁ 铜精矿), and at least 60% of the term's weight must be present (租赁 ≁ 农机租赁). A
        small bonus when the phrase's last token (its head) belongs to the term.
        Candidates come only from multi-character tokens no containment match already explains.
        """
        seeds = {t for t in toks if not (covered and _inside(seg, t, covered))}
        if not seeds:
            return {}
        pmass = sum(w * w for w in weights.values())
        head = max(weights, key=lambda t: (seg.rfind(t) + len(t), len(t)))
        candidates: set[_Term] = set()
        for t in seeds:
            candidates.update(self._by_token.get(t, ()))
        out: dict[str, float] = {}
        for term in candidates:
            if term.norm == 0:
                continue
            shared = sum(w * w for t, w in weights.items() if t in term.weights)
            tcov = shared / (term.norm * term.norm)
            sim = tcov * (shared / pmass) ** 0.25
            if sim < 0.4 or tcov < 0.6:  # most of the term must be there (租赁 is not 农机租赁)
                continue
            score = 0.15 + 0.6 * sim + (0.05 if head in term.weights else -0.1) - 0.01 * (term.kind == 2)
            if score > out.get(term.link_id, 0.0):
                out[term.link_id] = score
        return out

    def _embedding_hits(self, keys: list[str]) -> list[tuple[_Hit, ...]]:
        link_vecs = self._ensure_link_vectors()
        if link_vecs is None or not keys:
            return [() for _ in keys]
        q = np.asarray(self.embedder.encode_queries(keys), dtype=np.float32)  # type: ignore[union-attr]
        sims = q @ link_vecs.T
        out: list[tuple[_Hit, ...]] = []
        for row in sims:
            top = np.argsort(-row, kind="stable")[:3]
            hits = [
                _Hit(self._link_ids[j], round(float(0.65 * row[j]), 4), "embedding")
                for j in top
                if row[j] >= self.embedding_threshold
            ]
            out.append(tuple(hits))
        return out

    def _prefill_embeddings(self, names: Iterable[str]) -> None:
        keys = []
        for name in names:
            key = normalize_text(name)
            if key and key not in self._cache and key not in keys:
                keys.append(key)
        lexical = {k: self._compute(k) for k in keys}
        missing = [k for k, h in lexical.items() if not self._confident(h) and not is_generic_segment(k)]
        emb = dict(zip(missing, self._embedding_hits(missing), strict=True))
        for k, hits in lexical.items():
            self._store(k, self._merge(hits, emb.get(k, ())))

    def _confident(self, hits: tuple[_Hit, ...]) -> bool:
        return any(h.score >= self.min_score for h in hits)

    def _merge(self, lexical: tuple[_Hit, ...], embedded: tuple[_Hit, ...]) -> tuple[_Hit, ...]:
        best = {h.link_id: h for h in lexical}
        for h in embedded:
            if h.link_id not in best or h.score > best[h.link_id].score:
                best[h.link_id] = h
        return tuple(sorted(best.values(), key=lambda h: (-h.score, self._order[h.link_id])))

    def _gbt_agreement(self, code: str) -> tuple[tuple[str, ...], int]:
        """Links whose GB/T codes agree with ``code`` (prefix either way) and the widest sharing count (cached)."""
        cache = self.__dict__.setdefault("_gbt_cache", {})
        hit = cache.get(code)
        if hit is None:
            lids: list[str] = []
            sharing = 0
            for lcode, owners in self._gbt_links.items():
                if lcode.startswith(code) or code.startswith(lcode):
                    lids.extend(owners)
                    sharing = max(sharing, len(owners))
            hit = cache[code] = (tuple(dict.fromkeys(lids)), sharing)
        return hit

    def _apply_gbt(self, codes: Sequence[str], best: dict[str, LinkMatch]) -> None:
        if not codes:
            return
        agreeing: dict[str, tuple[str, int]] = {}
        for code in codes:
            code = str(code).strip()
            if len(code) < 3:
                continue
            lids, sharing = self._gbt_agreement(code)
            for lid in lids:
                agreeing.setdefault(lid, (code, sharing))
        for lid, (code, sharing) in agreeing.items():
            cur = best.get(lid)
            if cur is not None:
                best[lid] = cur.model_copy(update={"score": round(min(1.0, cur.score + 0.05), 4)})
                continue
            if len(code) >= 4 and sharing <= 3:
                weak = 0.4 if sharing == 1 else 0.35
                best[lid] = LinkMatch(link_id=lid, score=weak, method="gbt", evidence=f"GB/T {code}")
