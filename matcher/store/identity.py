"""Enterprise identity in the store: when two profiles are the same firm, and the canonical JSON + content hash
that tells a changed profile from an unchanged one."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from matcher.records import Enterprise
from matcher.text import normalize_company_name, normalize_text

__all__ = ["branch_of", "content_hash", "former_keys", "merge_profiles", "same_firm", "source_rank"]

class _RawJSON(str):
    """Profile JSON serialised once (for its hash) and handed to the JSON column as is."""


def _json_serializer(value: Any) -> str:
    if isinstance(value, _RawJSON):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _json_deserializer(text: str | bytes) -> Any:
    """A stored profile's JSON: orjson (twice as fast as :func:`json.loads`), json where orjson refuses a
    value json accepts (integers beyond 64 bits, NaN)."""
    try:
        return _ORJSON_LOADS(text)
    except ValueError:
        return json.loads(text)


try:
    from orjson import loads as _ORJSON_LOADS
except ImportError:  # pragma: no cover - orjson is a dependency; json alone still reads every profile
    _ORJSON_LOADS = json.loads


def _canonical_json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(profile: dict[str, Any]) -> str:
    """SHA-256 of a profile's canonical JSON without ``updated_at`` (what change detection compares)."""
    body = {k: v for k, v in profile.items() if k != "updated_at"}
    return hashlib.sha256(_canonical_json(body).encode("utf-8")).hexdigest()


def _profile_json(e: Enterprise, updated_at: datetime | None = None) -> tuple[_RawJSON, str]:
    """(stored JSON with ``updated_at``, content hash) of a profile, serialising it once.

    ``updated_at`` in the JSON is the date of the profile's facts as its source gave them (the demo's authored
    date, the day an import read them); the row's own write time is the table's ``updated_at`` column."""
    updated_at = e.updated_at if updated_at is None else updated_at
    body = _canonical_json(e.model_dump(mode="json", exclude={"updated_at"}))
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return _RawJSON(f'{{"updated_at":{json.dumps(updated_at.isoformat())},{body[1:]}'), digest


_BRANCH = re.compile(r"^.*?公司(.+分公司)$")


def branch_of(name: str) -> str:
    """The branch part of ``X公司Y分公司`` (``Y分公司``), else ``""``: branches are separate firms for dedupe even
    though :func:`matcher.text.normalize_company_name` maps them onto their parent for matching."""
    m = _BRANCH.match(normalize_text(name))
    return m.group(1) if m else ""


def _compatible(
    code_a: str | None,
    stock_a: str | None,
    branch_a: str,
    code_b: str | None,
    stock_b: str | None,
    branch_b: str,
) -> bool:
    """Same name + province may be the same firm unless a credit code, stock code or branch says otherwise."""
    return (
        branch_a == branch_b
        and not (code_a and code_b and code_a != code_b)
        and not (stock_a and stock_b and stock_a != stock_b)
    )


def same_firm(a: Enterprise, b: Enterprise) -> bool:
    """The store's identity rule for two profiles: same credit code, else same normalised name and province with
    no conflicting credit code, stock code or branch."""
    if a.credit_code and b.credit_code:
        return a.credit_code == b.credit_code
    na = a.normalized_name or normalize_company_name(a.name)
    nb = b.normalized_name or normalize_company_name(b.name)
    return (
        na == nb
        and a.province == b.province
        and _compatible(
            a.credit_code, a.stock_code, branch_of(a.name), b.credit_code, b.stock_code, branch_of(b.name)
        )
    )


def former_keys(e: Enterprise) -> list[str]:
    """Normalised former names and short names of a profile: a stored record under one of them (same province,
    no conflicting code or branch) is the same firm (identity by 曾用名)."""
    out = [normalize_company_name(a) for a in e.aliases]
    return [a for a in dict.fromkeys(out) if len(a) >= 2 and a != e.normalized_name]


def _aliases_key(e: Enterprise) -> str:
    keys: list[str] = []
    for a in e.aliases:
        for k in (normalize_text(a), normalize_company_name(a)):
            k = k.replace("|", "")
            if k and k not in keys:
                keys.append(k)
    return "|" + "|".join(keys) + "|" if keys else ""


# --- merging two profiles of one firm ------------------------------------------------------------------------------
#: How much a source is trusted for a firm's facts, highest last: an authored example never outranks data.
_SOURCE_RANKS: tuple[tuple[str, int], ...] = (
    ("authored:fictional", 0),
    ("authored:", 1),  # the embedded demo: public facts written by the project, shares approximate
    ("ashare:", 3),  # listed-company disclosures: segments with revenue shares, employees, industry
)
DEFAULT_RANK = 2  # a CRM upsert or a file import: the tenant's own data

