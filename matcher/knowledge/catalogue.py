"""The chain catalogue: authored YAML files of chains, links and edges, loaded and validated.

File format (one chain per file, ``matcher/data/chains/*.yaml``)::

    id: aluminium                # stable chain id
    name: 铝产业链
    cluster: 绿色矿业             # Xinjiang industry cluster
    aliases: [铝基新材料, 铝]
    links:                       # links defined by this chain (ids are global across the catalogue)
      - id: alumina
        name: 氧化铝
        stage: 上游               # 上游 / 中游 / 下游
        aliases: [冶金级氧化铝]
        products: [氧化铝粉]
        gbt: ["3216"]            # GB/T 4754-2017 codes
    uses: [electrolytic_aluminium]   # links defined in another chain file that this chain also contains
    edges:
      - {from: alumina, to: electrolytic_aluminium, flow: 氧化铝}

A link's stage is read per chain (:meth:`Catalogue.stage`): its relative position along the chain's flow, so
高纯铝 is 上游 of the electronic-materials chain and 下游 of the aluminium chain, and no edge runs against the stages.
The ``stage`` written in the file is the fallback for a link with no edge in the chain. Each chain file records the
sources it was built from (``sources:``).

Errors name the file, the entry and the problem (:class:`CatalogueError`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from matcher.errors import CatalogueError, UnknownChainError, UnknownLinkError
from matcher.records import Chain, Edge, Link, Stage
from matcher.text import normalize_text
from matcher.yamlio import read_yaml

logger = logging.getLogger(__name__)

DATA_DIR = Path(str(resources.files("matcher") / "data"))
CHAINS_DIR = DATA_DIR / "chains"
GBT_FILE = DATA_DIR / "gbt4754_2017_codes.tsv"


@lru_cache(maxsize=4)
def load_gbt_codes(path: Path = GBT_FILE) -> dict[str, str]:
    """GB/T 4754-2017 code → name."""
    codes: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        code, name, *_ = line.split("\t")
        codes[code] = name
    return codes


_STAGES = (Stage.UPSTREAM, Stage.MIDSTREAM, Stage.DOWNSTREAM)
_STAGE_RANK = {s: i for i, s in enumerate(_STAGES)}


class Catalogue:
    """Chains, links and edges with graph look-ups. Build it with :func:`load_catalogue`."""

    def __init__(self, chains: dict[str, Chain], links: dict[str, Link], source: str = "") -> None:
        self.chains = chains
        self.links = links
        self.source = source
        self._up: dict[str, list[Edge]] = defaultdict(list)  # link -> edges into it
        self._down: dict[str, list[Edge]] = defaultdict(list)  # link -> edges out of it
        self._chains_of: dict[str, list[str]] = defaultdict(list)
        self._edge_memo: dict[tuple[str, str, str | None], tuple[Edge, ...]] = {}
        self._stage_memo: dict[str, dict[str, Stage]] = {}
        seen: set[tuple[str, str]] = set()
        for chain in chains.values():
            for lid in chain.link_ids:
                self._chains_of[lid].append(chain.id)
            for edge in chain.edges:
                if (edge.source, edge.target) in seen:
                    continue
                seen.add((edge.source, edge.target))
                self._down[edge.source].append(edge)
                self._up[edge.target].append(edge)
        self._chain_names = {}
        for chain in chains.values():
            for name in (chain.id, chain.name, *chain.aliases):
                self._chain_names.setdefault(normalize_text(name), chain.id)
        self._link_names: dict[str, str] = {}
        for link in links.values():
            for name in (link.id, link.name, *link.aliases):
                self._link_names.setdefault(normalize_text(name), link.id)

    # --- look-ups -------------------------------------------------------------------------------
    def chain(self, key: str) -> Chain:
        """A chain by id, name or alias; raises UnknownChainError listing the valid ids."""
        cid = self._chain_names.get(normalize_text(key))
        if cid is None:
            raise UnknownChainError(key, sorted(self.chains))
        return self.chains[cid]

    def chain_in_text(self, text: str) -> Chain | None:
        """The chain whose id, name or alias is the longest one written inside ``text`` ("锂电池正极材料" names 锂电池),
        else None: for free text that is no exact chain name."""
        norm = normalize_text(text)
        named = [(len(k), cid) for k, cid in self._chain_names.items() if len(k) >= 2 and k in norm]
        return self.chains[max(named)[1]] if named else None

    def link(self, key: str) -> Link:
        """A link by id, name or alias; raises UnknownLinkError."""
        lid = self._link_names.get(normalize_text(key))
        if lid is None:
            raise UnknownLinkError(key)
        return self.links[lid]

    def has_link(self, key: str) -> bool:
        return normalize_text(key) in self._link_names

    def stage(self, link_id: str, chain_id: str | None = None) -> Stage:
        """The link's stage within a chain (上游 / 中游 / 下游).

        A link defined by the chain's own file keeps the stage written there. A link the chain borrows (``uses``)
        is placed by the chain's flow: no earlier than its suppliers in the chain, no later than its customers, and
        otherwise at its authored stage — so 高纯铝, 上游 of electronic materials, is 中游 of the aluminium chain after
        电解铝. Without a chain, the authored stage.
        """
        if chain_id is None:
            return self.links[link_id].stage
        stages = self._stage_memo.get(chain_id)
        if stages is None:
            stages = self._stage_memo[chain_id] = self._chain_stages(chain_id)
        return stages.get(link_id, self.links[link_id].stage)

    def _chain_stages(self, chain_id: str) -> dict[str, Stage]:
        chain = self.chains[chain_id]
        order = self.ordered_links(chain_id)
        rank = {lid: i for i, lid in enumerate(order)}
        edges = [e for e in chain.edges if rank[e.source] < rank[e.target]]  # cycles: drop back-edges
        own = set(chain.own_link_ids)
        level = {lid: _STAGE_RANK[self.links[lid].stage] for lid in order}
        floor = dict.fromkeys(order, 0)
        for lid in order:  # forward: a borrowed link comes no earlier than its suppliers
            floor[lid] = max([level[e.source] for e in edges if e.target == lid], default=0)
            if lid not in own:
                level[lid] = max(level[lid], floor[lid])
        for lid in reversed(order):  # backward: and no later than its customers, if its suppliers allow
            if lid not in own:
                cap = min([level[e.target] for e in edges if e.source == lid], default=2)
                level[lid] = max(min(level[lid], cap), floor[lid])
        return {lid: _STAGES[v] for lid, v in level.items()}

    def chains_of(self, link_id: str) -> list[str]:
        """Ids of the chains that contain a link."""
        return list(self._chains_of.get(link_id, []))

    def suppliers(self, link_id: str, chain_id: str | None = None) -> list[Edge]:
        """Edges into ``link_id`` (its upstream inputs), optionally within one chain."""
        return self._edges("up", link_id, chain_id)

    def customers(self, link_id: str, chain_id: str | None = None) -> list[Edge]:
        """Edges out of ``link_id`` (its downstream outlets), optionally within one chain."""
        return self._edges("down", link_id, chain_id)

    def _edges(self, direction: str, link_id: str, chain_id: str | None) -> list[Edge]:
        """Memoised per (direction, link, chain): the ranking asks the same few hundred times per request."""
        key = (direction, link_id, chain_id)
        found = self._edge_memo.get(key)
        if found is None:
            edges = (self._up if direction == "up" else self._down).get(link_id, [])
            found = self._edge_memo[key] = tuple(self._filter(edges, chain_id))
        return list(found)

    def neighbours(self, link_id: str, chain_id: str | None = None) -> set[str]:
        """Links directly upstream or downstream of ``link_id`` (memoised; a fresh set per call)."""
        key = ("nb", link_id, chain_id)
        found = self._edge_memo.get(key)
        if found is None:
            found = self._edge_memo[key] = frozenset(
                {e.source for e in self.suppliers(link_id, chain_id)} | {e.target for e in self.customers(link_id, chain_id)}
            )
        return set(found)

    def _filter(self, edges: Iterable[Edge], chain_id: str | None) -> list[Edge]:
        if chain_id is None:
            return list(edges)
        members = set(self.chains[chain_id].link_ids)
        return [e for e in edges if e.source in members and e.target in members]

    def ordered_links(self, chain_id: str) -> list[str]:
        """The chain's links in topological order, upstream first (stage breaks ties); memoised, a fresh list per
        call."""
        key = ("order", chain_id, None)
        found = self._edge_memo.get(key)
        if found is None:
            found = self._edge_memo[key] = tuple(self._ordered_links(chain_id))
        return list(found)

    def _ordered_links(self, chain_id: str) -> list[str]:
        chain = self.chains[chain_id]
        members = list(chain.link_ids)
        stage_rank = {Stage.UPSTREAM: 0, Stage.MIDSTREAM: 1, Stage.DOWNSTREAM: 2}
        indeg = {lid: 0 for lid in members}
        for e in chain.edges:
            indeg[e.target] += 1
        order: list[str] = []
        ready = sorted((lid for lid in members if indeg[lid] == 0), key=lambda x: stage_rank[self.links[x].stage])
        while ready:
            lid = ready.pop(0)
            order.append(lid)
            for e in chain.edges:
                if e.source == lid:
                    indeg[e.target] -= 1
                    if indeg[e.target] == 0:
                        ready.append(e.target)
            ready.sort(key=lambda x: stage_rank[self.links[x].stage])
        order += [lid for lid in members if lid not in order]  # cycles: keep the rest in file order
        return order

    def stats(self) -> dict[str, int]:
        edges = {(e.source, e.target) for c in self.chains.values() for e in c.edges}
        return {"chains": len(self.chains), "links": len(self.links), "edges": len(edges)}

    def tree(self, chain_id: str) -> str:
        """The chain drawn as an indented tree, upstream to downstream."""
        chain = self.chains[chain_id]
        lines = [f"{chain.name} ({chain.id})  集群: {chain.cluster}"]
        roots = [lid for lid in self.ordered_links(chain_id) if not self.suppliers(lid, chain_id)]
        seen: set[str] = set()

        def walk(lid: str, depth: int, flow: str) -> None:
            link = self.links[lid]
            via = f"  ← {flow}" if flow else ""
            mark = " (见上)" if lid in seen else ""
            lines.append(f"{'  ' * depth}└─ [{self.stage(lid, chain_id).value}] {link.name} ({lid}){via}{mark}")
            if lid in seen:
                return
            seen.add(lid)
            for edge in self.customers(lid, chain_id):
                walk(edge.target, depth + 1, edge.flow)

        for root in roots:
            walk(root, 0, "")
        for lid in chain.link_ids:
            if lid not in seen:
                walk(lid, 0, "")
        return "\n".join(lines)


def _parse_chain_file(path: Path, links: dict[str, Link], link_files: dict[str, str]) -> tuple[dict, list]:
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise CatalogueError(path.name, "-", f"not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogueError(path.name, "-", "not UTF-8 text") from exc
    if not isinstance(raw, dict):
        raise CatalogueError(path.name, "-", "expected a mapping with id, name, links, edges")
    for key in ("id", "name", "links"):
        if key not in raw:
            raise CatalogueError(path.name, "-", f"missing required key '{key}'")
    for i, entry in enumerate(raw.get("links") or []):
        label = entry.get("id", f"links[{i}]") if isinstance(entry, dict) else f"links[{i}]"
        if not isinstance(entry, dict):
            raise CatalogueError(path.name, label, "a link must be a mapping")
        for key in ("aliases", "products", "gbt", "covers"):
            if entry.get(key) is not None and not isinstance(entry[key], list):
                raise CatalogueError(path.name, label, f"'{key}' must be a list, received {type(entry[key]).__name__}")
        for code in entry.get("gbt") or ():
            if not isinstance(code, str):
                raise CatalogueError(
                    path.name, label, f"GB/T codes must be quoted strings (e.g. \"0610\"), received {code!r}"
                )
        try:
            link = Link(
                id=str(entry["id"]),
                name=str(entry["name"]),
                stage=entry["stage"],
                aliases=tuple(str(a) for a in entry.get("aliases") or ()),
                products=tuple(str(p) for p in entry.get("products") or ()),
                gbt=tuple(str(g) for g in entry.get("gbt") or ()),
                description=str(entry.get("description") or ""),
                local_supply=bool(entry.get("local_supply", False)),
                family=str(entry.get("family") or ""),
                recycles=str(entry.get("recycles") or ""),
                covers=tuple(str(c) for c in entry.get("covers") or ()),
            )
        except KeyError as exc:
            raise CatalogueError(path.name, label, f"missing required key {exc}") from exc
        except ValidationError as exc:
            err = exc.errors()[0]
            raise CatalogueError(path.name, label, f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
        if link.id in links:
            raise CatalogueError(path.name, link.id, f"duplicate link id (first defined in {link_files[link.id]})")
        links[link.id] = link
        link_files[link.id] = path.name
    return raw, [str(u) for u in raw.get("uses") or []]


def load_catalogue(directory: Path | None = None, gbt_codes: dict[str, str] | None = None) -> Catalogue:
    """Load and validate every ``*.yaml`` chain file in ``directory`` (default: the embedded catalogue).

    Raises:
        CatalogueError: naming the file, the entry and the problem (bad YAML, missing keys, duplicate ids,
            dangling edges, unknown GB/T codes, conflicting aliases).
    """
    directory = Path(directory) if directory else CHAINS_DIR
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    if not files:
        raise CatalogueError(str(directory), "-", "no chain files (*.yaml) found")
    codes = gbt_codes if gbt_codes is not None else load_gbt_codes()
    links: dict[str, Link] = {}
    link_files: dict[str, str] = {}
    parsed: list[tuple[Path, dict, list[str]]] = []
    for path in files:
        raw, uses = _parse_chain_file(path, links, link_files)
        parsed.append((path, raw, uses))

    chains: dict[str, Chain] = {}
    for path, raw, uses in parsed:
        cid = str(raw["id"])
        if cid in chains:
            raise CatalogueError(path.name, cid, "duplicate chain id")
        own = [str(e["id"]) for e in raw.get("links") or []]
        for u in uses:
            if u not in links:
                raise CatalogueError(path.name, f"uses: {u}", "unknown link id (not defined in any chain file)")
        members = list(dict.fromkeys(own + uses))
        edges: list[Edge] = []
        for i, e in enumerate(raw.get("edges") or []):
            if not isinstance(e, dict) or "from" not in e or "to" not in e:
                raise CatalogueError(path.name, f"edges[{i}]", "an edge needs 'from' and 'to'")
            src, dst = str(e["from"]), str(e["to"])
            for end in (src, dst):
                if end not in links:
                    raise CatalogueError(path.name, f"edge {src}->{dst}", f"dangling edge: unknown link '{end}'")
                if end not in members:
                    raise CatalogueError(
                        path.name, f"edge {src}->{dst}", f"link '{end}' is not in this chain (add it to 'uses')"
                    )
            if src == dst:
                raise CatalogueError(path.name, f"edge {src}->{dst}", "an edge cannot loop onto its own link")
            edges.append(Edge(source=src, target=dst, flow=str(e.get("flow") or "")))
        chains[cid] = Chain(
            id=cid,
            name=str(raw["name"]),
            cluster=str(raw.get("cluster") or ""),
            aliases=tuple(str(a) for a in raw.get("aliases") or ()),
            description=str(raw.get("description") or ""),
            link_ids=tuple(members),
            edges=tuple(edges),
            own_link_ids=tuple(own),
        )

    # GB/T codes, umbrella links and alias conflicts
    owner: dict[str, str] = {}
    for lid, link in links.items():
        for covered in link.covers:
            if covered not in links or covered == lid:
                raise CatalogueError(link_files[lid], lid, f"covers: '{covered}' is not another link of the catalogue")
        for code in link.gbt:
            if code not in codes:
                raise CatalogueError(link_files[lid], lid, f"unknown GB/T 4754-2017 code '{code}'")
        for name in (link.name, *link.aliases):
            key = normalize_text(name)
            other = owner.get(key)
            if other is not None and other != lid:
                raise CatalogueError(
                    link_files[lid], lid, f"alias '{name}' conflicts with link '{other}' ({link_files[other]})"
                )
            owner[key] = lid
    orphans = [lid for lid in links if not any(lid in c.link_ids for c in chains.values())]
    if orphans:
        raise CatalogueError(link_files[orphans[0]], orphans[0], "link belongs to no chain")
    catalogue = Catalogue(chains, links, source=str(directory))
    logger.info("catalogue loaded from %s: %s", directory, catalogue.stats())
    return catalogue


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The embedded catalogue, loaded once per process."""
    return load_catalogue()
