"""Import enterprise lists (register exports, spreadsheets, JSON lines) into the store.

Formats, by extension: ``.csv`` / ``.tsv`` / ``.txt`` (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GBK / GB18030 or
Big5 detected with charset-normalizer), ``.xlsx`` / ``.xlsm`` (openpyxl, read-only; the first sheet that has an
enterprise-name column) and ``.jsonl`` / ``.ndjson`` (one object per line, keys mapped like column headers).

Columns are mapped from the usual Chinese export headers (企业名称, 统一社会信用代码, 法定代表人, 注册资本, 成立日期,
所属省份, 所属城市, 所属区县, 国标行业门类/大类/中类/小类, 经营范围, 企业规模, 参保人数, 主营产品, 股票代码, 曾用名, 企业标签 …)
and their English equivalents (name, credit_code, province, city, products …); see :data:`COLUMNS`. Title rows
above the header are skipped. Unknown columns are kept in ``Enterprise.extra`` under their header, and known
fields that the profile has no attribute for (法定代表人, 成立日期, 企业规模, 国标行业门类) under an English key
(``legal_representative``, ``founded``, ``size``, ``gbt_section``) — nothing is silently dropped.

Rules:

- Text is normalised with :mod:`matcher.text` (OpenCC t2s, full → half width, brackets); ``name`` keeps the
  official name, ``normalized_name`` gets the matching key; provinces are written in short form (新疆, 江苏).
- Row ids: the 统一社会信用代码 when present, else ``ent-`` + a stable hash of normalised name + province.
- 主营产品 ``"多晶硅:0.6;硅片:0.3"``, ``"多晶硅(60%)、硅片"`` or ``"多晶硅、硅片"`` → products with revenue shares.
- Each row is rejected, with its row number, field and reason, when: the name is empty; a field is too long
  (:data:`MAX_LENGTH`, e.g. 200 characters for names, 20,000 for 经营范围); the credit code fails GB 32100-2015;
  its bytes are not valid in the file's encoding (mixed encodings); a CSV row has the wrong number of fields or
  broken quoting; a JSON line is not an object; it duplicates an earlier row with different values.
- Duplicates within a file (same credit code, else same normalised name + province): an identical repeat is
  merged into the first row (counted in ``duplicates``, listed as a warning); a repeat with different values is
  rejected as ``duplicate of row N``.
- Cells that look like spreadsheet formulas (``=``, ``@``, or ``+`` / ``-`` not followed by a number) are stored
  as plain text, never evaluated, listed in ``extra["formula_cells"]`` and reported as warnings.
- ``atomic=True`` (default): if any row is rejected nothing is written and the store stays exactly as it was
  (one transaction; on SQLite it holds the write lock for the whole import); ``atomic=False``: the good rows are
  written, committed batch by batch, and the bad ones reported.
- Row numbers are the line (CSV, JSONL) or sheet row (XLSX) where the record starts, header = its own row, so
  they match what a spreadsheet shows.

Every imported enterprise is mapped onto chain links (:class:`matcher.knowledge.mapping.LinkMapper`) before the upsert.
Good rows are mapped and written in batches of 5,000 inside one transaction, so memory stays flat and an atomic
import can still roll everything back; from the second batch on, mapping runs in a forked worker process while
this one parses and writes (``parallel=False`` keeps it in-process). Mapping results are memoised per distinct
(products, scope, GB/T codes), and the mapper itself caches per product phrase.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from matcher.errors import ImportFileError
from matcher.knowledge.catalogue import default_catalogue, load_gbt_codes
from matcher.knowledge.geo import province_short
from matcher.records import Enterprise, LinkMatch, Product
from matcher.store.credit_code import validate_credit_code
from matcher.store.store import same_firm
from matcher.text import clean_text, normalize_company_name, normalize_text

if TYPE_CHECKING:
    from matcher.knowledge.mapping import LinkMapper
    from matcher.store.store import Store

__all__ = [
    "COLUMNS",
    "MAX_LENGTH",
    "ImportReport",
    "RowIssue",
    "default_mapper",
    "enterprise_id",
    "import_file",
    "map_headers",
    "parse_products",
    "read_enterprises",
]

logger = logging.getLogger(__name__)

_N = TypeVar("_N", int, float)

ProgressCallback = Callable[[int, "int | None"], None]

# canonical field -> accepted headers (compared after normalisation: simplified, half-width, lower case, no spaces)
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("企业名称", "公司名称", "名称", "企业名", "单位名称", "企业全称", "公司全称", "name", "company",
             "company_name", "enterprise", "enterprise_name", "full_name", "fullname"),
    "credit_code": ("统一社会信用代码", "社会信用代码", "信用代码", "统一信用代码", "credit_code", "uscc",
                    "unified_social_credit_code", "social_credit_code"),
    "legal_representative": ("法定代表人", "法人代表", "法人", "legal_representative", "legal_person"),
    "registered_capital": ("注册资本", "注册资金", "registered_capital", "capital"),
    "founded": ("成立日期", "成立时间", "注册日期", "成立年份", "founded", "founded_date", "established",
                "establishment_date", "setup_date"),
    "province": ("所属省份", "省份", "所在省份", "所属省", "省", "province"),
    "city": ("所属城市", "城市", "所在城市", "所属地市", "地级市", "市", "city"),
    "county": ("所属区县", "区县", "所在区县", "县区", "county", "district"),
    "gbt_section": ("国标行业门类", "行业门类", "门类", "gbt_section", "industry_section"),
    "gbt_division": ("国标行业大类", "行业大类", "大类", "gbt_division", "industry_division"),
    "gbt_group": ("国标行业中类", "行业中类", "中类", "gbt_group", "industry_group"),
    "gbt_class": ("国标行业小类", "行业小类", "小类", "gbt_class", "industry_class"),
    "gbt_codes": ("国民经济行业代码", "行业代码", "gbt_codes", "gbt", "gbt_code", "industry_code"),
    "scope": ("经营范围", "scope", "business_scope"),
    "size": ("企业规模", "规模", "size", "scale", "company_size"),
    "employees": ("参保人数", "员工人数", "职工人数", "从业人数", "员工数", "employees", "staff", "headcount",
                  "insured_employees"),
    "products": ("主营产品", "主要产品", "主营业务", "产品", "products", "main_products", "product"),
    "stock_code": ("股票代码", "证券代码", "stock_code", "ticker", "symbol"),
    "aliases": ("曾用名", "别名", "简称", "企业简称", "股票简称", "证券简称", "former_names", "former_name",
                "aliases", "alias", "short_name"),
    "tags": ("企业标签", "标签", "企业类型标签", "tags", "labels"),
    "revenue": ("营业收入", "营收", "营业总收入", "revenue"),
    "parent_group": ("所属集团", "母公司", "集团", "parent_group", "parent"),
    "sw_industry": ("申万行业", "sw_industry"),
}  # fmt: skip

MAX_LENGTH: dict[str, int] = {
    "name": 200,
    "credit_code": 64,
    "legal_representative": 100,
    "province": 64,
    "city": 64,
    "county": 64,
    "stock_code": 32,
    "scope": 20_000,
    "products": 5_000,
    "aliases": 2_000,
    "tags": 2_000,
    "*": 20_000,  # every other column, including unknown ones
}

_EMPTY = {"", "-", "--", "---", "—", "——", "/", "无", "暂无", "未知", "null", "none", "nan", "n/a", "na"}
_SPLIT = re.compile(r"[;；,，、|\n]+")
_PRODUCT_SHARE = re.compile(
    r"^(?P<name>.+?)\s*(?:[:：=]\s*(?P<a>[0-9.]+)\s*(?P<ap>%?)|[(\[]\s*(?P<b>[0-9.]+)\s*(?P<bp>%?)\s*[)\]]"
    r"|\s(?P<c>[0-9.]+)\s*(?P<cp>%))$"
)
_FORMULA_START = ("=", "@", "+", "-", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?%?$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_HEADER_UNIT = re.compile(r"[(\[](?P<unit>[^)\]]*)[)\]]\s*$")
_GBT_CELL = re.compile(r"^\s*(?P<letter>[A-Ta-t])?\s*(?P<digits>\d{2,4})?\s*(?P<name>.*)$")
_STOCK = re.compile(r"^(?:(?:SH|SZ|BJ)\.?)?(?P<code>\d{6})(?:\.(?:SH|SZ|BJ|SS))?$", re.IGNORECASE)
_MONEY = re.compile(r"^(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<unit>万|亿|千|百)?\s*(?P<rest>.*)$")
_CURRENCIES = {"美元": "USD", "港元": "HKD", "港币": "HKD", "欧元": "EUR", "日元": "JPY", "英镑": "GBP"}
_SUFFIXES_CSV = {".csv", ".tsv", ".txt"}
_SUFFIXES_XLSX = {".xlsx", ".xlsm"}
_SUFFIXES_JSONL = {".jsonl", ".ndjson", ".json"}
_MARK = "chainmatch.escape_bytes"


def _escape_bytes(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Decode error handler: each undecodable byte becomes a lone surrogate U+DC80..U+DCFF (found per row later)."""
    bad = exc.object[exc.start : exc.end]
    return "".join(chr(0xDC00 + (b if b >= 0x80 else 0x80 | b)) for b in bad), exc.end


