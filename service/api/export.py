"""Shortlist exports for leaders: XLSX and CSV with Chinese headers, safe to open in a spreadsheet.

Any text cell that a spreadsheet could read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is written with a leading apostrophe (OWASP "CSV injection"), so an enterprise named
``=HYPERLINK(…)`` shows as text and never runs. CSV is UTF-8 with a BOM so Excel opens the Chinese correctly.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

__all__ = ["HEADERS", "ShortlistRow", "escape_cell", "to_csv", "to_xlsx"]

HEADERS: tuple[str, ...] = (
    "排名",
    "企业名称",
    "省份",
    "城市",
    "产业链",
    "填补环节",
    "缺口类型",
    "匹配产品",
    "证据强度",
    "得分",
    "推荐理由",
    "线索状态",
    "备注",
    "企业编号",
    "股票代码",
    "上市状态",
    "所属集团",
    "数据性质",
    "数据来源",
    "数据日期",
)
"""Column headers, in order (provenance last: where each firm's facts come from and how current they are)."""

_STRENGTH = {"strong": "强", "medium": "中", "weak": "弱"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_WIDTHS = (6, 34, 8, 10, 14, 14, 8, 30, 8, 7, 60, 8, 24, 24, 10, 8, 20, 10, 24, 11)
_LISTING = {"listed": "上市", "delisted": "已退市"}
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


@dataclass
class ShortlistRow:
    """One enterprise on a shortlist."""

    rank: int | None
    name: str
    province: str = ""
    city: str = ""
    chain: str = ""
    link: str = ""
    gap_type: str = ""
    products: list[str] = field(default_factory=list)
    evidence_strength: str = ""  # strong / medium / weak (or already 强/中/弱)
    score: float | None = None
    reasons: list[str] = field(default_factory=list)
    status: str = "未跟进"
    note: str = ""
    enterprise_id: str = ""
    stock_code: str = ""
    listing_status: str = ""  # listed / delisted (or already 上市/已退市)
    group: str = ""
    fictional: bool = False
    sources: list[str] = field(default_factory=list)
    as_of: str = ""

    def cells(self, escape: bool = True) -> list[str | int | float | None]:
        """The row's values in :data:`HEADERS` order; ``escape``: text that could start a formula gets a leading
        ``'`` (for CSV; an XLSX cell is typed as text instead, so no visible quote)."""
        escape_cell = _escape if escape else _text
        return [
            self.rank,
            escape_cell(self.name),
            escape_cell(self.province),
            escape_cell(self.city),
            escape_cell(self.chain),
            escape_cell(self.link),
            escape_cell(self.gap_type),
            escape_cell("、".join(self.products)),
            _STRENGTH.get(self.evidence_strength, escape_cell(self.evidence_strength)),
            None if self.score is None else round(float(self.score), 4),
            escape_cell("；".join(self.reasons)),
            escape_cell(self.status),
            escape_cell(self.note),
            escape_cell(self.enterprise_id),
            escape_cell(self.stock_code),
            _LISTING.get(self.listing_status, escape_cell(self.listing_status)),
            escape_cell(self.group),
            "虚构示例（非真实企业）" if self.fictional else "",
            escape_cell("、".join(self.sources)),
            escape_cell(self.as_of),
        ]


def _text(value: str | None) -> str:
    return "" if value is None else str(value)


def escape_cell(value: str | None) -> str:
    """Text a spreadsheet will show as text: a leading ``'`` when it could start a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


_escape = escape_cell


def to_csv(rows: list[ShortlistRow]) -> bytes:
    """The shortlist as CSV (UTF-8 with BOM, CRLF line ends, every field quoted when needed)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row.cells()])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: list[ShortlistRow], title: str = "招商清单") -> bytes:
    """The shortlist as an XLSX workbook: one sheet named after ``title``, bold frozen header, wrapped reasons."""
    wb = Workbook()
    ws = wb.active
    ws.title = (_SHEET_BAD.sub("_", title).strip("'") or "招商清单")[:31]
    ws.append(list(HEADERS))
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = header_fill
        cell.alignment = Alignment(horizontal="center", vertical="center")
    for row in rows:
        ws.append(row.cells(escape=False))
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # a text cell: never a formula, whatever the text, and no visible quote
    wrap = Alignment(wrap_text=True, vertical="top")
    for col, width in enumerate(_WIDTHS, start=1):
        letter = ws.cell(row=1, column=col).column_letter
        ws.column_dimensions[letter].width = width
        if HEADERS[col - 1] in ("推荐理由", "匹配产品", "备注"):
            for cell in ws[letter][1:]:
                cell.alignment = wrap
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
