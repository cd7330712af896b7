"""Build enterprise profiles for the A-share listed companies in ``../shared/data`` (evaluation corpus).

Joins ChainKnowledgeGraph (names, products with revenue weights, Shenwan industry) with the wp19991_gp company
location table (province, city, employees) on the 6-digit stock code. The files are read in place, never copied.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections import defaultdict
from pathlib import Path

from matcher.errors import ImportFileError
from matcher.records import Enterprise, Product
from matcher.text import clean_text, normalize_company_name

logger = logging.getLogger(__name__)

KG = "ChainKnowledgeGraph"
LOCATION = "wp19991_gp/stock_company_location.csv"
_GENERIC = {"其他业务", "其他", "其他(补充)", "补充", "其他业务收入", "其它业务"}


def ashare_id(code: str) -> str:
    """Enterprise id of an A-share company from its 6-digit code."""
    return f"ashare-{code[:6]}"


_SHORT_NAME_NOISE = re.compile(r"^(?:退市|S\*ST|\*ST|ST|S)|-(?:U|W|UW)$")


def _bare(short: str) -> str:
    """A short name without risk-warning / reform prefixes and board suffixes (*ST海润 → 海润, 奥比中光-UW → 奥比中光)."""
    return _SHORT_NAME_NOISE.sub("", short.replace(" ", ""))


def listing_status(company: dict, location: dict) -> str:
    """``delisted`` when the short name says 退市 or the listing table still holds the code but no name and no
    listing date (its delisted rows, e.g. 山东铝业 600205, 包头铝业 600472, 海润光伏 600401); else ``listed``."""
    if str(company.get("name", "")).startswith("退市"):
        return "delisted"
    if location and not location.get("name") and not location.get("list_date"):
        return "delisted"
    return "listed"


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise ImportFileError(f"{path}: file not found (pass --data-dir pointing at ../shared/data)")
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def load_ashare_corpus(data_dir: Path) -> list[Enterprise]:
    """Profiles of every company in ``company.json`` (deduplicated by code, corrupted duplicates dropped).

    Args:
        data_dir: the ``shared/data`` directory.

    Returns:
        Enterprises with products (revenue shares), Shenwan level-3 industry, province/city and employees.
    """
    data_dir = Path(data_dir)
    companies = _jsonl(data_dir / KG / "company.json")
    products: dict[str, list[Product]] = defaultdict(list)
    for row in _jsonl(data_dir / KG / "company_product.jsonl"):
        name = clean_text(row.get("product_name"))
        if not name:
            continue
        w = row.get("weight")
        share = min(max(float(w), 0.0), 1.0) if w is not None else None
        products[row["company_code"][:6]].append(Product(name=name, share=share))
    industry = {r["company_code"][:6]: r["industry_name"] for r in _jsonl(data_dir / KG / "company_industry.json")}
    location: dict[str, dict] = {}
    loc_path = data_dir / LOCATION
    if loc_path.exists():
        with loc_path.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                location[r["ts_code"][:6]] = r
    else:
        logger.warning("%s not found: profiles will have no province/city", loc_path)

    by_code: dict[str, list[dict]] = defaultdict(list)
    for c in companies:
        by_code[c["code"][:6]].append(c)
    out: list[Enterprise] = []
    dropped = 0
    for code, rows in by_code.items():
        loc = location.get(code, {})
        row = rows[0]
        if len(rows) > 1:
            # corrupted duplicates (e.g. ten rows under 龙软科技/688078): keep the row matching the location table
            match = [r for r in rows if loc and normalize_company_name(r["name"]) == normalize_company_name(loc.get("name", ""))]
            row = match[0] if match else rows[0]
            dropped += len(rows) - 1
        prods = [p for p in products.get(code, []) if p.name not in _GENERIC] or products.get(code, [])
        prods = sorted(prods, key=lambda p: -(p.share or 0.0))
        employees = loc.get("employees")
        status = listing_status(row, loc)
        tags = ["上市公司"] if status != "delisted" else ["已退市"]
        legal = clean_text(row.get("fullname") or row["name"])
        old_short, current = clean_text(row["name"]), clean_text(loc.get("name") or "")
        a, b = _bare(current), _bare(old_short)
        renamed = bool(a) and a not in b and b not in a  # *ST富吉 is 富吉瑞 under a risk warning, not a rename
        extra = {"industry_tushare": loc.get("industry_tushare") or None, "list_date": row.get("time"),
                 "listing_status": status}  # fmt: skip
        if renamed:  # a renamed shell (天业通联 → 晶澳科技): the current short name is its identity, the old ones stay
            extra.update(former_names=[legal, old_short], name_basis="current short name; legal name not in the data")
        out.append(
            Enterprise(
                id=ashare_id(code),
                name=a if renamed else legal,
                normalized_name=normalize_company_name(a if renamed else legal),
                aliases=[n for n in dict.fromkeys([current, legal, old_short]) if n != a] if renamed else [old_short],
                province=(loc.get("province") or None),
                city=(loc.get("city") or None),
                sw_industry=industry.get(code),
                products=prods,
                employees=int(float(employees)) if employees not in (None, "", "nan") else None,
                stock_code=code,
                tags=tags,
                source="ashare:ChainKnowledgeGraph+wp19991_gp",
                extra=extra,
            )
        )
    logger.info("A-share corpus: %d companies (%d corrupted duplicate rows dropped)", len(out), dropped)
    return out
