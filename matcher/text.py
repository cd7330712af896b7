"""Chinese text normalisation and tokenisation.

- Traditional → Simplified (OpenCC ``t2s``), full-width → half-width, whitespace and bracket normalisation;
- company-name normalisation (有限公司, 股份有限公司, （集团）, 分公司 …) for matching while the official name is kept;
- jieba tokens (dictionary loaded once per process, with the catalogue's terms added on demand).
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

_OPENCC = None
_OPENCC_LOCK = threading.Lock()
_JIEBA = None
_JIEBA_LOCK = threading.Lock()

_SPACE = re.compile(r"\s+")
_BRACKETS = str.maketrans({"（": "(", "）": ")", "【": "[", "】": "]", "〔": "(", "〕": ")", "［": "[", "］": "]"})
# Ordered longest first so 股份有限公司 wins over 有限公司.
COMPANY_SUFFIXES: tuple[str, ...] = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "集团股份有限公司",
    "有限公司",
    "股份公司",
    "集团公司",
    "总公司",
    "分公司",
    "公司",
    "集团",
    "厂",
)
_GROUP_PAREN = re.compile(r"\((集团|中国|控股|股份)\)")
_BRANCH = re.compile(r"^(.*?公司)(.+分公司)$")
# Province-level divisions: short names (the form the store writes), the official names of the autonomous
# regions, and the suffixes official names carry. Single source for every province list in the project.
MUNICIPALITIES: tuple[str, ...] = ("北京", "天津", "上海", "重庆")
AUTONOMOUS_REGIONS: tuple[str, ...] = ("新疆", "内蒙古", "广西", "宁夏", "西藏")
AUTONOMOUS_REGION_NAMES: tuple[str, ...] = (
    "新疆维吾尔自治区", "内蒙古自治区", "宁夏回族自治区", "广西壮族自治区", "西藏自治区"
)
PROVINCES: tuple[str, ...] = (
    "河北", "山西", "辽宁", "吉林", "黑龙江", "江苏", "浙江", "安徽", "福建", "江西", "山东", "河南", "湖北", "湖南",
    "广东", "海南", "四川", "贵州", "云南", "陕西", "甘肃", "青海",
)
SPECIAL_REGIONS: tuple[str, ...] = ("台湾", "香港", "澳门")
MAINLAND_PROVINCES: tuple[str, ...] = MUNICIPALITIES + PROVINCES + AUTONOMOUS_REGIONS
_PROVINCE_PREFIX = re.compile(
    "^("
    + "|".join(
        [*AUTONOMOUS_REGION_NAMES, *(f"{m}市?" for m in MUNICIPALITIES), *(f"{p}省?" for p in PROVINCES),
         *AUTONOMOUS_REGIONS]
    )
    + ")"
)


def _opencc():
    global _OPENCC
    if _OPENCC is None:
        with _OPENCC_LOCK:
            if _OPENCC is None:
                import opencc

                _OPENCC = opencc.OpenCC("t2s")
    return _OPENCC


def to_simplified(text: str) -> str:
    """Traditional → Simplified Chinese (OpenCC t2s)."""
    if not text or text.isascii():
        return text
    return _opencc().convert(text)


_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")
_BRACKETS_LEFT = re.compile("[【】〔〕]")  # the brackets NFKC leaves alone


def _half(m: re.Match[str]) -> str:
    c = m.group()
    return " " if c == "\u3000" else chr(ord(c) - 0xFEE0)


def to_halfwidth(text: str) -> str:
    """Full-width ASCII and the ideographic space → half-width (NFKC keeps CJK unchanged).

    Same result as ``unicodedata.normalize("NFKC", text)``, ~3× faster on Chinese text: the full-width forms (the
    usual reason a text is not NFKC) are mapped first, and the full normalisation runs only when still needed."""
    text = _FULLWIDTH.sub(_half, text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def clean_text(text: str | None) -> str:
    """Simplified, half-width, brackets unified, whitespace collapsed; keeps case."""
    if not text:
        return ""
    return _clean(str(text))


@lru_cache(maxsize=200_000)
def _clean(text: str) -> str:
    """:func:`clean_text` of a non-empty string, memoised: provinces, cities, product names and scopes repeat
    across firms, and one profile cleans each of them several times (passage, tokens, TF-IDF text)."""
    text = to_halfwidth(to_simplified(text))
    if _BRACKETS_LEFT.search(text):
        text = text.translate(_BRACKETS)
    return _SPACE.sub(" ", text).strip()


_TAG = r"(?:seed\s*\d{3}(?:\s*/\s*\d{3})*|public facts?)"
_TAG_ALONE = re.compile(rf"\s*[(（]\s*{_TAG}\s*[)）]")
_TAG_LEAD = re.compile(rf"([(（])\s*{_TAG}\s*[:：;；,，]\s*")
_TAG_TRAIL = re.compile(rf"\s*[,，;；]\s*{_TAG}\s*(?=[)）])")
_TAG_BARE = re.compile(rf"\s*(?<![A-Za-z_]){_TAG}(?![A-Za-z_])")


def strip_internal_tags(text: str) -> str:
    """User text without the authoring tags of the demo data: '… (seed 002)' → '…',
    '(seed 000/003; 推断)' → '(推断)', '(已落户, seed 003)' → '(已落户)', '(public fact)' → ''."""
    if not text or ("seed" not in text and "public fact" not in text):
        return text
    for pattern, repl in ((_TAG_ALONE, ""), (_TAG_LEAD, r"\1"), (_TAG_TRAIL, ""), (_TAG_BARE, "")):
        text = pattern.sub(repl, text)
    return text.strip()


@lru_cache(maxsize=200_000)
def normalize_text(text: str) -> str:
    """Key form for matching names and terms: clean, lower-case, no spaces."""
    return clean_text(text).lower().replace(" ", "")


@lru_cache(maxsize=200_000)
def normalize_company_name(name: str, strip_region: bool = False) -> str:
    """Matching key of a company name.

    Removes legal-form suffixes (有限公司, 股份有限公司 …), bracketed group markers ((集团)), and the branch part of
    ``X公司Y分公司``; optionally also a leading province name. The official name is kept elsewhere.

    Example:
        >>> normalize_company_name("新疆嘉润资源控股有限公司")
        '新疆嘉润资源控股'
        >>> normalize_company_name("特变电工（集团）股份有限公司")
        '特变电工'
    """
    key = normalize_text(name)
    m = _BRANCH.match(key)
    if m:
        key = m.group(1)
    key = _GROUP_PAREN.sub("", key)
    changed = True
    while changed:
        changed = False
        for suffix in COMPANY_SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix) + 1:
                key = key[: -len(suffix)]
                changed = True
                break
    key = key.strip("()")
    if strip_region:
        stripped = _PROVINCE_PREFIX.sub("", key)
        if len(stripped) >= 2:
            key = stripped
    return key


def _jieba():
    global _JIEBA
    if _JIEBA is None:
        with _JIEBA_LOCK:
            if _JIEBA is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                for w in sorted(_domain_words()):  # the one dictionary, fixed before the first token is cut
                    jieba.add_word(w, freq=2000)
                _JIEBA = jieba
    return _JIEBA


def _domain_words() -> set[str]:
    """Link names, aliases and products of the embedded chain catalogue (matcher/data/chains), normalised."""
    from matcher.yamlio import read_yaml

    words: set[str] = set()
    for path in sorted((Path(__file__).parent / "data" / "chains").glob("*.yaml")):
        doc = read_yaml(path) or {}
        for link in doc.get("links") or []:
            for text in (link.get("name"), *(link.get("aliases") or []), *(link.get("products") or [])):
                w = normalize_text(str(text)) if text else ""
                if len(w) >= 2:
                    words.add(w)
    return words


def words_version() -> int:
    """The tokenizer dictionary's version (memoised tokens are keyed by it): always 0, the dictionary is fixed at
    start-up and never changes afterwards."""
    return 0


def add_words(words: Iterable[str]) -> None:
    """Kept for callers of earlier versions: the tokenizer's dictionary is fixed at start-up (the embedded catalogue's
    terms, :func:`_domain_words`) and never changes afterwards, so a query and a document tokenised at different
    times always agree. Words are ignored."""
    for _ in words:
        pass


STOP_WORDS: frozenset[str] = frozenset(
    "的 和 与 及 等 其他 其它 业务 产品 销售 生产 制造 加工 服务 行业 相关 主营 收入 项目 年产 万吨 吨 亿元 万元 有限公司 公司 "
    "股份 集团 技术 科技 ( ) , . 、 ; : / - 其中 以及 包括 用于".split()
)


def tokenize(
    text: str, keep_stop: bool = False, stop_words: frozenset[str] | None = None, drop_digits: bool = False
) -> list[str]:
    """jieba tokens of normalised text (search mode adds sub-words of long compounds), stop words removed.

    Args:
        text: any text; normalised with :func:`normalize_text` first.
        keep_stop: keep stop words and lone punctuation.
        stop_words: the stop list (default :data:`STOP_WORDS`, the matcher's).
        drop_digits: also drop all-digit tokens.
    """
    stop = STOP_WORDS if stop_words is None else stop_words
    text = normalize_text(text)
    if not text:
        return []
    out = []
    for t in _search_tokens(text):
        t = t.strip()
        if not t or (not keep_stop and (t in stop or (len(t) == 1 and not t.isalnum()))):
            continue
        if drop_digits and t.isdigit():
            continue
        out.append(t)
    return out


_CUTTER = None


def _search_tokens(text: str) -> list[str]:
    """``jieba.lcut_for_search(text)`` through :class:`~matcher.jieba_cut.SearchCutter` (blocks memoised, the
    same tokens); the dictionary is fixed at start-up (:func:`_jieba`), so nothing memoised goes stale."""
    global _CUTTER
    if _CUTTER is None:
        jb = _jieba()
        with _JIEBA_LOCK:
            if _CUTTER is None:
                from matcher.jieba_cut import SearchCutter

                _CUTTER = SearchCutter(jb)
    return _CUTTER(text)


def char_ngrams(text: str, n_min: int = 2, n_max: int = 3) -> list[str]:
    """Character n-grams of normalised text (for n-gram TF-IDF and hashed embeddings)."""
    text = normalize_text(text)
    grams: list[str] = []
    for n in range(n_min, n_max + 1):
        grams.extend(text[i : i + n] for i in range(max(0, len(text) - n + 1)))
    return grams
