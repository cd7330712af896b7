"""Header mapping (:data:`COLUMNS`, :func:`map_headers`) and row building: one source row -> one validated
:class:`~matcher.records.Enterprise` or a rejection (:class:`_RowBuilder`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from matcher.errors import ImportFileError
from matcher.knowledge.geo import province_short
from matcher.records import Enterprise, Product
from matcher.store.credit_code import validate_credit_code
from matcher.text import clean_text, normalize_company_name, normalize_text

if TYPE_CHECKING:
    pass
from matcher.store.importer.cells import (
    _CONTROL,
    _SURROGATE,
    _gbt_code,
    _is_empty,
    _is_formula,
    _parse_date,
    _parse_int,
    _parse_money,
    _parse_products,
    _parse_products_cached,
    _parse_revenue,
    _split,
    _stock_code,
    enterprise_id,
)
from matcher.store.importer.report import RowIssue

__all__ = [
    "COLUMNS",
    "MAX_COLUMNS",
    "MAX_EXTRA_COLUMNS",
    "MAX_LENGTH",
    "MAX_XLSX_UNPACKED_BYTES",
    "map_headers",
]

_N = TypeVar("_N", int, float)

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
    "parent_credit_code": ("母公司统一社会信用代码", "母公司信用代码", "集团统一社会信用代码", "parent_credit_code"),
    "sites": ("生产基地", "工厂所在地", "生产地址", "厂址", "子公司所在地", "sites", "plants"),
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
    "sites": 2_000,
    "*": 20_000,  # every other column, including unknown ones
}

MAX_COLUMNS = 300
"""Columns a file may have; wider files are refused before any row is read."""
MAX_EXTRA_COLUMNS = 50
"""Unknown columns kept in ``extra`` (the JSON API's limit on ``extra`` keys)."""
MAX_XLSX_UNPACKED_BYTES = 512 * 1024 * 1024
"""Uncompressed size a workbook's parts may declare (a zip bomb is refused before anything is inflated)."""
MAX_XLSX_RUN_BYTES = 1024 * 1024
"""Longest stretch of a workbook part's XML between two tags (one cell's text; Excel's own cap is 32,767
characters): checked while the part is inflated, before any parser holds it."""


_HEADER_UNIT = re.compile(r"[(\[](?P<unit>[^)\]]*)[)\]]\s*$")


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

        if "parent_credit_code" in known and text_of("parent_credit_code"):
            col, _raw, text = known["parent_credit_code"]
            try:  # the group is resolved to the parent's name when the import is written (importer.groups)
                extra["parent_credit_code"] = validate_credit_code(text)
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
        if "sites" in known:  # plants and other known sites (presence in a region beyond the registered city)
            sites = [x for x in dict.fromkeys(values_of("sites")) if x]
            if sites:
                extra["sites"] = sites
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
