"""What a person reads of a gap map: the concise view (top rows per chain) and the text rendering."""

from __future__ import annotations

from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.gaps import RESIDENT
from matcher.records import Gap, GapMap, GapType

__all__ = ["CONCISE_PER_CHAIN", "concise", "format_gap_map"]


#: Rows per chain in the concise default view of ``chainmatch gaps`` (the full list with ``--all``).
CONCISE_PER_CHAIN = 5


def concise(gm: GapMap, per_chain: int = CONCISE_PER_CHAIN) -> GapMap:
    """The gap map with at most ``per_chain`` rows per chain (a row counts for the first chain it lists), in the
    diagnosis's order, without the variant rows of a family already listed or present (its head row names them);
    ``trimmed`` says how many were left out. ``per_chain`` ≤ 0 keeps every row."""
    if per_chain <= 0:
        return gm
    seen: dict[str, int] = {}
    kept: list[Gap] = []
    for g in gm.gaps:
        if g.variant_of is not None and g.feasible and g.delegated_to is None:
            continue
        n = seen.get(g.chain_id, 0)
        if n < per_chain or not g.feasible or g.delegated_to is not None:
            kept.append(g)
        seen[g.chain_id] = n + (g.feasible and g.delegated_to is None)
    return gm.model_copy(update={"gaps": kept, "trimmed": gm.trimmed + len(gm.gaps) - len(kept)})


def format_gap_map(gm: GapMap, catalogue: Catalogue) -> str:
    """A gap map as text: per chain, its links upstream → downstream marked present / gap type.

    A gap left to a sub-region is a pointer row (↪ 见 玛纳斯县) when the map includes it; otherwise a closing line
    counts the delegated gaps per sub-region.
    """
    by_link = {(g.chain_id, g.link_id): g for g in gm.gaps}
    owners = {d.link_id: d.region_name for d in gm.delegated}
    lines = [f"地区 {gm.region_name} ({gm.region_id}) 产业链诊断"]
    for cid in gm.chains:
        chain = catalogue.chains[cid]
        lines.append(f"\n■ {chain.name} ({cid})")
        for lid in catalogue.ordered_links(cid):
            link = catalogue.links[lid]
            g = by_link.get((cid, lid))
            if lid in gm.present and (g is None or g.type != GapType.WEAK):
                via = "、".join(s for s in gm.present_sources.get(lid, []) if s != RESIDENT)
                lines.append(
                    f"  ● 已有 [{catalogue.stage(lid, cid).value}] {link.name}: {'、'.join(gm.present[lid])}" + (f"（来源：{via}）" if via else "")
                )
            elif g is not None and g.delegated_to is not None:
                lines.append(
                    f"  ↪ 见 {owners.get(lid, g.delegated_to)} [{catalogue.stage(lid, cid).value}] {link.name}"
                    f"（{g.type.value}，属下辖地区自身的缺口，本级优先级 {g.priority:.2f}）"
                )
            elif g is not None:
                tag = {"缺链": "✗ 缺链", "短链": "→ 短链", "弱链": "△ 弱链"}[g.type.value]
                tag = tag if g.feasible else f"⊘ 不宜引进（{g.type.value}）"
                tag = f"≈ 同类（{g.type.value}）" if g.variant_of is not None and g.feasible else tag
                dirn = {"downstream": "向下游延链", "upstream": "向上游延链"}.get(g.direction or "", "")
                if g.type != GapType.SHORT:
                    dirn = {"downstream": "(链主下游配套)", "upstream": "(链主上游配套)"}.get(g.direction or "", "")
                lines.append(
                    f"  {tag} [{catalogue.stage(lid, cid).value}] {link.name} 优先级 {g.priority:.2f} {dirn} "
                    f"({', '.join(f'{k}={v:g}' for k, v in g.priority_parts.items())})"
                )
                for ev in [*g.infeasible, *g.evidence]:
                    lines.append(f"      · {ev}")
    if gm.trimmed:
        lines.append(f"\n每条产业链仅列优先级最高的缺口，另有 {gm.trimmed} 个较低优先级缺口未列出，加 --all 查看全部")
    if gm.hidden:
        lines.append(f"\n另有 {gm.hidden} 个缺口不宜引进（资源、政策或配套条件不具备），加 --all 查看")
    if gm.delegated and not any(g.delegated_to for g in gm.gaps):
        per: dict[str, int] = {}
        for d in gm.delegated:
            per[d.region_name] = per.get(d.region_name, 0) + 1
        where = "、".join(f"{name} {n} 个" for name, n in per.items())
        lines.append(f"\n另有 {len(gm.delegated)} 个缺口属下辖地区自身（{where}），本级不重复列出，加 --all 查看")
    return "\n".join(lines)
