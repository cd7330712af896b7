"""Product → chain-link mapping: every enterprise gets (link id, score, method, evidence).

Signals, strongest first (scores are confidences in 0–1, not probabilities):

- ``alias``: the product phrase (or one of its segments, after generic affixes such as 销售/业务/产品 are
  stripped) *is* a link name, alias or typical product (1.0 for the raw phrase, 0.95 for a stripped segment);
  or it *contains* one. Containment is scored by how much of the segment the term covers and whether the term
  is the head of the phrase (Chinese compounds put the head last: 高效单晶PERC**电池片**). A term nested inside a
  longer matching term is dropped (longest match wins: 铝电解电容器 → 电解电容器, never 电解铝).
- ``token``: IDF-weighted cosine between the jieba tokens of the phrase and of a catalogue term, for phrases
  that contain no term verbatim. Generic words (其他, 材料, 设备 …) and one-character tokens carry no weight.
- ``embedding``: optional; cosine between the phrase and the link's text with any embedder that has
  ``encode_queries`` / ``encode_passages`` returning L2-normalised float32 rows. Used only when the lexical signals
  found nothing for the phrase, and weighted below them.
- ``gbt``: the enterprise's GB/T 4754 codes agreeing with a link's codes: a small bonus on links already
  matched, or a weak match on its own when the code is specific to at most a few links.

Business scope (经营范围) phrases go through the same machinery with their score scaled down
(:attr:`LinkMapper.scope_weight`). Generic segment rows (其他业务, 主营业务, 分部间抵销) and geography /
sales-channel rows (国内, 华东地区, 外销) map to nothing. Results per distinct normalised phrase are cached, so
mapping a 100k-row import costs one look-up per repeated product string.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from matcher.catalogue import Catalogue
from matcher.errors import ImportFileError
from matcher.records import Enterprise, LinkMatch
from matcher.text import add_words, normalize_text, tokenize

logger = logging.getLogger(__name__)

__all__ = [
    "LinkLabel",
    "LinkMapper",
    "MappingEvaluation",
    "TextEmbedder",
    "evaluate_mapping",
    "is_generic_segment",
    "load_labels",
    "split_segments",
]


class TextEmbedder(Protocol):
    """Anything that embeds texts into L2-normalised float32 rows (e.g. ``models.embedders.get_embedder()``)."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


# --- text rules ---------------------------------------------------------------------------------

#: Words too generic to identify a link on their own (never a token signal, never a containment term).
GENERIC_WORDS: frozenset[str] = frozenset(
    "其他 其它 材料 设备 产品 业务 服务 工程 商品 销售 加工 制造 生产 系统 项目 技术 配件 原料 原材料 制品 工业 "
    "贸易 行业 相关 综合 主营 收入 板块 系列 分部 合计 新材料 新能源 装备 器材 用品 零件 部件 组件 元件 器件 "
    "化工 化学 能源 电力 电子 机械 建材 金属 有色 材料类 其他类 物资 软件 硬件 解决方案 整体 专用 工业品 "
    "高端 高效 新型 智能 绿色 环保 节能 复合 特种 精细 功能 有限 公司 集团".split()
)

#: Whole rows that describe a segment type or a balancing entry, not a product.
_SEGMENT_ROWS: frozenset[str] = frozenset(
    "其他 其它 其他业务 其它业务 主营业务 主营业务收入 其他业务收入 其他主营业务 其他产品 其他业务小计 补充 其他(补充) "
    "平衡项目 分部间抵销 抵销 内部抵销 调整项目 合并抵销 分部间抵消 抵消 合计 小计 总计 主营 非主营 主营收入 "
    "产品 商品 材料 设备 服务 业务 工程 销售 销售商品 商品销售 材料销售 销售材料 工业 商业 贸易 其他收入 营业收入 "
    "主营产品 其他主营 其他行业 其他产品销售 其他商品 其他服务 其他材料".split()
)

_REGIONS = (
    "华东|华南|华北|华中|西南|西北|东北|华西|中南|华东南|东南|西部|东部|中部|北方|南方|南部|北部|"
    "国内|国外|境内|境外|海外|内销|外销|出口|进口|中国大陆|大陆|港澳台|港澳|香港|澳门|台湾|中国|全国|本地|"
    "北京|上海|天津|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|"
    "四川|贵州|云南|陕西|甘肃|青海|内蒙古|广西|宁夏|西藏|新疆|亚洲|欧洲|美洲|北美|南美|非洲|大洋洲|中东|东南亚|"
    "日本|韩国|美国|欧盟|印度|俄罗斯|其他国家|其他地区|其它地区|其他区域|海外地区|境外地区|境内地区|国际|一带一路"
)
_GEO_ROW = re.compile(
    rf"^(?:(?:{_REGIONS})(?:地区|区域|省|市|自治区|大区|片区|以外|以内|及其他|和其他|等)?)+"
    r"(?:销售|市场|收入|业务|客户|营业收入|主营业务收入)?$"
)
_SALES_CHANNEL_ROW = re.compile(r"^(?:直销|经销|代销|分销|零售|批发|线上|线下|电商|自营|加盟|联营|代理)(?:模式|渠道|销售|收入)?$")

