"""The passage embedded for an enterprise: what it makes first, then where it sits, then its scope.

Layout (each part only when known), capped at :data:`MAX_CHARS` characters, well inside e5's 512 tokens
(Chinese is about one token per 1–1.5 characters)::

    嘉润资源。主营: 电解铝液 50%、重熔用铝锭 40%。环节: 电解铝。行业: 工业金属; 铝冶炼。
    经营范围: 电解铝液、重熔用铝锭的研发…。新疆昌吉回族自治州

- the short name (the first short alias such as a 简称, else the name without legal-form suffixes);
- products by revenue share, highest first, with the share as a percentage (products without a share follow in
  their given order);
- the names of the catalogue links the enterprise is mapped to;
- the Shenwan industry and the GB/T 4754 industry names of its codes;
- the business scope, truncated to what is left of the budget;
- province and city.

Which part comes first matters: if anything is cut it is the tail of the scope, never the products.
"""

from __future__ import annotations

from matcher.knowledge.catalogue import Catalogue, default_catalogue, load_gbt_codes
from matcher.records import Enterprise
from matcher.text import clean_text, normalize_company_name

MAX_CHARS = 400
MAX_PRODUCTS = 8
MAX_LINKS = 5
MIN_SCOPE_CHARS = 20


def short_name(e: Enterprise) -> str:
    """A 简称 if the profile has a short alias, else the name without its legal-form suffix."""
    for alias in e.aliases:
        a = clean_text(alias)
        if 2 <= len(a) <= 8:
            return a
    return normalize_company_name(e.name) or clean_text(e.name)


def _products(e: Enterprise) -> str:
    ranked = sorted(enumerate(e.products), key=lambda ip: (ip[1].share is None, -(ip[1].share or 0.0), ip[0]))
    parts: list[str] = []
    seen: set[str] = set()
    for _, p in ranked:
        name = clean_text(p.name)
        if not name or name in seen or name in ("其他", "其他业务", "其他(补充)"):
            continue
        seen.add(name)
        parts.append(f"{name} {round(p.share * 100)}%" if p.share else name)
        if len(parts) >= MAX_PRODUCTS:
            break
    return "、".join(parts)


def _links(e: Enterprise, catalogue: Catalogue | None) -> str:
    names: list[str] = []
    for m in sorted(e.links, key=lambda m: -m.score)[: MAX_LINKS * 2]:
        link = catalogue.links.get(m.link_id) if catalogue is not None else None
        name = link.name if link is not None else ""
        if name and name not in names:
            names.append(name)
        if len(names) >= MAX_LINKS:
            break
    return "、".join(names)


def _industry(e: Enterprise) -> str:
    parts: list[str] = []
    if e.sw_industry:
        parts.append(clean_text(e.sw_industry))
    if e.gbt_codes:
        codes = load_gbt_codes()
        for code in e.gbt_codes[:3]:
            name = codes.get(code)
            if name and name not in parts:
                parts.append(name)
    return "; ".join(parts)


def profile_text(e: Enterprise, catalogue: Catalogue | None = None, max_chars: int = MAX_CHARS) -> str:
    """The text embedded for ``e`` (see the module docstring for the layout).

    Args:
        e: The enterprise.
        catalogue: Chain catalogue used to name ``e.links`` (default: the packaged catalogue, only when the
            enterprise has links).
        max_chars: Character budget; the business scope is truncated to fit.

    Returns:
        A single line of Simplified Chinese text of at most ``max_chars`` characters.

    Example:
        >>> profile_text(Enterprise(id="x", name="新疆嘉润资源控股有限公司", aliases=["嘉润资源"],
        ...     products=[Product(name="电解铝液", share=0.5), Product(name="重熔用铝锭", share=0.4)],
        ...     province="新疆"))
        '嘉润资源。主营: 电解铝液 50%、重熔用铝锭 40%。新疆'
    """
    if e.links and catalogue is None:
        catalogue = default_catalogue()
    head: list[str] = [short_name(e)]
    products = _products(e)
    if products:
        head.append(f"主营: {products}")
    links = _links(e, catalogue)
    if links:
        head.append(f"环节: {links}")
    industry = _industry(e)
    if industry:
        head.append(f"行业: {industry}")
    province, city = clean_text(e.province or ""), clean_text(e.city or "")
    place = city if province and city.startswith(province) else province + city
    text = "。".join(head)
    scope = clean_text(e.scope)
    if scope:
        budget = max_chars - len(text) - len(place) - len("。经营范围: 。")
        if budget >= MIN_SCOPE_CHARS:
            scope = scope if len(scope) <= budget else scope[: budget - 1] + "…"
            text += f"。经营范围: {scope.rstrip('。;；')}"
    if place:
        text += f"。{place}"
    return text[:max_chars]