codecs.register_error(_MARK, _escape_bytes)


# --- report -----------------------------------------------------------------------------------------------------


@dataclass
class RowIssue:
    """One problem with one row: ``row`` as a spreadsheet shows it, ``field`` the column header (or ``-``)."""

    row: int
    field: str
    reason: str
    value: str = ""

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.reason}"


@dataclass
class ImportReport:
    """The outcome of :func:`import_file`.

    ``inserted`` / ``updated`` / ``unchanged`` count stored rows; ``rejected`` counts rejected input rows;
    ``duplicates`` counts identical repeated rows merged into their first occurrence. ``committed`` is False when
    nothing was written (an atomic import with rejects).
    """

    path: str
    format: str
    encoding: str | None = None
    tenant: str | None = None
    atomic: bool = True
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    committed: bool = False
    rejects: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # header -> canonical field (or "extra")
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # read / map / write seconds

    @property
    def rejected(self) -> int:
        return len({r.row for r in self.rejects})

    @property
    def ok(self) -> bool:
        return not self.rejects

    def summary(self) -> str:
        """One line: what was read, written and rejected."""
        state = "written" if self.committed else "NOTHING written (atomic import with rejected rows)"
        return (
            f"{self.path}: {self.rows} rows ({self.format}, {self.encoding or '-'}) → "
            f"inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}, "
            f"rejected {self.rejected}, merged duplicates {self.duplicates}, warnings {len(self.warnings)}; "
            f"{state}; {self.seconds:.1f} s"
        )


# --- headers ----------------------------------------------------------------------------------------------------


def _header_key(header: str) -> str:
    key = normalize_text(str(header or "")).lstrip("\ufeff").strip("*:：")
    for marker in ("(必填)", "(选填)", "*"):
        key = key.replace(marker, "")
    return key


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for canonical, names in COLUMNS.items():
        for n in names:
            table.setdefault(_header_key(n), canonical)
    return table


@dataclass
class _Column:
    index: int
    header: str
    field: str | None  # canonical, or None = extra
    unit: str = ""


def map_headers(headers: list[Any]) -> list[_Column]:
    """Map raw headers onto canonical fields; later duplicates of a field and unknown headers go to ``extra``."""
    table = _aliases()
    taken: set[str] = set()
    out: list[_Column] = []
    for i, raw in enumerate(headers):
        # undecodable bytes (lone surrogates) cannot pass through OpenCC: shown as U+FFFD
        header = clean_text(_SURROGATE.sub("\ufffd", str(raw))) if raw is not None else ""
        header = header.lstrip("\ufeff") or f"column_{i + 1}"
        key = _header_key(header)
        canonical = table.get(key)
        unit = ""
        if canonical is None:
            m = _HEADER_UNIT.search(key)
            if m:
                canonical = table.get(key[: m.start()].strip())
                unit = m.group("unit")
        if canonical in taken:
            canonical = None
        if canonical:
            taken.add(canonical)
        out.append(_Column(i, header, canonical, unit))
    return out


def _missing_name_error(headers: list[Any], where: str) -> ImportFileError:
    found = ", ".join(_SURROGATE.sub("\ufffd", str(h)) for h in headers if h not in (None, "")) or "(none)"
    found = found if len(found) <= 300 else found[:300] + "…"
    return ImportFileError(
        f"{where}: missing the enterprise-name column; expected one of {', '.join(COLUMNS['name'])}; "
        f"found columns: {found}"
    )


# --- cell parsing -----------------------------------------------------------------------------------------------


_SEP = "\ue000"  # private-use separator: joins a row's cells for one normalisation pass
_LIST_FIELDS = {
    "products",
    "aliases",
    "tags",
    "gbt_section",
    "gbt_division",
    "gbt_group",
    "gbt_class",
    "gbt_codes",
}