_LEADING_AFFIXES = ("其中:", "其中", "销售", "自产", "外购", "生产", "制造", "主营", "其他")
_TRAILING_AFFIXES = (
    "销售收入", "业务收入", "主营业务", "及其他", "及相关", "等产品", "系列产品", "类产品",
    "销售", "业务", "收入", "产品", "系列", "板块", "行业", "产业", "制造", "生产", "加工", "项目", "类", "等",
)  # fmt: skip
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|<[^<>]*>|《|》|\"|'")
_SPLIT = re.compile(r"[、,;/|&+]|以及|及|与|(?<![调饱中缓柔温])和(?!田)")


def _strip_affixes(text: str) -> str:
    changed = True
    while changed and text:
        changed = False
        for a in _LEADING_AFFIXES:
            if text.startswith(a) and len(text) > len(a) + 1:
                text, changed = text[len(a) :], True
        for a in _TRAILING_AFFIXES:
            if text.endswith(a) and len(text) > len(a) + 1:
                text, changed = text[: -len(a)], True
    return text


def is_generic_segment(text: str) -> bool:
    """True for rows that name no product: segment types, balancing rows, geography or sales channels.

    Example:
        >>> is_generic_segment("华东地区"), is_generic_segment("其他业务"), is_generic_segment("电解铝")
        (True, True, False)
    """
    key = normalize_text(text)
    if not key:
        return True
    if key in _SEGMENT_ROWS or key in GENERIC_WORDS:
        return True
    if _GEO_ROW.match(key) or _SALES_CHANNEL_ROW.match(key):
        return True
    return len(key) < 2 and not key.isascii()


def split_segments(text: str) -> list[str]:
    """Normalised product segments of a phrase: brackets dropped, split on 、/及/与/和, affixes stripped.

    Example:
        >>> split_segments("单晶硅片及组件销售")
        ['单晶硅片', '组件']
    """
    key = normalize_text(text)
    main = _BRACKETED.sub("", key)
    if not main:  # the whole phrase was in brackets
        main = re.sub(r"[()\[\]<>]", "", key)
    out: list[str] = []
    for part in _SPLIT.split(main):
        part = part.strip(" -_:.()")
        if not part:
            continue
        part = _strip_affixes(part)
        if part and not is_generic_segment(part) and part not in out:
            out.append(part)
    return out


_SCOPE_SPLIT = re.compile(r"[;,。.、:()\[\]]|一般项目|许可项目|依法须经批准的项目|经相关部门批准后方可开展经营活动")


# --- the mapper ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    link_id: str
    score: float
    method: str


@dataclass(frozen=True)
class _Term:
    text: str
    link_id: str
    kind: int  # 0 = name, 1 = alias, 2 = typical product
    tokens: frozenset[str]
    norm: float  # IDF-weighted L2 norm of tokens


