"""Name search over the store in bounded work at any tenant size (:meth:`matcher.store.Store.find_enterprises`).

Exact matches first (name, normalised name, alias / 曾用名, id, credit code, stock code), then substrings of the
name, normalised name or aliases; shorter normalised names first, then by id. A tenant sees its own rows and the
shared rows it has no version of. Each partition (the tenant's rows, the shared rows) is searched on its own:

1. the name index (:mod:`matcher.store.name_index`) lists the rows that can hold the term, shortest first (ties:
   by id on PostgreSQL, by id hash on SQLite) — a frequent term such as 公司 among its first entries, a rare one
   by the index — and they are checked with the exact conditions until enough match;
2. only a term with more than :data:`CANDIDATE_CAP` candidates that do not match (index false positives) falls
   back to an ordered scan (index on ``(tenant, length(normalized_name), id)``), which the statement timeout
   bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from matcher.errors import InvalidRequestError
from matcher.records import Enterprise
from matcher.store.database import _chunks, _like_escape
from matcher.store.db_models import EnterpriseRow
from matcher.store.name_index import name_candidates
from matcher.text import clean_text, normalize_company_name, normalize_text

__all__ = ["CANDIDATE_CAP", "find_enterprises"]

CANDIDATE_CAP = 20_000
"""Name-index candidates checked at most before an ordered scan takes over."""

_e = EnterpriseRow
_COLS = (_e.id, _e.profile, _e.normalized_name, _e.credit_code, _e.province, _e.stock_code)
_ORDER = (func.length(_e.normalized_name), _e.id)

Search = Callable[[Session, "str | None", int], list[Any]]


def _partition(tenant: str | None) -> ColumnElement[bool]:
    return _e.tenant.is_(None) if tenant is None else _e.tenant == tenant


def _key(row: Any) -> tuple[int, str]:
    return len(row.normalized_name or ""), row.id


def _by_index(
    session: Session, tenant: str | None, cond: ColumnElement[bool], terms: Sequence[tuple[str, str]], limit: int
) -> list[Any]:
    """The first ``limit`` rows of the partition matching ``cond``: name-index candidates of ``terms``, shortest
    first, checked by ``cond`` until enough match."""
    out: list[Any] = []
    read = 0
    for page in name_candidates(session, tenant, terms, page=max(20, 4 * limit)):  # shortest first
        for chunk in _chunks([i for i, _ in page], 100):
            out += sorted(session.execute(select(*_COLS).where(_e.id.in_(chunk), cond)).all(), key=_key)
            if len(out) >= limit:
                return out[:limit]
        read += len(page)
        if read >= CANDIDATE_CAP:  # many candidates the exact conditions reject: scan instead
            stmt = select(*_COLS).where(_partition(tenant), cond).order_by(*_ORDER).limit(limit)
            return session.execute(stmt).all()
    return out


def _by_equality(session: Session, tenant: str | None, eq: list[ColumnElement[bool]], limit: int) -> list[Any]:
    """Rows of the partition equal to the query on an indexed column (the partition test uses no index: the
    tenant index is unselective and would be preferred over the key's)."""
    part = func.coalesce(_e.tenant, "") == (tenant or "")
    return session.execute(select(*_COLS).where(or_(*eq), part).order_by(*_ORDER).limit(limit)).all()


def _drop_shadowed(session: Session, shared: list[Any], tenant: str) -> list[Any]:
    """``shared`` rows without those the tenant has its own version of (same credit code, or same normalised
    name and province where the codes do not disagree)."""
    if not shared:
        return shared
    codes = {r.credit_code for r in shared if r.credit_code}
    names = {r.normalized_name for r in shared}
    own = session.execute(  # by the key indexes, not the (unselective) tenant index
        select(_e.normalized_name, _e.credit_code, _e.province, _e.stock_code).where(
            or_(_e.credit_code.in_(codes), _e.normalized_name.in_(names)), func.coalesce(_e.tenant, "") == tenant
        )
    ).all()
    if not own:
        return shared
    own_codes = {p.credit_code for p in own if p.credit_code}
    by_name: dict[str, list[Any]] = {}
    for p in own:
        by_name.setdefault(p.normalized_name, []).append(p)

    def hidden(r: Any) -> bool:
        if r.credit_code and r.credit_code in own_codes:
            return True
        return any(
            p.province == r.province
            and (p.credit_code is None or r.credit_code is None)
            and (p.stock_code is None or r.stock_code is None or p.stock_code == r.stock_code)
            for p in by_name.get(r.normalized_name, ())
        )

    return [r for r in shared if not hidden(r)]


def _visible(session: Session, search: Search, tenant: str | None, limit: int) -> list[Any]:
    """The first ``limit`` rows ``search`` finds that ``tenant`` sees: its own, and shared rows it does not
    shadow (only the few shared candidates are checked for a tenant version)."""
    rows = search(session, tenant, limit) if tenant is not None else []
    want = limit
    while True:
        shared = search(session, None, want)
        kept = shared if tenant is None else _drop_shadowed(session, shared, tenant)
        if len(kept) >= limit or len(shared) < want:
            break
        want *= 4
    return sorted([*rows, *kept], key=_key)[:limit]


def find_enterprises(session: Session, query: str, tenant: str | None, limit: int) -> list[Enterprise]:
    """Enterprises by name, alias, normalised name, id, credit code or stock code (see the module docstring).

    Raises:
        InvalidRequestError: ``query`` holds a NUL or a lone surrogate (the same on SQLite and PostgreSQL).
    """
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in query):  # never stored; PostgreSQL cannot take them
        raise InvalidRequestError("q", query[:40], "contains a NUL character or a lone surrogate")
    raw = clean_text(query)
    if not raw or limit <= 0:
        return []
    norm = normalize_company_name(raw) or normalize_text(raw)
    key = normalize_text(raw)
    eq = [_e.name == raw, _e.normalized_name == norm, _e.normalized_name == key, _e.id == raw]
    if len(key) == 18:
        eq.append(_e.credit_code == key.upper())
    if key.isalnum() and len(key) <= 12:
        eq.append(_e.stock_code == raw)
    alias = _e.aliases.like(f"%|{_like_escape(key)}|%", escape="\\")
    substring = or_(
        _e.normalized_name.like(f"%{_like_escape(norm)}%", escape="\\"),
        _e.name.like(f"%{_like_escape(raw)}%", escape="\\"),
        _e.aliases.like(f"%{_like_escape(key)}%", escape="\\"),
    )
    terms = [("normalized_name", norm), ("name", raw), ("aliases", key)]

    def exact(s: Session, t: str | None, n: int) -> list[Any]:
        hits = {r.id: r for r in (*_by_equality(s, t, eq, n), *_by_index(s, t, alias, [("alias", key)], n))}
        return sorted(hits.values(), key=_key)[:n]

    def contains(s: Session, t: str | None, n: int) -> list[Any]:
        return _by_index(s, t, substring, terms, n)

    out: list[Enterprise] = []
    seen: set[str] = set()
    for search in (exact, contains):  # exact matches first, then substrings
        for r in _visible(session, search, tenant, limit + len(seen)):
            if r.id not in seen and len(out) < limit:
                seen.add(r.id)
                out.append(Enterprise.model_validate(r.profile))
        if len(out) >= limit:
            break
    return out