def _is_empty(text: str) -> bool:
    return len(text) <= 5 and normalize_text(text) in _EMPTY


def _clean_fields(known: dict[str, tuple[Any, Any, str]]) -> dict[str, str]:
    """:func:`matcher.text.clean_text` of every known text cell of a row, in one pass (one OpenCC call per row
    instead of one per cell); line breaks in list cells become separators first."""
    keys = [k for k, (_, raw, _) in known.items() if not isinstance(raw, list | dict)]
    if not keys:
        return {}
    texts = [known[k][2].replace("\n", ";") if k in _LIST_FIELDS else known[k][2] for k in keys]
    parts = clean_text(_SEP.join(texts)).split(_SEP)
    if len(parts) != len(keys):  # cannot happen (the separator is stripped from cells); stay correct anyway
        parts = [clean_text(t) for t in texts]
    return {k: p.strip() for k, p in zip(keys, parts, strict=True)}


def _is_formula(value: str) -> bool:
    return bool(value) and value.startswith(_FORMULA_START) and not _NUMBER.match(value.strip())


def _split(value: str) -> list[str]:
    return [p.strip() for p in _SPLIT.split(value) if p.strip()]


def _is_fraction(text: str) -> bool:
    try:
        return "." in text and 0.0 <= float(text) <= 1.0
    except ValueError:
        return False


def parse_products(cell: Any) -> tuple[list[Product], list[str]]:
    """Products from a 主营产品 cell, plus warnings.

    Accepts ``"多晶硅:0.6;硅片:0.3"``, ``"多晶硅：60%、硅片"``, ``"多晶硅(60%)"``, ``"多晶硅 60%"``, ``"多晶硅、硅片"``
    and, from JSON, a list of names or of ``{"name", "share"}`` objects. Shares above 1 are read as percent.
    """
    return _parse_products(cell, clean=True)


def _parse_products(cell: Any, clean: bool) -> tuple[list[Product], list[str]]:
    warnings: list[str] = []
    items: list[tuple[str, Any]] = []
    if isinstance(cell, list):
        for it in cell:
            if isinstance(it, dict):
                items.append((str(it.get("name") or ""), it.get("share")))
            elif it is not None:
                items.append((str(it), None))
    elif cell not in (None, ""):
        for part in _split(str(cell)):
            part = clean_text(part) if clean else part
            m = _PRODUCT_SHARE.match(part)
            if m and m.group("b") and not m.group("bp") and not _is_fraction(m.group("b")):
                m = None  # "铝合金(6063)": a grade in brackets, not a share
            if m:
                num = m.group("a") or m.group("b") or m.group("c")
                pct = bool(m.group("ap") or m.group("bp") or m.group("cp"))
                items.append((m.group("name"), f"{num}%" if pct else num))
            else:
                items.append((part, None))
    out: list[Product] = []
    seen: set[str] = set()
    for name, share in items:
        name = (clean_text(name) if clean else name).strip(" :：")
        if not name or normalize_text(name) in _EMPTY:
            continue
        value: float | None = None
        if share not in (None, ""):
            text = str(share).strip()
            try:
                value = float(text.rstrip("%"))
                if text.endswith("%") or value > 1.0:
                    value /= 100.0
                if not 0.0 <= value <= 1.0:
                    raise ValueError
            except ValueError:
                warnings.append(
                    f"product {name!r}: share {text!r} is not a number in 0-1 or 0-100%; kept without"
                )
                value = None
        key = normalize_text(name)
        if key in seen:
            continue
        seen.add(key)
        out.append(Product(name=name, share=None if value is None else round(value, 6)))
    total = sum(p.share or 0.0 for p in out)
    if total > 1.0001:
        warnings.append(f"product shares sum to {total:.2f} (> 1)")
    return out, warnings


@lru_cache(maxsize=100_000)
def _parse_products_cached(text: str) -> tuple[tuple[tuple[str, float | None], ...], tuple[str, ...]]:
    """:func:`_parse_products` of an already-clean cell, memoised: exports repeat the same product strings."""
    products, warnings = _parse_products(text, clean=False)
    return tuple((p.name, p.share) for p in products), tuple(warnings)


def _parse_money(text: str, header_unit: str) -> tuple[float | None, str | None]:
    """注册资本 in 万元 (of its currency) and the currency when not RMB."""
    m = _MONEY.match(text.replace(" ", ""))
    if not m:
        return None, None
    num = float(m.group("num").replace(",", ""))
    unit = m.group("unit") or ""
    rest = m.group("rest")
    if not unit:
        if "万" in header_unit:
            unit = "万"
        elif rest.startswith("元") or "元" == header_unit:
            unit = "元"
        else:
            unit = "万"  # exports state registered capital in 万元 unless told otherwise
    factor = {"万": 1.0, "亿": 10_000.0, "千": 0.1, "百": 0.01, "元": 0.0001}[unit]
    currency = next((code for word, code in _CURRENCIES.items() if word in rest or word in header_unit), None)
    return round(num * factor, 6), currency


def _parse_revenue(text: str, header_unit: str) -> float | None:
    """营业收入 in 亿元."""
    m = _MONEY.match(text.replace(" ", ""))
    if not m:
        return None
    num = float(m.group("num").replace(",", ""))
    unit = m.group("unit") or ("亿" if "亿" in header_unit else "万" if "万" in header_unit else "")
    if not unit:
        unit = "元" if ("元" in header_unit or m.group("rest").startswith("元")) else "亿"
    return round(num * {"亿": 1.0, "万": 1e-4, "千": 1e-5, "百": 1e-6, "元": 1e-8}[unit], 8)


def _parse_int(text: str) -> int | None:
    m = re.match(r"^\s*([0-9][0-9,]*)(?:\.0+)?\s*人?\s*$", text)
    return int(m.group(1).replace(",", "")) if m else None


def _parse_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    m = re.match(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text) or re.match(
        r"^(\d{4})(\d{2})(\d{2})$", text
    )
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


@lru_cache(maxsize=1)
def _gbt_by_name() -> dict[str, str]:
    return {normalize_text(name): code for code, name in load_gbt_codes().items()}


