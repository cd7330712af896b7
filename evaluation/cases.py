"""Investment-deal cases (the ``deals`` format) as evaluation queries, relevance judgements and slices.

A :class:`Case` is one reported deal: an enterprise invested in a region for a chain and product link.
Only the :class:`CaseQuery` part of it (what a promotion officer knows *before* the deal) is shown to a
ranking system; the enterprise's own names are masked out of every free-text field so the query cannot
give the answer away.

Example:
    >>> cases = load_cases("../shared/data/deals/deals_dev.jsonl")
    >>> evaluable, skipped = split_evaluable(cases)
    >>> qrels = build_qrels(cases)  # {"D001": {"ashare-600362": 1}, ...}
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from evaluation.errors import CaseFileError
from matcher.text import (
    AUTONOMOUS_REGION_NAMES,
    COMPANY_SUFFIXES,
    MAINLAND_PROVINCES,
    SPECIAL_REGIONS,
    to_halfwidth,
)

logger = logging.getLogger(__name__)

MASK = "某企业"
DOC_PREFIX = "ashare-"
REQUIRED_FIELDS = ("id", "region_province", "chain", "product_link", "project")

# --- company-name variants for masking ---------------------------------------------------------------

# legal forms: the matcher's company suffixes plus the longer/rarer forms deal texts use
_LEGAL_SUFFIXES = tuple(
    dict.fromkeys(COMPANY_SUFFIXES + ("股份有限责任公司", "集团股份有限公司", "集团股份公司", "股份", "机械厂"))
)
# business words that end many names: stripping them leaves the brand ("德方纳米" -> "德方")
_TRADE_SUFFIXES = tuple(
    """科技 实业 控股 投资 发展 新材料 材料 新能源 能源 绿能 电子 电气 化学 化纤 化工
    棉纺织 纺织服装 纺织 服装 传动 风电设备 设备 机械 重工 重能 智能 智慧 光伏 锂能
    锂电 硅业 玻璃 医疗卫材 卫材 生物 高新 铝箔 铜业 纳米 丝路 高端制造 制造 农光互补
    电子材料 资源""".split()
)
_PROVINCES = AUTONOMOUS_REGION_NAMES + MAINLAND_PROVINCES + SPECIAL_REGIONS
_CITIES = tuple(
    """深圳 广州 东莞 佛山 石家庄 唐山 宁波 杭州 苏州 无锡 常州 南京 镇江 张家港 江阴 成都
    西安 宝鸡 武汉 郑州 新乡 济南 青岛 大连 沈阳 长沙 合肥 滁州 南昌 九江 上饶 福州 厦门
    昆明 曲靖 贵阳 南宁 兰州 天水 银川 西宁 乌鲁木齐 呼和浩特 包头 鄂尔多斯 阿拉尔 阿克苏
    昌吉 伊犁 塔城 哈密 克拉玛依 石河子 库尔勒""".split()
)
# never masked on their own (东方 is deliberately absent: it is the brand of 东方电气 / 东方风电)
_GENERIC = frozenset(
    _PROVINCES
    + _CITIES
    + _TRADE_SUFFIXES
    + _LEGAL_SUFFIXES
    + tuple(
        """中国 中华 国际 全球 西部 石化 石油 化工 煤业 煤化 钢铁 电力 建材 有色 矿业 新能 华夏
        产业 工业 企业 项目 基地 园区 新型 高纯 绿色 某企业""".split()
    )
)
_REGION_PREFIX = re.compile(
    "^(?:中国|"
    + "|".join(sorted(map(re.escape, _PROVINCES + _CITIES), key=len, reverse=True))
    + ")(?:省|市|自治区|县|区)?"
)
_ADMIN_PREFIX = re.compile(r"^[\u4e00-\u9fff]{2,3}(?:省|市|县)")
_PAREN = re.compile(r"\(([^()]*)\)")
_LEGAL_TAIL = "|".join(re.escape(s) for s in sorted(_LEGAL_SUFFIXES + ("(集团)",), key=len, reverse=True))


def _nfkc(text: str) -> str:
    return to_halfwidth(text or "").replace(" ", "")


def _strip_suffixes(name: str, suffixes: Iterable[str]) -> list[str]:
    """Every form of ``name`` left by repeatedly cutting a known suffix (longest first), name included."""
    ordered = sorted(suffixes, key=len, reverse=True)
    out = [name]
    changed = True
    while changed:
        changed = False
        for s in ordered:
            if name.endswith(s) and len(name) - len(s) >= 2:
                name = name[: -len(s)]
                out.append(name)
                changed = True
                break
    return out


def name_variants(name: str | None) -> set[str]:
    """Forms under which a company may be mentioned: full name, legal-form-free, region-free and brand forms.

    Strips legal suffixes (有限公司, 股份有限公司, 集团, (集团) …), bracketed notes,
    region prefixes (新疆, 深圳市 …) and trailing business words (科技, 新材料, 纳米 …), and
    adds the two-character brand of names of four or more characters. Generic words
    (province names, 能源, 材料 …) are never returned alone.

    Example:
        >>> sorted(name_variants("深圳市德方纳米科技股份有限公司"))[:3]
        ['德方', '德方纳米', '德方纳米科技']
    """
    name = _nfkc(name or "")
    if not name:
        return set()
    seeds = {name, _PAREN.sub("", name)}
    seeds.update(m.group(1) for m in _PAREN.finditer(name))
    out: set[str] = set()
    for seed in seeds:
        for legal in _strip_suffixes(seed, _LEGAL_SUFFIXES):
            forms = {legal}
            for prefix in (_REGION_PREFIX, _ADMIN_PREFIX):
                stripped = prefix.sub("", legal)
                if len(stripped) >= 2:
                    forms.add(stripped)
            for form in list(forms):
                forms.update(_strip_suffixes(form, _TRADE_SUFFIXES + _LEGAL_SUFFIXES))
            for form in list(forms):
                if len(form) >= 4:
                    brand = form[:2]
                    if not _REGION_PREFIX.match(form) and brand not in _GENERIC:
                        forms.add(brand)
            out.update(forms)
    return {v for v in out if len(v) >= 2 and _strip_suffixes(v, _LEGAL_SUFFIXES)[-1] not in _GENERIC}


def mask_names(text: str, names: Iterable[str | None], mask: str = MASK) -> str:
    """Replace every variant (see :func:`name_variants`) of every name in ``text`` with ``mask``.

    Args:
        text: free text (NFKC-normalised on the way: full-width brackets become half-width).
        names: company names whose mentions must disappear; ``None`` entries are ignored.
        mask: the replacement.

    Returns:
        The masked text; consecutive masks are merged into one.
    """
    text = to_halfwidth(text or "")
    variants: set[str] = set()
    for n in names:
        variants |= name_variants(n)
    if not variants or not text:
        return text
    alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
    # a mention may continue with a legal form the variant lacks:
    # 通威股份 + 有限公司, 隆基 + (集团)股份有限公司
    pattern = re.compile(f"(?:{alternatives})(?:{_LEGAL_TAIL})*")
    masked = pattern.sub(mask, text)
    return re.sub(f"(?:{re.escape(mask)})+", mask, masked)


# --- chain families and slices ---------------------------------------------------------------------

CHAIN_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("氢能", ("氢",)),
    ("锂电", ("锂",)),
    ("风电装备", ("风电", "风能")),
    ("光伏/硅基", ("光伏", "硅", "太阳能")),
    ("纺织化纤", ("纺织", "服装", "化纤", "纤维", "棉")),
    ("煤化工/石化", ("煤化工", "石化", "石油化工", "氯碱", "炼化", "煤制")),
    ("有色金属", ("铝", "铜", "钛", "稀土", "镁", "锌", "镍", "钴", "有色")),
    ("电子材料", ("电子材料", "电极箔", "半导体", "电子")),
    ("输变电", ("输变电", "输配电", "变压器", "电力装备", "开关设备")),
)
OTHER_FAMILY = "other"


def chain_family(chain: str) -> str:
    """Family of a chain name: the first family with a keyword in the first ``/`` segment, else anywhere.

    The first segment names the main chain ("铝加工/锂电" is 有色金属, "风电/输配电" is 风电装备);
    only when it matches no family is the whole string searched ("精细化工/锂电" is 锂电). Unmatched chains are ``other``.
    """
    chain = _nfkc(chain)
    for scope in (chain.split("/")[0], chain):
        for family, keywords in CHAIN_FAMILIES:
            if any(k in scope for k in keywords):
                return family
    return OTHER_FAMILY


# --- records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseQuery:
    """What a promotion officer knows before the deal: region, chain, gap, product link, masked project.

    Carries no enterprise field. ``text`` is the query used by text baselines.
    """

    case_id: str
    region_province: str
    region_prefecture: str | None
    region_county_or_park: str | None
    chain: str
    gap_type: str
    product_link: str
    project: str

    @property
    def text(self) -> str:
        """``chain + product_link + project`` (the masked project)."""
        return " ".join(p for p in (self.chain, self.product_link, self.project) if p)


@dataclass(frozen=True)
class Case:
    """One reported deal in the ``deals`` format (see ``shared/data/deals/README.md``)."""

    id: str
    region_province: str
    chain: str
    product_link: str
    project: str
    region_prefecture: str | None = None
    region_county_or_park: str | None = None
    gap_type: str = "unknown"
    enterprise: str | None = None
    listed_parent: str | None = None
    stock_code: str | None = None
    in_corpus: bool = False
    relation_to_listed: str | None = None
    parent_link_source: str | None = None
    chain_master_self_expansion: bool = False
    amount_cny: float | None = None
    date: str | None = None
    source: str | None = None
    evidence: str | None = None
    confidence: str = "unknown"
    seed_case: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any], file: str = "<dict>", line: int | None = None) -> Case:
        """Build a case from one JSON object, checking required fields and types."""
        if not isinstance(row, Mapping):
            raise CaseFileError(file, line, f"expected a JSON object, received {type(row).__name__}")
        missing = [k for k in REQUIRED_FIELDS if k not in row or row[k] is None]
        if missing:
            raise CaseFileError(
                file, line, f"missing required field(s) {missing}; expected {list(REQUIRED_FIELDS)}"
            )
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in row.items() if k in known}
        kwargs["id"] = str(kwargs["id"])
        if kwargs.get("stock_code") is not None:
            code = str(kwargs["stock_code"]).strip()
            if not re.fullmatch(r"\d{6}(\.[A-Z]{2})?", code):
                raise CaseFileError(file, line, f"stock_code must be 6 digits, received {code!r}")
            kwargs["stock_code"] = code[:6]
        for flag in ("in_corpus", "chain_master_self_expansion", "seed_case"):
            if flag in kwargs and not isinstance(kwargs[flag], bool):
                raise CaseFileError(file, line, f"{flag} must be true/false, received {kwargs[flag]!r}")
            kwargs[flag] = bool(kwargs.get(flag, False))
        kwargs["gap_type"] = kwargs.get("gap_type") or "unknown"
        kwargs["confidence"] = kwargs.get("confidence") or "unknown"
        extra = {k: v for k, v in row.items() if k not in known}
        return cls(**kwargs, extra=extra)

    @property
    def doc_id(self) -> str | None:
        """Corpus id of the true enterprise (``ashare-<stock_code>``), or None."""
        return f"{DOC_PREFIX}{self.stock_code}" if self.stock_code else None

    @property
    def evaluable(self) -> bool:
        """True when the listed parent is in the corpus and has a stock code."""
        return self.in_corpus and self.doc_id is not None

    @property
    def not_evaluable_reason(self) -> str | None:
        """Why the case cannot be scored, or None when it can."""
        if not self.in_corpus:
            return "in_corpus is false (listed parent not in the corpus)"
        if not self.stock_code:
            return "no stock_code"
        return None

    @property
    def query(self) -> CaseQuery:
        """The masked query (enterprise and listed-parent names replaced with 某企业 in free text)."""
        names = [self.enterprise, self.listed_parent]
        return CaseQuery(
            case_id=self.id,
            region_province=self.region_province,
            region_prefecture=self.region_prefecture,
            region_county_or_park=mask_names(self.region_county_or_park, names)
            if self.region_county_or_park
            else None,
            chain=self.chain,
            gap_type=self.gap_type,
            product_link=mask_names(self.product_link, names),
            project=mask_names(self.project, names),
        )

    @property
    def slices(self) -> dict[str, str]:
        """Slice labels: region (xinjiang/other), chain_family, self_expansion (yes/no), confidence and
        signal_history (yes: the firm has an earlier event, set by evaluation.signal_history.annotate_history)."""
        return {
            "region": "xinjiang" if _nfkc(self.region_province).startswith("新疆") else "other",
            "chain_family": chain_family(self.chain),
            "self_expansion": "yes" if self.chain_master_self_expansion else "no",
            "confidence": self.confidence,
            "signal_history": str(self.extra.get("signal_history", "n/a")),
        }


SLICE_DIMENSIONS = ("region", "chain_family", "self_expansion", "confidence", "signal_history")


def load_cases(path: str | Path) -> list[Case]:
    """Read a deals-format file: JSON Lines (one case per line) or a JSON array.

    Args:
        path: the file.

    Returns:
        The cases in file order.

    Raises:
        CaseFileError: the file is missing, is not JSON, lacks a required field, or repeats a case id.
    """
    path = Path(path)
    if not path.is_file():
        raise CaseFileError(str(path), None, "file not found (expected a deals .jsonl file)")
    text = path.read_text(encoding="utf-8-sig")
    rows: list[tuple[int | None, Any]] = []
    if text.lstrip().startswith("["):
        try:
            rows = [(i + 1, r) for i, r in enumerate(json.loads(text))]
        except json.JSONDecodeError as exc:
            raise CaseFileError(str(path), exc.lineno, f"invalid JSON: {exc.msg}") from exc
    else:
        for no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((no, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise CaseFileError(str(path), no, f"invalid JSON: {exc.msg}") from exc
    cases: list[Case] = []
    seen: set[str] = set()
    for no, row in rows:
        case = Case.from_dict(row, file=str(path), line=no)
        if case.id in seen:
            raise CaseFileError(str(path), no, f"duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CaseFileError(str(path), None, "no cases found (expected one JSON object per line)")
    logger.info("%s: %d cases, %d evaluable", path.name, len(cases), sum(c.evaluable for c in cases))
    return cases


def split_evaluable(cases: Iterable[Case]) -> tuple[list[Case], list[tuple[Case, str]]]:
    """Separate scoreable cases from the rest, keeping the reason for each case left out."""
    ok: list[Case] = []
    skipped: list[tuple[Case, str]] = []
    for c in cases:
        reason = c.not_evaluable_reason
        if reason is None:
            ok.append(c)
        else:
            skipped.append((c, reason))
    return ok, skipped


def build_qrels(cases: Iterable[Case]) -> dict[str, dict[str, int]]:
    """Relevance judgements ``{case_id: {doc_id: 1}}`` of the evaluable cases."""
    return {c.id: {c.doc_id: 1} for c in cases if c.evaluable and c.doc_id}