#: Fields merged one by one: an empty value never replaces a known one, a lower-ranked source never replaces a
#: higher-ranked one.
MERGED_FIELDS: tuple[str, ...] = (
    "province", "city", "credit_code", "stock_code", "sw_industry", "gbt_codes", "products", "scope",
    "registered_capital", "employees", "revenue", "parent_group",
)  # fmt: skip


def source_rank(source: str) -> int:
    """Trust of a profile's ``source`` (see :data:`_SOURCE_RANKS`)."""
    for prefix, rank in _SOURCE_RANKS:
        if source.startswith(prefix):
            return rank
    return DEFAULT_RANK


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _provenance(rec: Enterprise, f: str) -> dict[str, Any]:
    """Where ``rec``'s value of ``f`` came from: its own record of it (a merged profile), else its source."""
    known = (rec.extra.get("provenance") or {}).get(f)
    if known:
        return {k: v for k, v in known.items() if k != "other"}
    return {"source": rec.source, "as_of": rec.updated_at.date().isoformat()}


def merge_profiles(old: Enterprise, new: Enterprise) -> tuple[Enterprise, list[str]]:
    """One profile of a firm known from two sources, and the fields whose values disagreed (the loser's value is
    kept in ``extra.provenance``).

    Per field: the value of the higher-ranked source (:func:`source_rank`), else the newer one; an empty value never
    replaces a known one. Names and aliases are united (the other name stays searchable), tags united, links follow
    the products they were mapped from. ``extra.provenance`` records, per field, the source and as-of date of the
    value kept; ``extra.sources`` every source that described the firm.
    """
    if old.fictional != new.fictional:  # an authored example and a real firm never mix their facts
        return (old, []) if new.fictional else (new.model_copy(update={"id": old.id, "tenant": old.tenant}), [])
    if old.source == new.source:  # an update from the same source: its values win, but never an empty over a known
        fill = {f: getattr(old, f) for f in MERGED_FIELDS if _empty(getattr(new, f)) and not _empty(getattr(old, f))}
        if "products" in fill and not new.links:
            fill["links"] = old.links
        extra = {**old.extra, **new.extra}  # keys only another source knew (a demo note, provenance) stay
        aliases = [n for n in dict.fromkeys([*new.aliases, *old.aliases, old.name]) if n and n != new.name]
        tags = list(dict.fromkeys([*new.tags, *old.tags]))
        return new.model_copy(update={**fill, "id": old.id, "tenant": old.tenant, "extra": extra, "aliases": aliases,
                                      "tags": tags}), []  # fmt: skip
    r_old, r_new = source_rank(old.source), source_rank(new.source)
    new_wins = r_new >= r_old
    hi, lo = (new, old) if new_wins else (old, new)
    prov: dict[str, Any] = {}
    conflicts: list[str] = []
    update: dict[str, Any] = {}
    for f in MERGED_FIELDS:
        a, b = getattr(hi, f), getattr(lo, f)
        if _empty(a) and not _empty(b):
            update[f] = b
            prov[f] = _provenance(lo, f)
        else:
            update[f] = a
            if not _empty(a):
                prov[f] = _provenance(hi, f)
            if not _empty(b) and a != b and not _empty(a):
                conflicts.append(f)
                other = _provenance(lo, f)
                prov[f] = {**prov[f], "other": {"source": other["source"],
                                                "value": b if f != "products" else [p.name for p in b]}}  # fmt: skip
    products_from = hi if not _empty(hi.products) else lo
    names = [hi.name, *hi.aliases, lo.name, *lo.aliases]
    aliases = [n for n in dict.fromkeys(names) if n and n != hi.name]
    sources = sorted({*(old.extra.get("sources") or [old.source]), new.source} - {""})
    extra = {**lo.extra, **hi.extra, "provenance": prov, "sources": sources}
    merged = hi.model_copy(
        update={
            **update, "id": old.id, "name": hi.name, "aliases": aliases, "tags": list(dict.fromkeys([*hi.tags, *lo.tags])),
            "links": products_from.links or hi.links or lo.links, "extra": extra, "source": hi.source,
            "normalized_name": hi.normalized_name or lo.normalized_name, "tenant": old.tenant,
        }
    )  # fmt: skip
    return merged, conflicts