def _gbt_code(value: str) -> tuple[str | None, str | None]:
    """(numeric code, section letter) of a 国标行业 cell such as 'C3216 铝冶炼', '3216', '铝冶炼' or 'C 制造业'."""
    m = _GBT_CELL.match(value)
    letter = (m.group("letter") or "").upper() or None if m else None
    digits = m.group("digits") if m else None
    if digits:
        return digits, letter
    name = normalize_text(m.group("name") if m else value)
    code = _gbt_by_name().get(name)
    if code and code.isalpha():
        return None, code.upper()
    return code, letter


def _stock_code(value: str) -> str:
    m = _STOCK.match(value.replace(" ", ""))
    return m.group("code") if m else value


def enterprise_id(credit_code: str | None, normalized_name: str, province: str | None) -> str:
    """Id of an imported row: its credit code, else ``ent-`` + 16 hex of sha1(normalised name | province)."""
    if credit_code:
        return credit_code
    digest = hashlib.sha1(f"{normalized_name}|{province or ''}".encode()).hexdigest()
    return f"ent-{digest[:16]}"


def _cell_text(value: Any, canonical: str | None) -> str:
    """A raw cell as text (spreadsheet numbers without a spurious '.0'; stock codes keep leading zeros)."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        text = str(value)
        if canonical == "stock_code" and isinstance(value, int) and 0 < len(text) < 6:
            text = text.zfill(6)
        return text
    if isinstance(value, datetime | date):
        return _parse_date(value) or str(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- one row ----------------------------------------------------------------------------------------------------


class _RowBuilder:
    """Turns one record (column -> raw value) into an Enterprise, or collects its issues."""

    def __init__(
        self, source: str, encoding: str | None, surrogates: bool = True, controls: bool = True
    ) -> None:
        self.source = source
        self.encoding = encoding or "utf-8"
        self.surrogates = surrogates  # False when the whole file decoded cleanly: skip the per-cell scan
        self.controls = controls  # False when the file has no control characters

    def build(
        self, row: int, cells: list[tuple[_Column, Any]]
    ) -> tuple[Enterprise | None, list[RowIssue], list[RowIssue]]:
        """The enterprise of one record, or None with the record's rejects; plus warnings either way."""
        rejects: list[RowIssue] = []
        warnings: list[RowIssue] = []
        known: dict[str, tuple[_Column, Any, str]] = {}
        extra: dict[str, Any] = {}
        formula: list[str] = []
        for col, raw in cells:
            structured = isinstance(raw, list | dict)
            text = _cell_text(raw, col.field)
            limit = MAX_LENGTH.get(col.field or "*", MAX_LENGTH["*"])
            if len(text) > limit:
                reason = f"field too long: {len(text):,} characters > max {limit:,}"
                rejects.append(RowIssue(row, col.header, reason, text[:80]))
                continue
            if self.surrogates and _SURROGATE.search(text):
                reason = f"bytes not valid {self.encoding} (mixed or broken encoding; save the file as UTF-8)"
                rejects.append(RowIssue(row, col.header, reason, _SURROGATE.sub("?", text)[:80]))
                continue
            if self.controls:
                text = _CONTROL.sub("", text).replace(_SEP, "")
            text = text.strip()
            if col.field == "credit_code" and isinstance(raw, int | float) and not isinstance(raw, bool):
                reason = "credit code stored as a number (digits lost); format the column as text"
                rejects.append(RowIssue(row, col.header, reason, text))
                continue
            if not structured and _is_empty(text):
                continue
            if _is_formula(text):
                formula.append(col.header)
                reason = "formula-like cell stored as text (never evaluated)"
                warnings.append(RowIssue(row, col.header, reason, text[:80]))
            if col.field is None:
                extra[col.header] = raw if structured else text
            else:
                known[col.field] = (col, raw, text)

        cleaned = _clean_fields(known)
        name_entry = known.get("name")
        name = cleaned.get("name", "")
        if name_entry is None or not name:
            name_header = (
                name_entry[0].header
                if name_entry
                else next((c.header for c, _ in cells if c.field == "name"), "企业名称")
            )
            if not any(
                r.field == name_header for r in rejects
            ):  # not already rejected as too long / undecodable
                rejects.append(RowIssue(row, name_header, "enterprise name is empty"))
            return None, rejects, warnings
        normalized = normalize_company_name(name)
        if not normalized:
            rejects.append(
                RowIssue(row, name_entry[0].header, "enterprise name has no letters or digits", name)
            )

        def text_of(key: str) -> str:
            return cleaned.get(key, "")

        def values_of(key: str) -> list[str]:
            raw = known[key][1]
            if isinstance(raw, list):
                return [clean_text(str(v)) for v in raw if v not in (None, "")]
            return _split(cleaned.get(key, ""))

        credit: str | None = None
        if "credit_code" in known:
            col, _raw, text = known["credit_code"]
            try:
                credit = validate_credit_code(text)
            except ValueError as exc:
                rejects.append(RowIssue(row, col.header, f"invalid credit code: {exc}", text))

        province_raw = text_of("province")
        province = province_short(province_raw) or (province_raw or None)

        gbt_codes: list[str] = []
        for level in ("gbt_class", "gbt_group", "gbt_division", "gbt_codes", "gbt_section"):
            if level not in known:
                continue
            for v in values_of(level):
                code, letter = _gbt_code(v)
                if code and code not in gbt_codes:
                    gbt_codes.append(code)
                if letter and "gbt_section" not in extra:
                    extra["gbt_section"] = letter
                if not code and not letter:
                    extra.setdefault(known[level][0].header, text_of(level))
        gbt_codes.sort(key=lambda c: -len(c))

        products: list[Product] = []
        if "products" in known:
            col, raw, _text = known["products"]
            if isinstance(raw, list):
                products, notes = _parse_products(raw, clean=True)
            else:
                parsed, notes = _parse_products_cached(text_of("products"))
                products = [Product(name=n, share=v) for n, v in parsed]
            warnings.extend(RowIssue(row, col.header, n) for n in notes)

        registered_capital = None
        if "registered_capital" in known:
            col, raw, text = known["registered_capital"]
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                registered_capital = float(raw) * (0.0001 if col.unit.startswith("元") else 1.0)
            else:
                registered_capital, currency = _parse_money(text_of("registered_capital"), col.unit)
                if currency:
                    extra["registered_capital_currency"] = currency
            if registered_capital is None:
                extra["registered_capital_raw"] = text
                warnings.append(
                    RowIssue(row, col.header, "registered capital not understood; kept in extra", text)
                )

        def number_of(
            key: str, parse: Callable[[int | float | str, str], _N | None], problem: str
        ) -> _N | None:
            """``parse(number cell or cleaned text, column unit)``; None keeps the text in extra, warned."""
            if key not in known:
                return None
            col, raw, text = known[key]
            numeric = isinstance(raw, int | float) and not isinstance(raw, bool)
            value = parse(raw if numeric else text_of(key), col.unit)
            if value is None:
                extra[f"{key}_raw"] = text
                warnings.append(RowIssue(row, col.header, problem, text))
            return value

        employees = number_of(
            "employees",
            lambda v, _unit: _parse_int(v) if isinstance(v, str) else int(v),
            "employee count not a whole number; kept in extra",
        )
        revenue = number_of(
            "revenue", lambda v, unit: _parse_revenue(str(v), unit), "revenue not understood; kept in extra"
        )

        for key in ("legal_representative", "size"):
            if key in known:
                extra[key] = text_of(key)
        if "founded" in known:
            col, raw, text = known["founded"]
            founded = _parse_date(raw if isinstance(raw, datetime | date) else text_of("founded"))
            extra["founded"] = founded or text_of("founded")
            if founded is None:
                warnings.append(RowIssue(row, col.header, "date not understood; kept as text", text))

        aliases = (
            [a for a in dict.fromkeys(values_of("aliases")) if a and a != name] if "aliases" in known else []
        )
        tags = [t for t in dict.fromkeys(values_of("tags")) if t] if "tags" in known else []
        if formula:
            extra["formula_cells"] = formula
        if rejects:
            return None, rejects, warnings
        try:
            enterprise = Enterprise(
                id=enterprise_id(credit, normalized, province),
                name=name,
                normalized_name=normalized,
                credit_code=credit,
                aliases=aliases,
                province=province,
                city=text_of("city") or None,
                county=text_of("county") or None,
                gbt_codes=gbt_codes,
                sw_industry=text_of("sw_industry") or None,
                products=products,
                scope=text_of("scope"),
                registered_capital=registered_capital,
                employees=employees,
                revenue=revenue,
                stock_code=_stock_code(text_of("stock_code")) or None,
                parent_group=text_of("parent_group") or None,
                tags=tags,
                source=self.source,
                extra=extra,
            )
        except ValueError as exc:  # pydantic ValidationError is a ValueError
            return None, [RowIssue(row, "-", f"profile invalid: {exc}")], warnings
        return enterprise, [], warnings


