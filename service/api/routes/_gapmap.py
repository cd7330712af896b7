"""The gap map of one region in one chain as a self-contained SVG (server-rendered, no script, all text escaped).

Links are laid out upstream (left) to downstream (right) by their longest path from the chain's sources, and
coloured by state: present (已有), 缺链, 短链, 弱链, and 见下辖 for a gap left to a sub-region whose own gap it is (not
clickable here: the sub-region's map holds it). Links held by a 链主 carry a ★ badge. Every gap node is a
``<g class="node gap" data-link=… data-gap-type=…>`` so the staff page can make it clickable.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gaps import residents_in_scope
from matcher.knowledge.regions import RegionBook
from matcher.records import GapMap, GapType, Region

__all__ = ["STATE_STYLE", "render_gap_map"]

STATE_STYLE: dict[str, tuple[str, str, str]] = {
    # state: (fill, stroke, label)
    "present": ("#d8f0df", "#2e8b57", "已有"),
    GapType.MISSING.value: ("#fbd9d8", "#d64541", "缺链"),
    GapType.SHORT.value: ("#fde5c6", "#e08a1e", "短链"),
    GapType.WEAK.value: ("#fff4bf", "#b89500", "弱链"),
    "delegated": ("#e3ecf7", "#5b7fa6", "见下辖"),
    "none": ("#eeeeee", "#9e9e9e", "未布局"),
}

_W, _H, _DX, _DY, _TOP, _LEFT = 150, 50, 200, 66, 56, 16


def _depths(catalogue: Catalogue, chain_id: str) -> dict[str, int]:
    order = catalogue.ordered_links(chain_id)
    depth = {lid: 0 for lid in order}
    for lid in order:  # topological: every supplier comes first (cycles keep file order)
        for e in catalogue.customers(lid, chain_id):
            if e.target in depth and order.index(e.target) > order.index(lid):
                depth[e.target] = max(depth[e.target], depth[lid] + 1)
    return depth


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def render_gap_map(
    region: Region, gm: GapMap, catalogue: Catalogue, chain_id: str, book: RegionBook | None
) -> str:
    """SVG markup of ``gm`` (diagnosed for ``chain_id``) for one chain."""
    chain = catalogue.chains[chain_id]
    gaps = {g.link_id: g for g in gm.gaps if g.chain_id == chain_id and g.delegated_to is None}
    delegated = {d.link_id: d for d in gm.delegated if d.chain_id == chain_id}
    masters = {lid for r, _ in residents_in_scope(region, book) if r.chain_master for lid in r.links}
    depth = _depths(catalogue, chain_id)
    columns: dict[int, list[str]] = {}
    for lid in catalogue.ordered_links(chain_id):
        columns.setdefault(depth[lid], []).append(lid)
    pos: dict[str, tuple[int, int]] = {}
    for col, lids in columns.items():
        for row, lid in enumerate(lids):
            pos[lid] = (_LEFT + col * _DX, _TOP + row * _DY)
    width = _LEFT * 2 + max(columns, default=0) * _DX + _W
    height = _TOP + max((len(v) for v in columns.values()), default=1) * _DY + 10
    width = max(width, 620)

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gapmap" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label={quoteattr(f"{region.name} {chain.name} 缺口图")} '
        f"data-chain={quoteattr(chain_id)} data-region={quoteattr(region.id)}>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a8a8a"/></marker></defs>',
        f'<text x="{_LEFT}" y="20" class="title" font-size="15" font-weight="bold" fill="#222">'
        f"{escape(region.name)} · {escape(chain.name)}</text>",
    ]
    lx = _LEFT
    for state in ("present", GapType.MISSING.value, GapType.SHORT.value, GapType.WEAK.value, *(("delegated",) if delegated else ())):
        fill, stroke, label = STATE_STYLE[state]
        out.append(
            f'<rect x="{lx}" y="30" width="14" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{lx + 18}" y="40" font-size="12" fill="#333">{label}</text>'
        )
        lx += 64 + 12 * max(0, len(label) - 2)
    out.append(f'<text x="{lx}" y="40" font-size="12" fill="#6a1b9a">★ 链主</text>')

    for lid in catalogue.ordered_links(chain_id):
        for e in catalogue.customers(lid, chain_id):
            if e.target not in pos:
                continue
            (x1, y1), (x2, y2) = pos[lid], pos[e.target]
            sx, sy, tx, ty = x1 + _W, y1 + _H / 2, x2, y2 + _H / 2
            if tx <= sx:  # same or earlier column (cycle): go around below
                sx, sy, tx, ty = x1 + _W / 2, y1 + _H, x2 + _W / 2, y2 + _H
                path = f"M {sx} {sy} C {sx} {sy + 30}, {tx} {ty + 30}, {tx} {ty}"
            else:
                mid = (sx + tx) / 2
                path = f"M {sx} {sy} C {mid} {sy}, {mid} {ty}, {tx} {ty}"
            title = f"{catalogue.links[lid].name} → {catalogue.links[e.target].name}" + (
                f"：{e.flow}" if e.flow else ""
            )
            out.append(
                f'<path class="edge" d="{path}" fill="none" stroke="#9a9a9a" stroke-width="1.3" '
                f'marker-end="url(#arrow)"><title>{escape(title)}</title></path>'
            )

    for lid, (x, y) in pos.items():
        link = catalogue.links[lid]
        gap = gaps.get(lid)
        holders = gm.present.get(lid, [])
        away = delegated.get(lid)
        if gap is not None:
            state = gap.type.value
        elif away is not None:
            state = "delegated"
        elif holders:
            state = "present"
        else:
            state = "none"
        fill, stroke, label = STATE_STYLE[state]
        is_master = lid in masters
        cls = "node gap" if gap is not None else "node"
        attrs = f'class="{cls}" data-link={quoteattr(lid)} data-state={quoteattr(state)}'
        if gap is not None:
            attrs += f' data-gap-type={quoteattr(gap.type.value)} tabindex="0" role="button"'
        tip = [f"{link.name}（{catalogue.stage(lid, chain_id).value}）· {label}"]
        if holders:
            tip.append("驻地企业：" + "、".join(holders[:8]))
        if gap is not None:
            tip.append(f"优先级 {gap.priority:.2f}")
            tip += gap.evidence[:3]
        if away is not None:
            tip.append(f"{away.type.value}，属下辖{away.region_name}自身的缺口，见 {away.region_name}")
            attrs += f" data-delegated-to={quoteattr(away.region_id)}"
        sub = f"{len(holders)} 家 · {label}" if holders else label
        if away is not None:
            sub = f"见 {_short(away.region_name, 8)}"
        if gap is not None:
            sub += f" · {gap.priority:.2f}"
        out.append(
            f"<g {attrs}><title>{escape(chr(10).join(tip))}</title>"
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="7" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{3 if is_master else 1.6}"/>'
            f'<text x="{x + 10}" y="{y + 21}" font-size="14" fill="#1a1a1a">{escape(_short(link.name, 9))}</text>'
            f'<text x="{x + 10}" y="{y + 40}" font-size="11" fill="#555">{escape(sub)}</text>'
            + (
                f'<text x="{x + _W - 46}" y="{y + 18}" font-size="12" fill="#6a1b9a" class="master">★链主</text>'
                if is_master
                else ""
            )
            + "</g>"
        )
    out.append("</svg>")
    return "".join(out)
