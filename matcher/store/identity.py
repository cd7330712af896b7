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

__all__ = ["content_hash", "branch_of", "same_firm"]

class _RawJSON(str):
    """Profile JSON serialised once (for its hash) and handed to the JSON column as is."""


def _json_serializer(value: Any) -> str:
    if isinstance(value, _RawJSON):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _canonical_json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(profile: dict[str, Any]) -> str:
    """SHA-256 of a profile's canonical JSON without ``updated_at`` (what change detection compares)."""
    body = {k: v for k, v in profile.items() if k != "updated_at"}
    return hashlib.sha256(_canonical_json(body).encode("utf-8")).hexdigest()


def _profile_json(e: Enterprise, updated_at: datetime) -> tuple[_RawJSON, str]:
    """(stored JSON with ``updated_at``, content hash) of a profile, serialising it once."""
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


def _aliases_key(e: Enterprise) -> str:
    keys: list[str] = []
    for a in e.aliases:
        for k in (normalize_text(a), normalize_company_name(a)):
            k = k.replace("|", "")
            if k and k not in keys:
                keys.append(k)
    return "|" + "|".join(keys) + "|" if keys else ""