# --- readers ----------------------------------------------------------------------------------------------------


@dataclass
class _Source:
    columns: list[_Column]
    records: Iterator[_Record]
    total: int | None
    surrogates: bool = True  # cells may hold undecodable bytes
    controls: bool = True  # cells may hold control characters


@dataclass
class _Record:
    row: int
    cells: list[tuple[_Column, Any]] | None  # None when the record itself is broken
    issue: RowIssue | None = None


def _decode(data: bytes, where: str) -> tuple[str, str, set[int]]:
    """Text, encoding and the 1-based lines that look like another encoding than the file's."""
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(enc, errors=_MARK), enc, set()
    try:
        return data.decode("utf-8"), "utf-8", set()
    except UnicodeDecodeError:
        pass
    utf8_lines: set[int] = set()
    bad = 0
    for i, line in enumerate(data.split(b"\n"), start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_lines.add(i)
        except UnicodeDecodeError:
            bad += 1
    if len(utf8_lines) > bad:
        return data.decode("utf-8", errors=_MARK), "utf-8", set()  # mostly UTF-8: bad rows carry surrogates
    from charset_normalizer import from_bytes

    guess = from_bytes(data[:1_000_000]).best()
    enc = (guess.encoding if guess else "gb18030").lower().replace("-", "_")
    if enc in {
        "gb2312",
        "gbk",
        "gb18030",
        "hz",
        "cp936",
        "iso2022_jp",
        "euc_jp",
        "shift_jis",
        "cp932",
    } or enc.startswith("cp125"):
        # Chinese exports: GB18030 is the superset of GB2312 / GBK; a Western single-byte guess on bytes that are
        # not UTF-8 is nearly always GBK misread
        enc = "gb18030"
    elif enc in {"big5", "big5hkscs", "cp950"}:
        enc = "big5hkscs"
    try:
        text = data.decode(enc, errors=_MARK)
    except LookupError as exc:
        raise ImportFileError(
            f"{where}: cannot decode the file (detected {enc!r}); save it as UTF-8"
        ) from exc
    logger.info("%s: decoded as %s (%d UTF-8 lines flagged as mixed)", where, enc, len(utf8_lines))
    return text, enc, utf8_lines


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    first = text[: text.find("\n")] if "\n" in text else text
    counts = {d: first.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _find_header(rows: list[tuple[int, list[Any]]], where: str) -> tuple[int, list[_Column]]:
    """Index in ``rows`` of the header row (the first with a name column among the first 10) and its columns."""
    for i, (_, cells) in enumerate(rows[:10]):
        cols = map_headers(cells)
        if any(c.field == "name" for c in cols):
            return i, cols
    raise _missing_name_error(rows[0][1] if rows else [], where)


def _read_csv(data: bytes, path: Path, report: ImportReport) -> _Source:
    where = path.name
    text, encoding, suspect_lines = _decode(data, where)
    report.encoding = encoding
    if not text.strip():
        raise ImportFileError(
            f"{where}: the file is empty (expected a header row with 企业名称 and data rows)"
        )
    delimiter = _sniff_delimiter(text, path.suffix.lower())
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, 2**31 - 1 if sys.maxsize > 2**32 else 2**30))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    def records() -> Iterator[tuple[int, int, list[str] | None, str | None]]:
        last = 0
        while True:
            start = last + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                end = reader.line_num
                reason = f"malformed CSV ({exc})"
                if "end of data" in str(exc) or end > start + 1000:
                    reason += f"; an opening quote is never closed, lines {start}-{end} are unreadable"
                last = end
                yield start, end, None, reason
                continue
            last = reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            yield start, last, cells, None

    it = records()
    head: list[tuple[int, list[Any]]] = []
    for start, _end, cells, reason in it:
        if cells is None:
            report.warnings.append(
                RowIssue(start, "-", f"unreadable line above the header skipped: {reason}")
            )
        else:
            head.append((start, cells))
        if len(head) >= 10 or (head and any(c.field == "name" for c in map_headers(head[-1][1]))):
            break
    if not head:
        raise ImportFileError(
            f"{where}: the file is empty (expected a header row with 企业名称 and data rows)"
        )
    idx, columns = _find_header(head, where)
    for skipped_row, _cells in head[:idx]:
        report.warnings.append(RowIssue(skipped_row, "-", "title row above the header skipped"))
    n_cols = len(columns)
    total_lines = text.count("\n") + 1

    def gen() -> Iterator[_Record]:
        pending = [(s, s, c, None) for s, c in head[idx + 1 :]]
        for start, end, cells, reason in itertools.chain(pending, it):
            if cells is None:
                yield _Record(start, None, RowIssue(start, "-", reason or "malformed CSV"))
                continue
            if suspect_lines and any(line in suspect_lines for line in range(start, end + 1)):
                yield _Record(
                    start,
                    None,
                    RowIssue(
                        start,
                        "-",
                        f"row is UTF-8 while the file is {encoding} (mixed encodings); save as UTF-8",
                    ),
                )
                continue
            if len(cells) != n_cols:
                yield _Record(
                    start,
                    None,
                    RowIssue(start, "-", f"malformed CSV row: {len(cells)} fields, the header has {n_cols}"),
                )
                continue
            yield _Record(start, list(zip(columns, cells, strict=True)))

    # whole-text scans once, so the per-cell checks can be skipped when they cannot find anything
    checks = (bool(_SURROGATE.search(text)), bool(_CONTROL.search(text)) or _SEP in text)
    return _Source(columns, gen(), total_lines, *checks)