class LinkMapper:
    """Maps an enterprise's products, business scope and industry codes onto catalogue links.

    Args:
        catalogue: the chain catalogue whose links are the targets.
        embedder: optional embedder (``encode_queries`` / ``encode_passages`` → normalised float32 rows); when
            given, phrases with no lexical match may still map by embedding similarity.
        min_score: matches scoring below this are dropped.
        scope_weight: multiplier on scores of business-scope phrases (a weaker signal than products).
        embedding_threshold: minimum cosine for an embedding match.
        max_cache: distinct phrases kept in the cache before it is cleared.

    Example:
        >>> from matcher.catalogue import default_catalogue
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
        embedding_threshold: float = 0.82,
        max_cache: int = 500_000,
    ) -> None:
        self.catalogue = catalogue
        self.embedder = embedder
        self.min_score = min_score
        self.scope_weight = scope_weight
        self.embedding_threshold = embedding_threshold
        self.max_cache = max_cache
        self._order = {lid: i for i, lid in enumerate(catalogue.links)}
        self._cache: dict[str, tuple[_Hit, ...]] = {}
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        self._build_terms()
        self._build_gbt()
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
        token_sets = {key: frozenset(t for t in tokenize(key) if _content_token(t)) for key, _ in raw}
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
        for (key, lid), kind in raw.items():
            toks = token_sets[key]
            term = _Term(key, lid, kind, toks, math.sqrt(sum(self._idf[t] ** 2 for t in toks)))
            self._exact[key].append(term)
            for t in toks:
                self._by_token[t].append(term)
        for terms in self._exact.values():
            terms.sort(key=lambda t: (t.kind, self._order[t.link_id]))
        # containment uses every non-generic term of two or more characters
        self._contain_keys = {k for k in self._exact if k not in GENERIC_WORDS}
        self._lengths = sorted({len(k) for k in self._contain_keys}, reverse=True)
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
        """:meth:`map_product` for many phrases; with an embedder, uncached phrases are embedded in one batch."""
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
            if cur is None or (m.score, m.share or 0.0) > (cur.score, cur.share or 0.0):
                best[m.link_id] = m

        if self.embedder is not None:
            self._prefill_embeddings([p.name for p in enterprise.products])
        for product in enterprise.products:
            for h in self._hits(product.name):
                if h.score >= self.min_score:
                    offer(LinkMatch(link_id=h.link_id, score=h.score, method=h.method, evidence=product.name,
                                    share=product.share))  # fmt: skip
        for phrase in self.scope_phrases(enterprise.scope):
            for h in self._hits(phrase):
                score = round(h.score * self.scope_weight, 4)
                if score >= self.min_score * self.scope_weight:
                    offer(LinkMatch(link_id=h.link_id, score=score, method=h.method, evidence=phrase))
        self._apply_gbt(enterprise.gbt_codes, best)
        return sorted(
            best.values(),
            key=lambda m: (-(m.score * (0.8 + 0.2 * (m.share or 0.0))), -m.score, self._order.get(m.link_id, 0)),
        )

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
        if self.embedder is not None and not hits:
            hits = self._embedding_hits([key])[0]
        self._store(key, hits)
        return hits

    def _store(self, key: str, hits: tuple[_Hit, ...]) -> None:
        with self._lock:
            if len(self._cache) >= self.max_cache:
                self._cache.clear()
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
        segments = split_segments(key)
        for rank, seg in enumerate(segments):
            order_penalty = 0.01 * min(rank, 5)  # earlier-listed segments first on ties
            found, covered = self._containment(seg)
            for lid, score in found.items():
                offer(lid, score - order_penalty, "alias")
            for lid, score in self._token_overlap(seg, covered).items():
                offer(lid, score - order_penalty, "token")
        return tuple(sorted(scores.values(), key=lambda h: (-h.score, self._order[h.link_id])))

    def _containment(self, seg: str) -> tuple[dict[str, float], list[tuple[int, int]]]:
        """Terms found verbatim in ``seg``; nested shorter terms dropped; scored by coverage and headedness."""
        n = len(seg)
        spans: list[tuple[int, int, str]] = []
        for i in range(n - 1):
            for length in self._lengths:
                if length > n - i or length < 2:
                    continue
                sub = seg[i : i + length]
                if sub in self._contain_keys:
                    spans.append((i, i + length, sub))
        kept = [s for s in spans if not any(o is not s and o[0] <= s[0] and s[1] <= o[1] and o[1] - o[0] > s[1] - s[0]
                                            for o in spans)]  # fmt: skip
        out: dict[str, float] = {}
        for a, b, sub in kept:
            coverage = (b - a) / n
            if a == 0 and b == n:
                score = 0.95  # the whole segment is a term
            elif b == n:  # the term is the head of the compound (… 电池片)
                score = 0.6 + 0.3 * coverage
            else:  # the term modifies something else (锂电池 隔膜, 氧化铝 陶瓷): weak
                score = 0.3 + 0.25 * coverage
            for term in self._exact[sub]:
                s = score - 0.01 * (term.kind == 2)
                if s > out.get(term.link_id, 0.0):
                    out[term.link_id] = s
        return out, [(a, b) for a, b, _ in kept]

    def _token_overlap(self, seg: str, covered: list[tuple[int, int]]) -> dict[str, float]:
        """IDF-weighted cosine between the segment's tokens and catalogue terms' tokens."""
        toks = {t for t in tokenize(seg) if _content_token(t)}
        if covered:  # tokens inside a containment match already spoke for that span
            toks = {t for t in toks if not _inside(seg, t, covered)}
        if not toks:
            return {}
        weights = {t: self._idf.get(t, self._idf_unseen) for t in toks}
        qnorm = math.sqrt(sum(w * w for w in weights.values()))
        candidates: dict[_Term, float] = defaultdict(float)
        for t in toks:
            for term in self._by_token.get(t, ()):
                candidates[term] += weights[t] * self._idf[t]
        out: dict[str, float] = {}
        for term, dot in candidates.items():
            if term.norm == 0:
                continue
            cos = dot / (qnorm * term.norm)
            if cos < 0.3:
                continue
            score = 0.25 + 0.5 * cos - 0.01 * (term.kind == 2)
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
        missing = [k for k, h in lexical.items() if not h and not is_generic_segment(k)]
        emb = dict(zip(missing, self._embedding_hits(missing), strict=True))
        for k, hits in lexical.items():
            self._store(k, hits or emb.get(k, ()))

    def _apply_gbt(self, codes: Sequence[str], best: dict[str, LinkMatch]) -> None:
        if not codes:
            return
        agreeing: dict[str, str] = {}
        for code in codes:
            code = str(code).strip()
            if len(code) < 3:
                continue
            for lcode, lids in self._gbt_links.items():
                if lcode.startswith(code) or code.startswith(lcode):
                    for lid in lids:
                        agreeing.setdefault(lid, code)
        for lid, code in agreeing.items():
            cur = best.get(lid)
            if cur is not None:
                best[lid] = cur.model_copy(update={"score": round(min(1.0, cur.score + 0.05), 4)})
                continue
            sharing = max(len(v) for k, v in self._gbt_links.items() if k.startswith(code) or code.startswith(k))
            if len(code) >= 4 and sharing <= 3:
                weak = 0.4 if sharing == 1 else 0.35
                best[lid] = LinkMatch(link_id=lid, score=weak, method="gbt", evidence=f"GB/T {code}")


def _content_token(t: str) -> bool:
    return len(t) >= 2 and t not in GENERIC_WORDS and not t.isdigit()


def _inside(seg: str, token: str, covered: list[tuple[int, int]]) -> bool:
    start = seg.find(token)
    while start >= 0:
        end = start + len(token)
        if not any(a <= start and end <= b for a, b in covered):
            return False
        start = seg.find(token, start + 1)
    return True


# --- labelled evaluation ------------------------------------------------------------------------

NONE_LABEL = "NONE"


@dataclass(frozen=True)
class LinkLabel:
    """One hand label: a product phrase and the link ids it belongs to (empty = no catalogue link)."""

    product: str
    gold: frozenset[str]
    note: str = ""


def load_labels(path: str | Path, catalogue: Catalogue | None = None) -> list[LinkLabel]:
    """Read a ``product<TAB>gold<TAB>note`` file (gold = link id, ``a|b`` if either is right, or ``NONE``).

    Lines starting with ``#`` and blank lines are skipped. With a catalogue, every gold id must exist in it.

    Raises:
        ImportFileError: a line without a gold column, or gold ids the catalogue does not know.
    """
    path = Path(path)
    labels: list[LinkLabel] = []
    unknown: list[str] = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise ImportFileError(f"{path}:{no}: expected 'product<TAB>gold link id or NONE<TAB>note', got {line!r}")
        gold_col = cols[1].strip()
        gold = frozenset() if gold_col == NONE_LABEL else frozenset(g.strip() for g in gold_col.split("|") if g.strip())
        if catalogue is not None:
            unknown += [f"{path.name}:{no}:{g}" for g in sorted(gold) if g not in catalogue.links]
        labels.append(LinkLabel(cols[0].strip(), gold, cols[2].strip() if len(cols) > 2 else ""))
    if unknown:
        raise ImportFileError(
            f"gold link ids not in the catalogue (expected ids of `chainmatch catalog` links): {', '.join(unknown[:20])}"
        )
    return labels


@dataclass
class MappingEvaluation:
    """Top-1 precision / recall of a mapper against hand labels, with the errors listed."""

    n: int
    n_positive: int
    predicted: int
    correct: int
    wrong_link: list[tuple[str, str, str]]  # (product, predicted, gold)
    false_positive: list[tuple[str, str]]  # (product, predicted) for NONE labels
    missed: list[tuple[str, str]]  # (product, gold) with no prediction

    @property
    def precision(self) -> float:
        """Correct top-1 links / phrases given any link."""
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Correct top-1 links / phrases whose gold is a link."""
        return self.correct / self.n_positive if self.n_positive else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate_mapping(mapper: LinkMapper, labels: Sequence[LinkLabel]) -> MappingEvaluation:
    """Score ``mapper.map_product`` top-1 against labels (a NONE label given a link is a false positive)."""
    res = MappingEvaluation(len(labels), sum(1 for x in labels if x.gold), 0, 0, [], [], [])
    predictions = mapper.map_products([x.product for x in labels])
    for label, matches in zip(labels, predictions, strict=True):
        top = matches[0].link_id if matches else None
        gold = "|".join(sorted(label.gold)) or NONE_LABEL
        if top is not None:
            res.predicted += 1
            if top in label.gold:
                res.correct += 1
            elif label.gold:
                res.wrong_link.append((label.product, top, gold))
            else:
                res.false_positive.append((label.product, top))
        elif label.gold:
            res.missed.append((label.product, gold))
    return res
