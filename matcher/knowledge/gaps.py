"""Gap diagnosis: which links of a region's target chains are missing, short or weak, with evidence.

Definitions (within one chain, P = links held by residents of the region and of its sub-regions):

- 缺链 (missing): a link x ∉ P that lies *between* present links (it has an upstream ancestor and a downstream
  descendant in P), or that is a direct input or outlet of a resident 链主's link; or any link of a target chain
  in which the region has no resident at all.
- 短链 (short): a link x ∉ P beyond the last present link — downstream (x has an ancestor in P but no descendant) or
  upstream (a descendant in P but no ancestor); the chain stops early and should be extended (延链).
- 弱链 (weak): a link in P held only by small residents, or by a single resident that is not a 链主, or named by a
  stated 强链 need.

A link is present when a resident makes it, a resident's integrated plant covers it (自备电厂, 氯乙烯 inside a PVC
plant), a project under way builds it (在建/投产) or a corpus firm located in the region makes it; the gap map says which
(:attr:`GapMap.present_sources`). A signed project (签约) only partly fills its link: the gap stays, lowered.

Each gap gets a priority in [0, 1] whose parts are shown (weights in :data:`PRIORITY_WEIGHTS`):
adjacency (1/distance to the nearest present link), chain_master (adjacent to a 链主's link), stated_need (the region
asked for this link or chain), value (downstream 延链 adds value; upstream secures inputs), and two penalties shown
only when they apply: feasibility (soft requirements the region misses) and project (a signed project covers it).
A gap failing a hard requirement (:mod:`matcher.knowledge.feasibility`) is 不宜引进: left out unless asked for.

A county's gap is not repeated at prefecture and province level unless it is theirs (:func:`delegation_owner`): a
parent's gap whose whole evidence — the residents, plants and projects whose position makes it a gap — sits in one
sub-region that lists the same link among its own gaps is that sub-region's gap. The parent leaves it out of its view
and names where it went (:attr:`GapMap.delegated`); ``include_delegated`` shows it as a pointer row (见 玛纳斯县). A gap
stays the parent's own when its evidence spans several sub-regions, comes from the parent's own residents or located
firms, or the parent itself names the link in a stated need (or lacks the whole chain).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from matcher.errors import UnknownChainError
from matcher.knowledge.catalogue import Catalogue
from matcher.knowledge.feasibility import assess, describe, endowments
from matcher.knowledge.gap_families import fold_families
from matcher.knowledge.regions import RegionBook
from matcher.records import Delegation, Edge, Fact, Gap, GapMap, GapType, ProjectStatus, Region, Resident
from matcher.text import normalize_company_name, strip_internal_tags

logger = logging.getLogger(__name__)

PRIORITY_WEIGHTS: dict[str, float] = {
    "adjacency": 0.35, "chain_master": 0.25, "stated_need": 0.25, "value": 0.15,  # fmt: skip
    "feasibility": 0.2, "project": 0.3,  # penalties: parts in [-1, 0], present only when they apply
}
RESIDENT, INTEGRATED, PROJECT, LOCATED = "驻地企业", "一体化配套", "在建/投产项目", "本地企业（按注册地）"
ESTABLISHED = "已形成产业（公开资料）"
SUPPORT = "要素支撑："

LocatedFn = Callable[[Region], dict[str, list[str]]]


@dataclass
class Origins:
    """Per gap link, the names of the regions whose holders make it a gap: ``direct`` (a 链主 or a neighbour's
    holders, a stated need, a whole chain missing) and ``broad`` (only the chain's presence somewhere)."""

    direct: dict[str, set[str]] = field(default_factory=dict)
    broad: dict[str, set[str]] = field(default_factory=dict)

    def add(self, link_id: str, where: set[str], direct: bool) -> None:
        (self.direct if direct else self.broad).setdefault(link_id, set()).update(where)

    def of(self, link_id: str) -> set[str]:
        """The regions the gap rests on: its direct evidence in any chain, else the chains' presence."""
        return self.direct.get(link_id) or self.broad.get(link_id, set())


def residents_in_scope(region: Region, book: RegionBook | None = None) -> list[tuple[Resident, str]]:
    """The region's residents and those of every sub-region, each with the name of the region it sits in."""
    out = [(r, region.name) for r in region.residents]
    if book is not None:
        stack = [region.id]
        seen = {region.id}
        while stack:
            for child in book.children(stack.pop()):
                if child.id in seen:
                    continue
                seen.add(child.id)
                stack.append(child.id)
                out.extend((r, child.name) for r in child.residents)
    return out


def _distances(catalogue: Catalogue, chain_id: str, sources: set[str], downstream: bool) -> dict[str, int]:
    """BFS distance from any source link following edges downstream (or upstream)."""
    dist = {s: 0 for s in sources}
    queue = deque(sources)
    while queue:
        lid = queue.popleft()
        edges = catalogue.customers(lid, chain_id) if downstream else catalogue.suppliers(lid, chain_id)
        for e in edges:
            nxt = e.target if downstream else e.source
            if nxt not in dist:
                dist[nxt] = dist[lid] + 1
                queue.append(nxt)
    return dist


def _undirected_distance(
    catalogue: Catalogue, chain_id: str, sources: set[str], blocked: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Steps from the nearest source link, never passing through a blocked (不宜引进) link."""
    dist = {s: 0 for s in sources}
    queue = deque(sources)
    while queue:
        lid = queue.popleft()
        for nxt in catalogue.neighbours(lid, chain_id):
            if nxt not in dist:
                dist[nxt] = dist[lid] + 1
                if nxt not in blocked:
                    queue.append(nxt)
    return dist


def diagnose(
    region: Region,
    catalogue: Catalogue,
    chain: str | None = None,
    book: RegionBook | None = None,
    include_infeasible: bool = False,
    located: Mapping[str, list[str]] | LocatedFn | None = None,
    include_delegated: bool = False,
) -> GapMap:
    """Diagnose a region's gaps in one chain (id, name or alias) or in all its target chains.

    Args:
        region: the region profile.
        catalogue: the chain catalogue.
        chain: restrict to one chain; default = the region's target chains (or every chain a resident occupies).
        book: the region book, so residents of sub-regions count (a prefecture holds its counties' firms) and a
            sub-region's own gaps are left to it.
        include_infeasible: also list the gaps flagged 不宜引进 (after the feasible ones).
        located: corpus firms located in the region that make each link (:func:`located_presence`): a mapping
            link id → firm names for this region, or a function giving that mapping for any region (so the
            sub-regions consulted for delegation see their located firms too).
        include_delegated: also list, as pointer rows after the region's own gaps, the gaps left to a sub-region.

    Returns:
        A GapMap: present links with their holders and sources, the gaps sorted by priority (highest first) and
        the gaps delegated to sub-regions.

    Raises:
        UnknownChainError: ``chain`` is not in the catalogue.
    """
    if callable(located):
        located_of: LocatedFn = located
    else:
        own_located = dict(located or {})
        located_of = lambda r: own_located if r.id == region.id else {}  # noqa: E731
    return _diagnose(region, catalogue, chain, book, include_infeasible, include_delegated, located_of, {})


def _diagnose(
    region: Region,
    catalogue: Catalogue,
    chain: str | None,
    book: RegionBook | None,
    include_infeasible: bool,
    include_delegated: bool,
    located_of: LocatedFn,
    memo: dict[str, GapMap],
) -> GapMap:
    """:func:`diagnose`, with the default views of sub-regions already diagnosed in this call (``memo``)."""
    scoped = residents_in_scope(region, book)
    if chain is not None:
        chain_ids = [catalogue.chain(chain).id]
    else:
        chain_ids = [c for c in region.target_chains if c in catalogue.chains]
        if not chain_ids:
            occupied = {lid for r, _ in scoped for lid in r.links}
            chain_ids = sorted({cid for lid in occupied for cid in catalogue.chains_of(lid)})
        missing = [c for c in region.target_chains if c not in catalogue.chains]
        if missing:
            raise UnknownChainError(missing[0], sorted(catalogue.chains))

    holders, sources, signed = _holders(region, scoped, book, located_of(region))
    own = {lid: [(r, w) for r, w in scoped if lid in r.links] for lid in {x for r, _ in scoped for x in r.links}}
    facts = endowments(region, book)
    # what the region can build on: present links, and endowments a sub-region states (准东's 示范区 counts for 昌吉州)
    available = set(holders) | {f.key for r in _scope_regions(region, book) for f in r.endowments if f.value}
    members = {lid for cid in chain_ids for lid in catalogue.chains[cid].link_ids if lid not in holders}
    blocked = frozenset(lid for lid in members if not assess(lid, facts, available).feasible)
    names = {lid: link.name for lid, link in catalogue.links.items()}
    gaps: list[Gap] = []
    present_out: dict[str, list[str]] = {}
    origins = Origins()  # link id → names of the regions whose holders (or needs) make it a gap
    captive = frozenset(lid for lid, src in sources.items() if src == {INTEGRATED})
    for cid in chain_ids:
        gaps.extend(_diagnose_chain(region, catalogue, cid, holders, present_out, own, blocked, origins, captive))
    for g in gaps:
        if g.type != GapType.WEAK:
            _apply_feasibility(g, facts, available, signed.get(g.link_id, []), names)
    reach: dict[tuple[str, bool], set[str]] = {}  # per chain and direction, shared by its 延链 gaps
    held = set(holders)
    for g in gaps:
        if g.feasible and g.type == GapType.SHORT and blocked:
            _flag_unreachable(g, catalogue, held, blocked, reach)
    # one row per link, whatever umbrella chains contain it: the highest-priority reading (ties: more evidence),
    # every chain of the diagnosis that holds the link listed on the row
    best: dict[str, Gap] = {}
    chains_of: dict[str, list[str]] = {}
    for g in gaps:
        chains_of.setdefault(g.link_id, [])
        if g.chain_id not in chains_of[g.link_id]:
            chains_of[g.link_id].append(g.chain_id)
        cur = best.get(g.link_id)
        if cur is None or (g.priority, _weight(g), len(g.residents)) > (cur.priority, _weight(cur), len(cur.residents)):
            best[g.link_id] = g
    for lid, g in best.items():
        g.chains = [g.chain_id, *(c for c in chains_of[lid] if c != g.chain_id)]
    local = _local_inputs(catalogue, best, available)
    ordered = sorted(
        best.values(),
        key=lambda g: (
            not g.feasible, -g.priority, -_weight(g), -len(g.residents), *_grounding(catalogue, g, local), g.chain_id,
            g.link_id,
        ),
    )
    delegations: list[Delegation] = []
    if book is not None and book.children(region.id):
        child_view = lambda child: _child_view(child, catalogue, book, located_of, memo)  # noqa: E731
        for g in ordered:
            owner = delegation_owner(region, g.link_id, origins.of(g.link_id), book, child_view) if g.feasible else None
            if owner is not None:
                g.delegated_to = owner.id
                g.evidence.insert(0, f"属下辖{owner.name}自身的缺口（形成缺口的依据均在该地区），见 {owner.name}")
                delegations.append(
                    Delegation(
                        link_id=g.link_id, link_name=g.link_name, chain_id=g.chain_id, type=g.type, priority=g.priority,
                        region_id=owner.id, region_name=owner.name, residents=g.residents,
                    )
                )
        if delegations:
            logger.debug("%s: %d gaps left to sub-regions", region.id, len(delegations))
    own_rows = [g for g in ordered if g.feasible and g.delegated_to is None]
    fold_families(own_rows, catalogue, present_out)
    shown = own_rows + ([g for g in ordered if g.delegated_to is not None] if include_delegated else [])
    if include_infeasible:
        shown += [g for g in ordered if not g.feasible]
    return GapMap(
        region_id=region.id,
        region_name=region.name,
        chains=chain_ids,
        present=present_out,
        present_sources={lid: sorted(sources[lid]) for lid in present_out},
        gaps=shown,
        hidden=sum(not g.feasible for g in ordered) if not include_infeasible else 0,
        delegated=delegations,
    )


def _local_inputs(catalogue: Catalogue, best: dict[str, Gap], present: set[str]) -> dict[str, list[str]]:
    """Per gap link, the present links (any chain) that supply it — a local input is evidence the link can start
    here; each gets an evidence line on its row (present links of the row's own chain are already adjacency)."""
    out: dict[str, list[str]] = {}
    for lid, g in best.items():
        own_chain = set(catalogue.chains[g.chain_id].link_ids)
        srcs = sorted({e.source for e in catalogue.suppliers(lid) if e.source in present and e.source not in own_chain})
        if srcs:
            out[lid] = srcs
            names = "、".join(catalogue.links[s].name for s in srcs)
            g.evidence.append(f"本地已有其原料或上游环节：{names}（跨产业链配套）")
    return out


def _grounding(catalogue: Catalogue, gap: Gap, local: dict[str, list[str]]) -> tuple[int, int, int]:
    """Tie-breakers after priority and evidence, largest first (negated): local inputs from other chains, the
    number of the diagnosis's chains holding the link, and the link's edges inside its chain (a core link before a
    peripheral one) — never the alphabet."""
    return (-len(local.get(gap.link_id, ())), -len(gap.chains), -len(catalogue.neighbours(gap.link_id, gap.chain_id)))


def _farming(codes: tuple[str, ...] | list[str]) -> bool:
    """GB/T 4754 section A without its services: crops, forestry, animal husbandry, fishery (01–04)."""
    return bool(codes) and all(c[:2] in ("01", "02", "03", "04") for c in codes)


def _weight(gap: Gap) -> int:
    """The evidence that breaks priority ties: every line but stated support (support raises nothing)."""
    return sum(not e.startswith(SUPPORT) for e in gap.evidence)


def _child_view(child: Region, catalogue: Catalogue, book: RegionBook, located_of: LocatedFn, memo: dict[str, GapMap]) -> GapMap:
    """A sub-region's default gap view (its own feasible gaps and its delegations), diagnosed once per call."""
    if child.id not in memo:
        memo[child.id] = _diagnose(child, catalogue, None, book, False, False, located_of, memo)
    return memo[child.id]


def delegation_owner(
    region: Region, link_id: str, origins: set[str], book: RegionBook, child_view: Callable[[Region], GapMap]
) -> Region | None:
    """The sub-region a gap of ``region`` belongs to, or None when the gap is the region's own.

    ``origins`` names the regions whose holders (or stated needs) make the link a gap. The gap belongs to a
    sub-region when every origin lies in one direct sub-region C (C or below it) and C's own default view lists the
    link — as its own gap (C) or as one C itself left further down (that owner).
    """
    if not origins or region.name in origins:
        return None
    top: set[str] = set()
    for child in book.children(region.id):
        inside = {r.name for r in _scope_regions(child, book)}
        if origins & inside:
            top.add(child.id)
            if len(top) > 1 or not origins <= inside:
                return None
    if len(top) != 1:
        return None
    child = book.regions[top.pop()]
    view = child_view(child)
    if any(g.link_id == link_id for g in view.gaps):
        return child
    further = next((d for d in view.delegated if d.link_id == link_id), None)
    return book.regions.get(further.region_id) if further is not None else None


def _holders(
    region: Region, scoped: list[tuple[Resident, str]], book: RegionBook | None, located: dict[str, list[str]]
) -> tuple[dict[str, list[tuple[Resident, str]]], dict[str, set[str]], dict[str, list[str]]]:
    """Who holds each link and by which source; and the signed projects that partly fill a link."""
    holders: dict[str, list[tuple[Resident, str]]] = {}
    sources: dict[str, set[str]] = {}

    def hold(lid: str, res: Resident, where: str, source: str) -> None:
        holders.setdefault(lid, []).append((res, where))
        sources.setdefault(lid, set()).add(source)

    for res, where in scoped:
        for lid in res.links:
            hold(lid, res, where, RESIDENT)
        for lid in res.integrated:  # a captive plant serves its owner, not the market: no 链主 reading of it
            hold(lid, res.model_copy(update={"chain_master": False, "name": f"{res.name}（一体化配套）"}), where, INTEGRATED)
    signed: dict[str, list[str]] = {}
    for reg in _scope_regions(region, book):
        for p in reg.projects:
            for lid in p.links:
                if p.status == ProjectStatus.SIGNED:
                    signed.setdefault(lid, []).append(f"{p.name}（{p.status.value}，{reg.name}）")
                else:
                    hold(lid, Resident(name=f"{p.name}（{p.status.value}）", capacity=p.capacity, size=p.size), reg.name, PROJECT)
        for est in reg.established:
            for lid in est.links:
                hold(lid, Resident(name=est.note, note=est.source), reg.name, ESTABLISHED)
    for lid, firms in located.items():
        on_file = {normalize_company_name(r.name) for r, _ in holders.get(lid, [])}
        for name in firms:
            if normalize_company_name(name) not in on_file:  # a resident found again in the corpus is one firm
                hold(lid, Resident(name=name), region.name, LOCATED)
    return holders, sources, signed


def _scope_regions(region: Region, book: RegionBook | None) -> list[Region]:
    out, stack = [region], [region.id]
    while book is not None and stack:
        for child in book.children(stack.pop()):
            if all(child.id != r.id for r in out):
                out.append(child)
                stack.append(child.id)
    return out


def _reachable(catalogue: Catalogue, chain_id: str, present: set[str], blocked: set[str], downstream: bool) -> set[str]:
    """Links reached from the present links along the flow (or against it), never passing through a blocked link."""
    frontier, seen = set(present), set(present)
    reached: set[str] = set()
    while frontier:
        step = set()
        for lid in frontier:
            edges = catalogue.customers(lid, chain_id) if downstream else catalogue.suppliers(lid, chain_id)
            step |= {e.target if downstream else e.source for e in edges}
        reached |= step
        frontier = step - seen - blocked
        seen |= step
    return reached


def _flag_unreachable(
    gap: Gap, catalogue: Catalogue, present: set[str], blocked: set[str],
    cache: dict[tuple[str, bool], set[str]] | None = None,
) -> None:
    """A 延链 gap reachable from the present links only through links that are 不宜引进 is 不宜引进 too."""
    downstream = gap.direction == "downstream"
    key = (gap.chain_id, downstream)
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = _reachable(catalogue, gap.chain_id, present, blocked, downstream)
    if gap.link_id in cache[key]:
        return
    via = [catalogue.links[e.source if downstream else e.target].name
           for e in (catalogue.suppliers(gap.link_id, gap.chain_id) if downstream else catalogue.customers(gap.link_id, gap.chain_id))
           if (e.source if downstream else e.target) in blocked]  # fmt: skip
    gap.feasible = False
    gap.infeasible.append(f"不宜引进：须依托{'、'.join(via) or '不宜引进的环节'}延伸，而该环节在本地区不宜引进")


def _apply_feasibility(
    gap: Gap, facts: dict[str, Fact], available: set[str], signed: list[str], names: dict[str, str]
) -> None:
    """Flag 不宜引进 on a failed hard requirement; lower the priority for soft misses and signed projects; state the
    soft requirements the region is recorded to meet as support."""
    verdict = assess(gap.link_id, facts, available)
    if not verdict.feasible:
        gap.feasible = False
        gap.infeasible = [f"不宜引进：{describe(r, facts, names)}" for r in verdict.hard]
    if verdict.soft:
        gap.priority_parts["feasibility"] = -min(1.0, 0.5 * len(verdict.soft))
        gap.evidence += [f"可行性不足：{describe(r, facts, names)}" for r in verdict.soft]
    gap.evidence += [f"{SUPPORT}{describe(r, facts, names)}" for r in verdict.supported]
    if signed:
        gap.priority_parts["project"] = -1.0
        gap.evidence.append(f"已有签约项目部分填补：{'、'.join(signed)}")
    gap.priority = round(sum(PRIORITY_WEIGHTS[k] * v for k, v in gap.priority_parts.items()), 4)


def _need_score(region: Region, chain_id: str, link_id: str) -> tuple[float, str | None, GapType | None]:
    score, text, gtype = 0.0, None, None
    for need in region.needs:
        if link_id in need.links:
            return 1.0, need.text, need.gap_type
        if need.chain == chain_id and not need.links and score < 0.5:
            score, text, gtype = 0.5, need.text, need.gap_type
    return score, text, gtype


def _diagnose_chain(
    region: Region,
    catalogue: Catalogue,
    chain_id: str,
    holders: dict[str, list[tuple[Resident, str]]],
    present_out: dict[str, list[str]],
    own: dict[str, list[tuple[Resident, str]]],
    blocked: frozenset[str] = frozenset(),
    origins: Origins | None = None,
    captive: frozenset[str] = frozenset(),
) -> list[Gap]:
    """The gaps of one chain; ``origins`` gathers, per gap link, the regions whose holders or needs imply it.
    A link held only by a resident's integrated plant (``captive``: 自备电厂, a project's own 输氢管线) seeds no upstream
    extension: the plant was equipped and supplied when it was built and serves its owner, not a market."""
    origins = Origins() if origins is None else origins
    chain = catalogue.chains[chain_id]
    members = set(chain.link_ids)
    present = {lid for lid in members if lid in holders}
    for lid in present:
        present_out[lid] = [f"{r.name}({where})" if where != region.name else r.name for r, where in holders[lid]]
    masters = {lid for lid in present if any(r.chain_master for r, _ in holders[lid])}
    down_from = _distances(catalogue, chain_id, present, downstream=True)  # reachable downstream of P
    up_from = _distances(catalogue, chain_id, present - captive, downstream=False)  # reachable upstream of P
    near = _undirected_distance(catalogue, chain_id, present, blocked) if present else {}
    chain_where = {w for o in present for _, w in holders[o]}  # where the chain's holders sit
    master_near = _undirected_distance(catalogue, chain_id, masters, blocked) if masters else {}
    out: list[Gap] = []

    own_links = set(chain.own_link_ids)
    for lid in catalogue.ordered_links(chain_id):
        link = catalogue.links[lid]
        need, need_text, need_type = _need_score(region, chain_id, lid)
        if lid in present:
            if lid not in own:  # held by a captive plant, a project or a located firm: no thin-resident reading
                if need == 1.0 and need_type == GapType.WEAK:  # unless the region asks to strengthen it (强链)
                    out.append(_stated_weak_gap(catalogue, chain_id, lid, holders[lid], need, need_text))
                    origins.add(lid, {region.name}, direct=True)
                continue
            gap = _weak_gap(region, catalogue, chain_id, lid, own[lid], need, need_text, need_type)
            if gap:
                out.append(gap)
                origins.add(lid, {w for _, w in own[lid]} | ({region.name} if need == 1.0 else set()), direct=True)
            continue
        # a whole chain missing: only the chain's own links are its gaps — a link the chain merely uses (煤炭开采,
        # 肉牛养殖 for 新型肥料) is not a gap of an absent chain; it is a gap of its own chain where that is a target
        if not present and lid not in own_links and need == 0.0:
            continue
        # a link the chain merely uses (风力发电机组 in the 能源装备 umbrella) is its gap only next to a present link
        if present and lid not in own_links and need == 0.0 and near.get(lid) != 1:
            continue
        evidence: list[str] = []
        edges: list[Edge] = []
        residents: list[str] = []
        whole = not present
        where: set[str] = {region.name} if need == 1.0 or whole else set()
        has_up = lid in down_from  # an ancestor is present
        has_down = lid in up_from  # a descendant is present
        master_in = [e for e in catalogue.suppliers(lid, chain_id) if e.source in masters]
        master_out = [e for e in catalogue.customers(lid, chain_id) if e.target in masters]
        direction: str | None = None
        if not present:
            gtype = GapType.MISSING
            evidence.append(f"本地区在{chain.name}上尚无驻地企业（整链缺失）")
        elif has_up and has_down:
            gtype = GapType.MISSING
            evidence.append(f"{link.name}位于已有环节之间：上游与下游均有驻地企业，但本环节空缺")
        elif master_in or master_out:
            gtype = GapType.MISSING if master_out else GapType.SHORT
            direction = "upstream" if master_out else "downstream"
        elif has_up:
            gtype, direction = GapType.SHORT, "downstream"
            evidence.append(f"产业链止于已有环节，{link.name}为向下游延伸的空缺环节（距最近已有环节 {down_from[lid]} 步）")
        elif has_down:
            if need == 0.0 and _farming(link.gbt):
                continue  # extending a chain back into farming (林果种植 behind 干果加工) is no industrial project
            gtype, direction = GapType.SHORT, "upstream"
            evidence.append(f"{link.name}为向上游延伸的空缺环节（距最近已有环节 {up_from[lid]} 步）")
        else:
            gtype = GapType.MISSING
            evidence.append(f"{link.name}与已有环节无直接上下游关系，属链条空白")
        for e in master_in:
            names = [r.name for r, _ in holders[e.source] if r.chain_master]
            where |= {w for r, w in holders[e.source] if r.chain_master}
            residents += names
            edges.append(e)
            cap = next((r.capacity for r, _ in holders[e.source] if r.chain_master and r.capacity), "")
            evidence.append(
                f"链主{'、'.join(names)}（{catalogue.links[e.source].name}）可向{link.name}供应{e.flow or '产品'}"
                + (f"，产能：{cap}" if cap else "")
            )
        for e in master_out:
            names = [r.name for r, _ in holders[e.target] if r.chain_master]
            where |= {w for r, w in holders[e.target] if r.chain_master}
            residents += names
            edges.append(e)
            evidence.append(f"链主{'、'.join(names)}（{catalogue.links[e.target].name}）需要本地配套{e.flow or link.name}")
        if not master_in and not master_out and present:
            for e in catalogue.suppliers(lid, chain_id) + catalogue.customers(lid, chain_id):
                other = e.source if e.target == lid else e.target
                if other in present:
                    edges.append(e)
                    residents += [r.name for r, _ in holders[other]]
                    where |= {w for _, w in holders[other]}
        where |= {w for o in catalogue.neighbours(lid, chain_id) if o in present for _, w in holders[o]}
        if where or residents:  # a 链主 or a holder next to the link, a stated need, or the chain missing
            origins.add(lid, where, direct=True)
        else:  # reached through the chain as a whole: every holder of it is evidence
            origins.add(lid, chain_where, direct=False)
        if need_text:
            evidence.append(f"地区招商需求：{need_text}")
        dist = near.get(lid)
        adjacency = 1.0 / dist if dist else 0.0
        next_to = {o for o in catalogue.neighbours(lid, chain_id) if o in present}
        small = [r.name for o in next_to for r, _ in holders[o]]
        if next_to and all(r.size == "小" for o in next_to for r, _ in holders[o]):  # a small firm is a small market
            adjacency /= 2
            evidence.append(f"相邻已有环节仅有小型企业（{'、'.join(sorted(set(small)))}），本地配套需求有限")
        mdist = master_near.get(lid)
        master_part = 1.0 if (master_in or master_out) else 0.5 if mdist == 2 else 0.0
        value = 1.0 if direction == "downstream" else 0.6 if direction == "upstream" else 0.8
        if link.local_supply:  # 塔筒, 叶片: hauled far they lose to a local plant — worth most beside their user
            users = [catalogue.links[e.target].name for e in catalogue.customers(lid, chain_id) if e.target in present]
            if users:
                value = 1.0
                evidence.append(f"{link.name}运输半径有限，宜就近配套本地{'、'.join(users)}")
            else:
                value = 0.2
                evidence.append(f"{link.name}运输半径有限，本地区尚无其用户，宜布局在用户附近")
        parts = {
            "adjacency": round(adjacency, 3),
            "chain_master": master_part,
            "stated_need": need,
            "value": value,
        }
        priority = sum(PRIORITY_WEIGHTS[k] * v for k, v in parts.items())
        out.append(
            Gap(
                type=gtype,
                chain_id=chain_id,
                chain_name=chain.name,
                link_id=lid,
                link_name=link.name,
                stage=catalogue.stage(lid, chain_id),
                direction=direction,
                evidence=[strip_internal_tags(x) for x in evidence],
                residents=sorted(set(residents)),
                edges=edges,
                priority=round(priority, 4),
                priority_parts=parts,
            )
        )
    return out


def _weak_gap(
    region: Region,
    catalogue: Catalogue,
    chain_id: str,
    lid: str,
    held: list[tuple[Resident, str]],
    need: float,
    need_text: str | None,
    need_type: GapType | None,
) -> Gap | None:
    link = catalogue.links[lid]
    residents = [r for r, _ in held]
    reasons: list[str] = []
    if all(r.size == "小" for r in residents):
        reasons.append(f"{link.name}仅有小型企业：{'、'.join(r.name for r in residents)}")
    elif len(residents) == 1 and not residents[0].chain_master:
        reasons.append(f"{link.name}仅有一家驻地企业：{residents[0].name}")
    if need_type == GapType.WEAK and need > 0:
        reasons.append(f"地区提出强链需求：{need_text}")
    if not reasons:
        return None
    thin = 1.0 if all(r.size == "小" for r in residents) else 0.6
    return _weak_row(catalogue, chain_id, lid, thin, need, reasons, [r.name for r in residents])


def _stated_weak_gap(
    catalogue: Catalogue, chain_id: str, lid: str, held: list[tuple[Resident, str]], need: float, need_text: str | None
) -> Gap:
    """A 强链 row for a link the region already has through public record, a project or a located firm, named by a
    stated need: the need is the reason; who holds the link is stated, not judged thin."""
    names = [r.name for r, _ in held]
    return _weak_row(catalogue, chain_id, lid, 0.6, need, [f"地区提出强链需求：{need_text}", f"本地区已有：{'；'.join(names[:3])}"], [])


def _weak_row(
    catalogue: Catalogue, chain_id: str, lid: str, thin: float, need: float, reasons: list[str], residents: list[str]
) -> Gap:
    """A 弱链 row: thinness as its adjacency part, the stated need, the link's first edges."""
    parts = {"adjacency": thin, "chain_master": 0.0, "stated_need": need, "value": 0.5}
    return Gap(
        type=GapType.WEAK,
        chain_id=chain_id,
        chain_name=catalogue.chains[chain_id].name,
        link_id=lid,
        link_name=catalogue.links[lid].name,
        stage=catalogue.stage(lid, chain_id),
        evidence=[strip_internal_tags(x) for x in reasons],
        residents=residents,
        edges=(catalogue.customers(lid, chain_id) + catalogue.suppliers(lid, chain_id))[:4],
        priority=round(sum(PRIORITY_WEIGHTS[k] * v for k, v in parts.items()), 4),
        priority_parts=parts,
    )
