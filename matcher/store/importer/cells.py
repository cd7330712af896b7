"""Cell parsers of an import: products with revenue shares, money with units, integers, dates, GB/T industry
codes, stock codes, formula detection and the stable enterprise id."""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from matcher.knowledge.catalogue import load_gbt_codes
from matcher.records import Product
from matcher.text import clean_text, normalize_text

if TYPE_CHECKING:
    pass


__all__ = ["enterprise_id", "parse_products"]

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


_GBT_CELL = re.compile(r"^\s*(?P<letter>[A-Ta-t])?\s*(?P<digits>\d{2,4})?\s*(?P<name>.*)$")


_STOCK = re.compile(r"^(?:(?:SH|SZ|BJ)\.?)?(?P<code>\d{6})(?:\.(?:SH|SZ|BJ|SS))?$", re.IGNORECASE)


_MONEY = re.compile(r"^(?P<num>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<unit>万|亿|千|百)?\s*(?P<rest>.*)$")


_CURRENCIES = {"美元": "USD", "港元": "HKD", "港币": "HKD", "欧元": "EUR", "日元": "JPY", "英镑": "GBP"}


def _is_empty(text: str) -> bool:
    return len(text) <= 5 and normalize_text(text) in _EMPTY


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


@lru_cache(maxsize=65_536)  # exports repeat the same capital strings ("5000万元人民币")
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


@lru_cache(maxsize=65_536)  # a column of industry codes holds a few hundred distinct cells
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
