"""Import expansion signals from CSV / XLSX / JSON lines with Chinese headers (the enterprise importer's readers).

Headers (English equivalents in brackets): 企业名称 (firm, name), 统一社会信用代码 (credit_code), 股票代码 (stock_code),
所属集团 (group), 日期 / 公告日期 (date), 类型 / 事件类型 (kind), 产品 / 项目 (product), 环节 (link_id),
省份 (province), 地区 / 项目地点 (region), 金额 / 投资金额 (amount; 万元 unless the cell or header says 亿元 / 元),
来源 / 来源链接 (url), 来源文件 (document), 标题 (title), 置信度 (confidence).

Each event is tied to a stored enterprise (credit code, else stock code, else normalised name) when one is
visible to the tenant, and to a catalogue link (the product mapped by :class:`~matcher.knowledge.mapping.LinkMapper`)
unless the file names one. A row is rejected with its row number, field and reason when the firm, date or kind is
missing or invalid, the amount or confidence is not a number, or it has no source (URL or document). Atomic by
default: one rejected row and nothing is written.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select

from matcher.knowledge.geo import province_short
from matcher.store.database import paused_gc
from matcher.store.db_models import EnterpriseRow
from matcher.store.importer.cells import _parse_date, _parse_money
from matcher.store.importer.formats import _open
from matcher.store.importer.report import ImportReport, RowIssue
from matcher.store.signals import KIND_ALIASES, KINDS, SignalEvent, SignalSource, upsert_signal_rows
from matcher.store.tenancy import check_tenant
from matcher.text import clean_text, normalize_company_name

if TYPE_CHECKING:
    from matcher.knowledge.mapping import LinkMapper
    from matcher.store.store import Store

__all__ = ["SIGNAL_COLUMNS", "STARTER_FILE", "import_signals", "map_product_link", "read_signals"]

logger = logging.getLogger(__name__)

SIGNAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "firm": ("企业名称", "公司名称", "name", "company"),
    "credit_code": ("统一社会信用代码", "信用代码", "credit_code"),
    "stock_code": ("股票代码", "证券代码", "stock_code"),
    "group": ("所属集团", "集团", "group"),
    "date": ("日期", "公告日期", "事件日期", "签约日期", "date"),
    "kind": ("类型", "事件类型", "kind"),
    "product": ("产品", "项目", "项目名称", "产品/项目", "product"),
    "link_id": ("环节", "环节id", "link_id"),
    "province": ("省份", "所属省份", "项目省份", "province"),
    "region": ("地区", "项目地点", "所在地", "region"),
    "amount": ("金额", "投资金额", "投资额", "amount"),
    "url": ("来源", "来源链接", "链接", "url", "source"),
    "document": ("来源文件", "公告编号", "document"),
    "title": ("标题", "来源标题", "title"),
    "confidence": ("置信度", "confidence"),
}
STARTER_FILE = Path(__file__).resolve().parents[1] / "data" / "signals" / "starter.jsonl"
"""The shipped starter set: expansion events of A-share firms authored from public reports, each with its URL."""

_HEADER: dict[str, str] = {
    re.sub(r"[（(].*?[)）]", "", h).strip().lower(): f for f, hs in SIGNAL_COLUMNS.items() for h in hs
}
_MONTH = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?\s*$")


_SPLIT = re.compile(r"[、，,；;/（）()]|及|和|与|配套")
_CAPACITY = re.compile(r"^(?:年产|年处理|年回收)?[0-9.]+\s*(?:万吨|千吨|吨|GWh|GW|MW|万支|万套|台|套)?(?:/年)?")
_SUFFIX = re.compile(r"(?:生产基地|制造基地|一体化基地|一体化项目|产业园|生产线|建设项目|项目|基地|工厂)$")


def map_product_link(mapper: LinkMapper, text: str) -> str | None:
    """The catalogue link of an event's product text: the whole phrase, else its parts with capacities
    ("年产20万吨") and project words ("项目", "生产基地") stripped, first match wins."""
    if not text:
        return None
    candidates = [text]
    for part in _SPLIT.split(text):
        core = _SUFFIX.sub("", _CAPACITY.sub("", part.strip())).strip()
        core = _SUFFIX.sub("", core).strip()
        if len(core) >= 2:
            candidates.append(core)
    for phrase in dict.fromkeys(candidates):
        hits = mapper.map_product(phrase)
        if hits:
            return hits[0].link_id
    return None


@lru_cache(maxsize=256)
def _field(header: str) -> tuple[str | None, str]:
    """Canonical field of a header and the unit in its brackets (投资金额（亿元） → amount, 亿元)."""
    unit = "".join(re.findall(r"[（(](.*?)[)）]", header))
    return _HEADER.get(re.sub(r"[（(].*?[)）]", "", header).strip().lower()), unit


@lru_cache(maxsize=65536)
def _clean_cached(text: str) -> str:
    return clean_text(text)


def _clean(text: str) -> str:
    """:func:`clean_text` of a cell; ASCII cells (URLs, numbers, dates) only need stripping, and repeated cells
    (firm names, products, provinces) are cleaned once."""
    if text.isascii():
        return text.strip()
    return _clean_cached(text) if len(text) <= 200 else clean_text(text)


_AMOUNT = re.compile(r"^([0-9][0-9,]*(?:\.[0-9]+)?)\s*(亿|万|千|百)?\s*(元|人民币|元人民币)?$")
_FACTOR = {"亿": 10_000.0, "万": 1.0, "千": 0.1, "百": 0.01}


def _amount(text: str, header_unit: str) -> float | None:
    """An amount in 万元: "35" (unit from the header, 万元 unless it says 亿元 / 元), "5000万元", "10亿", "1,200"."""
    m = _AMOUNT.match(text.strip())
    if m is None:
        amount, currency = _parse_money(text, header_unit)  # other spellings: the importer's parser
        return amount if currency is None else None  # a foreign-currency amount is not counted as 万元
    num = float(m.group(1).replace(",", ""))
    if m.group(2):
        return round(num * _FACTOR[m.group(2)], 6)
    if m.group(3):
        return round(num * 0.0001, 6)
    if "亿" in header_unit:
        return round(num * 10_000.0, 6)
    if "万" not in header_unit and "元" in header_unit:
        return round(num * 0.0001, 6)
    return num


@lru_cache(maxsize=4096)
def _province(name: str) -> str | None:
    return province_short(name)


@lru_cache(maxsize=65536)
def _norm_name(name: str) -> str:
    return normalize_company_name(name)


@lru_cache(maxsize=8192)
def _day(value: Any) -> date | None:
    iso = _parse_date(value)
    if iso:
        return date.fromisoformat(iso)
    m = _MONTH.match(str(value))
    if m and 1 <= int(m.group(2)) <= 12:
        return date(int(m.group(1)), int(m.group(2)), 1)
    return None


def _fields(row: int, cells: list[tuple[Any, Any]]) -> tuple[dict[str, Any] | None, list[RowIssue], dict[str, str]]:
    """One record's event fields (:class:`SignalEvent`'s, checked as strictly as the model checks them) or its
    issues, and the raw identifying cells."""
    values: dict[str, str] = {}
    units: dict[str, str] = {}
    for col, value in cells:
        field, unit = _field(str(col.header))
        if field is None or field in values or value is None:
            continue
        if isinstance(value, date):
            text = value.isoformat()
        else:
            text = _clean(value if isinstance(value, str) else str(value))
        if text:
            values[field], units[field] = text, unit
    issues: list[RowIssue] = []
    if not values.get("firm"):
        issues.append(RowIssue(row, "企业名称", "empty; every event names its firm"))
    day = _day(values.get("date", ""))
    if day is None:
        reason = "missing or not a date (2023-05-12, 2023年5月, 20230512)"
        issues.append(RowIssue(row, "日期", reason, values.get("date", "")))
    amount = None
    if values.get("amount"):
        amount = _amount(values["amount"], units.get("amount") or "万元")
        if amount is None or amount < 0:
            reason = "not an amount in RMB (e.g. 5000万元, 10亿元; other currencies are not accepted)"
            issues.append(RowIssue(row, "金额", reason, values["amount"]))
    confidence = 0.8
    if values.get("confidence"):
        try:
            confidence = float(values["confidence"])
        except ValueError:
            issues.append(RowIssue(row, "置信度", "not a number in [0, 1]", values["confidence"]))
    if not values.get("url") and not values.get("document"):
        issues.append(RowIssue(row, "来源", "missing; every event needs a source URL or document"))
    kind = KIND_ALIASES.get(values.get("kind", ""), values.get("kind", ""))
    if kind not in KINDS:
        issues.append(RowIssue(row, "类型", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", kind))
    if not 0.0 <= confidence <= 1.0:
        issues.append(RowIssue(row, "置信度", "not a number in [0, 1]", values["confidence"]))
    if len(values.get("firm", "")) > 400:
        issues.append(RowIssue(row, "企业名称", "longer than 400 characters", values["firm"][:80]))
    if issues:
        return None, issues, values
    fields = {
        "firm": values["firm"],
        "group": values.get("group"),
        "day": day,
        "kind": kind,
        "product": values.get("product", ""),
        "link_id": values.get("link_id"),
        "province": _province(values["province"]) if values.get("province") else None,
        "region": values.get("region", ""),
        "amount": amount,
        "confidence": confidence,
        "sources": [{"url": values.get("url", ""), "document": values.get("document", ""),
                     "title": values.get("title", "")}],
    }  # fmt: skip
    return fields, [], values


def _event(row: int, cells: list[tuple[Any, Any]]) -> tuple[SignalEvent | None, list[RowIssue], dict[str, str]]:
    fields, issues, values = _fields(row, cells)
    if fields is None:
        return None, issues, values
    try:
        sources = [SignalSource(**s) for s in fields["sources"]]
        event = SignalEvent(**{**fields, "sources": sources})
    except ValidationError as exc:
        err = exc.errors()[0]
        names = {"kind": "类型", "confidence": "置信度", "firm": "企业名称", "amount": "金额"}
        field = names.get(str(err["loc"][0]) if err["loc"] else "", str(err["loc"][0]) if err["loc"] else "-")
        return None, [RowIssue(row, field, err["msg"], str(err.get("input", ""))[:80])], values
    return event, [], values


def _read(path: Path, parse: Any) -> tuple[list[tuple[Any, dict[str, str]]], ImportReport]:
    report = ImportReport(path=str(path), format="")
    source = _open(path, report)
    out: list[tuple[Any, dict[str, str]]] = []
    for rec in source.records:
        report.rows += 1
        if rec.cells is None:
            report.rejects.append(rec.issue or RowIssue(rec.row, "-", "unreadable row"))
            continue
        event, issues, values = parse(rec.row, rec.cells)
        if event is None:
            report.rejects.extend(issues)
        else:
            out.append((event, values))
    return out, report


def read_signals(path: str | Path) -> tuple[list[tuple[SignalEvent, dict[str, str]]], ImportReport]:
    """Parse a signals file: events with their raw identifying cells, and a report of rejected rows."""
    return _read(Path(path), _event)


def _resolver(store: Store, tenant: str | None) -> dict[str, tuple[str, str | None]]:
    """Keys (credit code, stock code, normalised name) → (enterprise id, parent group) of visible firms."""
    e = EnterpriseRow
    cond = e.tenant.is_(None) if tenant is None else (e.tenant.is_(None) | (e.tenant == tenant))
    keys: dict[str, tuple[str, str | None]] = {}
    with store.transaction(write=False) as session:
        rows = session.execute(
            select(e.id, e.tenant, e.credit_code, e.stock_code, e.normalized_name).where(cond).order_by(e.tenant)
        )
        for eid, _t, credit, stock, norm in rows:  # NULL (shared) sorts first: own rows override
            for k in (f"c:{credit}" if credit else "", f"s:{stock}" if stock else "", f"n:{norm}"):
                if k:
                    keys[k] = (eid, None)
    return keys


def import_signals(
    store: Store,
    path: str | Path,
    tenant: str | None = None,
    *,
    mapper: LinkMapper | None = None,
    atomic: bool = True,
) -> ImportReport:
    """Read, resolve, map and store a signals file (see the module docstring); the report counts
    ``inserted`` events, ``updated`` (merged into an existing event with a new source) and ``unchanged``.

    Rows go to the store as plain rows (:func:`~matcher.store.signals.upsert_signal_rows`), checked exactly as
    :class:`SignalEvent` would check them, so no model is built per event."""
    check_tenant(tenant)
    with paused_gc():
        return _import_rows(store, Path(path), tenant, mapper, atomic)


def _import_rows(
    store: Store, path: Path, tenant: str | None, mapper: LinkMapper | None, atomic: bool
) -> ImportReport:
    t0 = time.perf_counter()
    rows, report = _read(path, _fields)
    report.tenant, report.atomic = tenant, atomic
    report.timings["read"] = time.perf_counter() - t0
    if report.rejects and atomic:
        report.seconds = time.perf_counter() - t0
        logger.warning("signals import %s: %d rows rejected, nothing written", path, report.rejected)
        return report
    keys = _resolver(store, tenant)
    link_cache: dict[str, str | None] = {}
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for fields, values in rows:
        hit = keys.get(f"c:{values['credit_code']}") if values.get("credit_code") else None
        if hit is None and values.get("stock_code"):
            hit = keys.get(f"s:{values['stock_code']}")
        hit = hit or keys.get(f"n:{_norm_name(fields['firm'])}")
        link_id, product = fields["link_id"], fields["product"]
        if link_id is None and product and mapper is not None:
            if product not in link_cache:
                link_cache[product] = map_product_link(mapper, product)
            link_id = link_cache[product]
        group = fields["group"]
        events.append({
            "id": "", "tenant": tenant, "enterprise_id": hit[0] if hit else None, "firm": fields["firm"],
            "group_name": group, "day": fields["day"], "kind": fields["kind"], "product": product,
            "link_id": link_id, "province": fields["province"], "region": fields["region"],
            "amount": fields["amount"], "confidence": fields["confidence"], "origin": "import",
            "sources": fields["sources"], "updated_at": now,
        })  # fmt: skip
    rows.clear()  # the parsed cells are no longer needed: keep the peak memory down
    report.timings["resolve"] = time.perf_counter() - t0 - report.timings["read"]
    summary = upsert_signal_rows(store, events, tenant, now)
    report.inserted, report.updated, report.unchanged = summary.inserted, summary.merged, summary.unchanged
    report.committed = True
    report.seconds = time.perf_counter() - t0
    report.timings["write"] = report.seconds - report.timings["read"] - report.timings["resolve"]
    logger.info("signals import: %s", report.summary())
    return report