def _read_xlsx(path: Path, report: ImportReport) -> _Source:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    where = path.name
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(f"{where}: not a readable .xlsx workbook ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and friends
        raise ImportFileError(
            f"{where}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})"
        ) from exc
    report.encoding = "xlsx"
    first_headers: list[Any] = []
    for ws in wb.worksheets:
        rows_iter = ws.iter_rows(values_only=True)
        head: list[tuple[int, list[Any]]] = []
        for n, values in enumerate(rows_iter, start=1):
            values = list(values)
            while values and values[-1] in (None, ""):
                values.pop()
            if values:
                head.append((n, values))
            if len(head) >= 10:
                break
        if not head:
            continue
        first_headers = first_headers or head[0][1]
        try:
            idx, columns = _find_header(head, where)
        except ImportFileError:
            continue
        header_row = head[idx][0]
        for skipped_row, _ in head[:idx]:
            report.warnings.append(RowIssue(skipped_row, "-", "title row above the header skipped"))

        def gen(
            ws: Any = ws, columns: list[_Column] = columns, header_row: int = header_row
        ) -> Iterator[_Record]:
            try:
                for n, values in enumerate(
                    ws.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1
                ):
                    values = list(values)
                    if all(v in (None, "") for v in values):
                        continue
                    cols = list(columns)
                    for j in range(len(cols), len(values)):  # cells right of the header: kept, never dropped
                        if values[j] not in (None, ""):
                            cols.append(_Column(j, f"column_{j + 1}", None))
                    yield _Record(n, [(c, values[c.index] if c.index < len(values) else None) for c in cols])
            finally:
                wb.close()

        total = (ws.max_row - header_row) if ws.max_row else None
        return _Source(columns, gen(), total)
    wb.close()
    if not first_headers:
        raise ImportFileError(
            f"{where}: the workbook is empty (expected a header row with 企业名称 and data rows)"
        )
    raise _missing_name_error(first_headers, where)


def _read_jsonl(data: bytes, path: Path, report: ImportReport) -> _Source:
    where = path.name
    text, encoding, suspect_lines = _decode(data, where)
    report.encoding = encoding
    lines = text.split("\n")
    if not any(line.strip() for line in lines):
        raise ImportFileError(f"{where}: the file is empty (expected one JSON object per line)")
    if text.lstrip().startswith("[") and path.suffix.lower() == ".json":
        raise ImportFileError(f"{where}: a JSON array; expected JSON lines (one object per line, .jsonl)")
    cache: dict[tuple[str, ...], list[_Column]] = {}
    seen_name = False
    first_keys: list[str] = []
    for line in lines:  # the name key must exist somewhere, like a CSV header
        if line.strip():
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                first_keys = first_keys or list(obj)
                if any(c.field == "name" for c in map_headers(list(obj))):
                    seen_name = True
                    break
    if not seen_name:
        raise _missing_name_error(first_keys, where)

    def gen() -> Iterator[_Record]:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if n in suspect_lines:
                yield _Record(
                    n, None, RowIssue(n, "-", f"line is UTF-8 while the file is {encoding} (mixed encodings)")
                )
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                yield _Record(n, None, RowIssue(n, "-", f"not valid JSON: {exc}", line[:80]))
                continue
            except RecursionError:
                issue = RowIssue(n, "-", "not valid JSON: nested too deeply to parse", line[:80])
                yield _Record(n, None, issue)
                continue
            if not isinstance(obj, dict):
                yield _Record(
                    n, None, RowIssue(n, "-", f"expected a JSON object, received {type(obj).__name__}")
                )
                continue
            keys = tuple(obj)
            cols = cache.get(keys)
            if cols is None:
                cols = cache[keys] = map_headers(list(keys))
            yield _Record(n, [(c, obj[k]) for c, k in zip(cols, keys, strict=True)])

    return _Source(map_headers(first_keys), gen(), len(lines), bool(_SURROGATE.search(text)))


def _open(path: Path, report: ImportReport) -> _Source:
    if not path.exists():
        raise ImportFileError(f"{path}: file not found")
    if path.is_dir():
        raise ImportFileError(f"{path}: is a directory, expected a .csv, .xlsx or .jsonl file")
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES_XLSX:
        report.format = "xlsx"
        if path.stat().st_size == 0:
            raise ImportFileError(f"{path.name}: the file is empty (0 bytes)")
        return _read_xlsx(path, report)
    if suffix == ".xls":
        raise ImportFileError(f"{path.name}: legacy .xls is not supported; save it as .xlsx or .csv")
    data = path.read_bytes()
    if not data.strip():
        raise ImportFileError(
            f"{path.name}: the file is empty (0 bytes of data; expected a header row with 企业名称)"
        )
    if b"\x00" in data[:65536] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            f"{path.name}: looks like a binary file, not text (NUL bytes); expected CSV or JSON lines "
            "(UTF-8 / GBK) with a 企业名称 column"
        )
    if suffix in _SUFFIXES_JSONL:
        report.format = "jsonl"
        return _read_jsonl(data, path, report)
    if suffix in _SUFFIXES_CSV or not suffix:
        report.format = "csv"
        return _read_csv(data, path, report)
    raise ImportFileError(
        f"{path.name}: unsupported file type {suffix!r}; expected .csv, .tsv, .xlsx or .jsonl"
    )


# --- mapping cache ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def default_mapper() -> LinkMapper:
    """The product → link mapper over the default catalogue, built once per process."""
    from matcher.knowledge.mapping import LinkMapper

    return LinkMapper(default_catalogue())


MappingInput = tuple[tuple[tuple[str, float | None], ...], str, tuple[str, ...]]
LinkTuple = tuple[str, float, str, str, float | None]


def mapping_input(e: Enterprise) -> MappingInput:
    """Everything :meth:`LinkMapper.map` reads of a profile (products with shares, scope, GB/T codes): the cache
    key, and the payload sent to a mapping worker. Keep it in step with the mapper."""
    return tuple((p.name, p.share) for p in e.products), e.scope, tuple(e.gbt_codes)


class _CachedMapper:
    """Memoises ``mapper.map`` on :func:`mapping_input`; results as plain tuples (cheap to send between processes)."""

    def __init__(self, mapper: LinkMapper) -> None:
        self.mapper = mapper
        self._cache: dict[MappingInput, list[LinkTuple]] = {}

    def map_input(self, key: MappingInput) -> list[LinkTuple]:
        hit = self._cache.get(key)
        if hit is None:
            products, scope, gbt = key
            probe = Enterprise(
                id="-",
                name="-",
                products=[Product(name=n, share=s) for n, s in products],
                scope=scope,
                gbt_codes=list(gbt),
            )
            hit = [(m.link_id, m.score, m.method, m.evidence, m.share) for m in self.mapper.map(probe)]
            if len(self._cache) >= 20_000:  # keys hold whole scope texts: bound the memory, keep recent ones
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def links(self, e: Enterprise) -> list[LinkMatch]:
        return _link_matches(self.map_input(mapping_input(e)))


def _link_matches(tuples: list[LinkTuple]) -> list[LinkMatch]:
    return [
        LinkMatch.model_construct(link_id=lid, score=score, method=method, evidence=evidence, share=share)
        for lid, score, method, evidence, share in tuples
    ]


_WORKER_MAPPER: _CachedMapper | None = None  # set in the parent before forking the mapping worker


def _worker_map(inputs: list[MappingInput]) -> list[list[LinkTuple]]:
    """Runs in the forked mapping worker: links of a batch of mapping inputs."""
    assert _WORKER_MAPPER is not None
    return [_WORKER_MAPPER.map_input(key) for key in inputs]


class _Mapping:
    """Maps batches of enterprises onto links: in this process, or — for big files on a machine with two or more
    cores — in one forked worker process while this one keeps parsing and writing (a two-stage pipeline).

    The worker inherits the already-built mapper by ``fork``; where ``fork`` is unavailable, or when called from a
    thread other than the main one (a web server's request thread), mapping stays in-process.
    """

    def __init__(self, mapper: LinkMapper, parallel: bool) -> None:
        self.cached = _CachedMapper(mapper)
        self.parallel = parallel
        self._pool: Any = None

    def start_worker(self) -> bool:
        """Fork the worker (once); False when running serially."""
        global _WORKER_MAPPER
        if self._pool is not None:
            return True
        if not self.parallel:
            return False
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork only from the main thread (the CLI): in a server's worker thread another thread could hold a lock
        # the child would inherit locked (e.g. the mapper's cache lock), so imports there map in-process
        if (
            (os.cpu_count() or 1) < 2
            or "fork" not in multiprocessing.get_all_start_methods()
            or threading.current_thread() is not threading.main_thread()
        ):
            self.parallel = False
            return False
        _WORKER_MAPPER = self.cached
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        return True

    def submit(self, batch: list[Enterprise]) -> Any:
        """A handle whose ``result()`` gives the batch's links, computed now (serial) or in the worker."""
        inputs = [mapping_input(e) for e in batch]
        if self._pool is None:
            return _Done([self.cached.map_input(key) for key in inputs])
        return self._pool.submit(_worker_map, inputs)

    def close(self) -> None:
        global _WORKER_MAPPER
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        _WORKER_MAPPER = None


class _Done:
    def __init__(self, value: list[list[LinkTuple]]) -> None:
        self.value = value

    def result(self) -> list[list[LinkTuple]]:
        return self.value


# --- driver -----------------------------------------------------------------------------------------------------


class _Identity:
    """What the in-file dedupe remembers of a kept row (not the whole profile, so memory stays flat)."""

    __slots__ = ("row", "fingerprint", "name", "normalized_name", "province", "credit_code", "stock_code")

    def __init__(self, row: int, fingerprint: bytes, e: Enterprise) -> None:
        self.row, self.fingerprint = row, fingerprint
        self.name, self.normalized_name, self.province = e.name, e.normalized_name, e.province
        self.credit_code, self.stock_code = e.credit_code, e.stock_code


def _fingerprint(cells: list[tuple[_Column, Any]]) -> bytes:
    text = "\x1f".join(_cell_text(v, c.field).strip() for c, v in cells)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _iter_rows(
    path: Path, report: ImportReport, progress: ProgressCallback | None
) -> Iterator[tuple[int, Enterprise]]:
    """``(row, enterprise)`` of every good row, streaming; rejects, warnings and counts go into ``report``."""
    source = _open(path, report)
    report.columns = {c.header: (c.field or "extra") for c in source.columns}
    builder = _RowBuilder(
        f"import:{path.name}", report.encoding, surrogates=source.surrogates, controls=source.controls
    )
    by_code: dict[str, _Identity] = {}
    by_name: dict[tuple[str, str | None], list[_Identity]] = {}
    for record in source.records:
        report.rows += 1
        if progress is not None and report.rows % 1000 == 0:
            progress(report.rows, source.total)
        if record.cells is None:
            if record.issue:
                report.rejects.append(record.issue)
            continue
        enterprise, rejects, warnings = builder.build(record.row, record.cells)
        report.warnings.extend(warnings)
        if enterprise is None:
            report.rejects.extend(rejects)
            continue
        first = by_code.get(enterprise.credit_code) if enterprise.credit_code else None
        reason = "same credit code"
        if first is None:
            reason = "same name and province"
            for cand in by_name.get((enterprise.normalized_name, enterprise.province), []):
                if same_firm(enterprise, cand):  # the store's identity rule, so file and store agree
                    first = cand
                    break
        fingerprint = _fingerprint(record.cells)
        if first is not None:
            if first.fingerprint == fingerprint:
                report.duplicates += 1
                report.warnings.append(
                    RowIssue(record.row, "-", f"identical duplicate of row {first.row}; merged")
                )
            else:
                name_header = next((c.header for c, _ in record.cells if c.field == "name"), "-")
                reason = f"duplicate of row {first.row} ({reason}) with different values"
                report.rejects.append(RowIssue(record.row, name_header, reason, enterprise.name))
            continue
        identity = _Identity(record.row, fingerprint, enterprise)
        if enterprise.credit_code:
            by_code[enterprise.credit_code] = identity
        by_name.setdefault((enterprise.normalized_name, enterprise.province), []).append(identity)
        yield record.row, enterprise
    if report.rows == 0:
        raise ImportFileError(f"{path.name}: no data rows below the header")
    if progress is not None:
        progress(report.rows, report.rows)


def read_enterprises(
    path: str | Path,
    progress: ProgressCallback | None = None,
    report: ImportReport | None = None,
) -> tuple[list[tuple[int, Enterprise]], ImportReport]:
    """Parse and validate a file without touching any store.

    Args:
        path: the file.
        progress: called as ``progress(rows_done, total_or_None)`` while reading.
        report: a report to fill (a new one by default).

    Returns:
        ``[(row, enterprise)]`` for the good rows (exact repeats merged) and the report with rejects and warnings.

    Raises:
        ImportFileError: the file cannot be read at all (missing, empty, unsupported, no name column).
    """
    path = Path(path)
    report = report or ImportReport(path=str(path), format="?")
    return list(_iter_rows(path, report, progress)), report


_BATCH = 5_000


class _Rollback(Exception):
    """Raised inside the import transaction to undo it (an atomic import with rejected rows)."""


def write_rejects(path: str | Path, rejects: list[RowIssue]) -> Path:
    """Write rejected rows as CSV (UTF-8 with BOM so spreadsheet programs open it): row, field, reason, value.

    Values that look like formulas are prefixed with ``'`` so a spreadsheet shows them as text.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "field", "reason", "value"])
        for r in sorted(rejects, key=lambda r: (r.row, r.field)):
            value = r.value[:200]
            if _is_formula(value):
                value = "'" + value
            w.writerow([r.row, "'" + r.field if _is_formula(r.field) else r.field, r.reason, value])
    return path


def import_file(
    path: str | Path,
    store: Store,
    tenant: str | None = None,
    atomic: bool = True,
    rejects: str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    mapper: LinkMapper | None = None,
    parallel: bool = True,
) -> ImportReport:
    """Import an enterprise list into ``store``.

    Args:
        path: a ``.csv`` / ``.tsv`` / ``.xlsx`` / ``.jsonl`` file.
        store: the target store.
        tenant: ``None`` for the shared corpus, else the tenant's private rows.
        atomic: when True (default) any rejected row means nothing is written; when False the good rows are.
        rejects: where to write the rejected rows as CSV (row, field, reason, value); written whenever given.
        progress: called as ``progress(rows_done, total_or_None)``.
        mapper: the product → link mapper (default: one over the default catalogue, built once per process).
        parallel: for files of more than two batches (10,000 rows), map links in a forked worker process while
            this one parses and writes (needs ``fork`` and two cores; otherwise serial).

    Returns:
        The report: counts, rejects, warnings, changed ids, whether anything was committed.

    Raises:
        ImportFileError: the file cannot be read at all (missing, empty, unsupported format, no 企业名称 column).
    """
    from matcher.store.store import check_tenant

    t0 = time.perf_counter()
    check_tenant(tenant)
    report = ImportReport(path=str(path), format="?", tenant=tenant, atomic=atomic)
    spent = {"map": 0.0, "write": 0.0}
    big_file = Path(path).is_file() and Path(path).stat().st_size > 5_000_000  # ≈ 10,000 export rows
    mapping: list[_Mapping] = []  # built at the first batch, so an unreadable file fails fast
    pending: deque[tuple[list[Enterprise], Any]] = deque()  # batches whose links are being computed

    def submit(batch: list[Enterprise]) -> None:
        if not mapping:
            mapping.append(_Mapping(mapper or default_mapper(), parallel))
        if pending or big_file:
            mapping[0].start_worker()  # a second batch, or a big file: worth a worker process
        t = time.perf_counter()
        pending.append((batch, mapping[0].submit(batch)))
        spent["map"] += time.perf_counter() - t
        while len(pending) > 2:  # keep at most two batches in flight
            drain()

    def drain() -> None:
        batch, handle = pending.popleft()
        t = time.perf_counter()
        links = handle.result()
        mapped = [
            e.model_copy(update={"links": _link_matches(ls)}) for e, ls in zip(batch, links, strict=True)
        ]
        spent["map"] += time.perf_counter() - t
        t = time.perf_counter()
        summary = store.upsert_enterprises(mapped, tenant=tenant)
        spent["write"] += time.perf_counter() - t
        report.inserted += summary.inserted
        report.updated += summary.updated
        report.unchanged += summary.unchanged
        report.changed_ids.extend(summary.changed_ids)

    # Good rows are mapped and written in batches (memory stays flat on big files). An atomic import writes them
    # inside one transaction: when it meets a rejected row it stops writing, reads on to report every reject,
    # then rolls back. A --no-atomic import commits batch by batch, so it never holds SQLite's write lock long.
    outer = store.in_transaction  # called inside the caller's transaction: undo only our part (a SAVEPOINT)
    try:
        with store.transaction() if atomic or outer else nullcontext() as session:
            with session.begin_nested() if outer else nullcontext():
                batch: list[Enterprise] = []
                for _row, enterprise in _iter_rows(Path(path), report, progress):
                    if atomic and report.rejects:
                        continue
                    batch.append(enterprise)
                    if len(batch) >= _BATCH:
                        submit(batch)
                        batch = []
                if atomic and report.rejects:
                    raise _Rollback
                if batch:
                    submit(batch)
                while pending:
                    drain()
    except _Rollback:
        report.inserted = report.updated = report.unchanged = 0
        report.changed_ids = []
        logger.warning("%s: %d rows rejected; atomic import wrote nothing", path, report.rejected)
    else:
        report.committed = True
    finally:
        if mapping:
            mapping[0].close()
    if rejects is not None:
        write_rejects(rejects, report.rejects)
    report.seconds = time.perf_counter() - t0
    report.timings = {"read": report.seconds - spent["map"] - spent["write"], **spent}
    logger.info("%s", report.summary())
    return report
