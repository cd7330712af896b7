"""Region and park profiles: authored YAML (``matcher/data/regions/*.yaml``), later the store and the API.

File format: a YAML list of regions::

    - id: manas
      name: 玛纳斯县
      level: 县市                  # 省 / 地州 / 县市 / 园区
      province: 新疆
      parent: changji              # id of the enclosing region
      aliases: [玛纳斯]
      aiding: [福建省]              # 产业援疆 pairing
      target_chains: [aluminium]
      residents:
        - name: 新疆嘉润资源控股有限公司
          links: [electrolytic_aluminium]
          integrated: [coal_power_generation]   # links its own integrated plant covers (自备电厂)
          chain_master: true
          capacity: 电解铝产能约80万吨, 可供铝水20万吨/年
          size: 大
      projects:                    # under way: 在建/投产 fill their links, 签约 only partly fills them
        - name: 南昌荣凯实业 铝棒、铝型材、再生铝项目
          links: [aluminium_rod, aluminium_profile, recycled_aluminium]
          status: 签约
          source: 中国日报网 2023-05 招商恳谈会报道
      endowments:                  # resource / factor facts with sources; sub-regions inherit them
        - {key: bauxite, value: false, note: 无铝土矿资源, source: http://chnria.com/hyxx/749.html}
      established:                 # industries present at scale by public statistics, no single firm on file
        - {links: [cotton_planting], note: 主要植棉县, source: 县统计公报}
      needs:
        - text: 铝水直供延伸电工圆铝杆、铝板带箔
          chain: aluminium
          links: [electrical_aluminium_rod, aluminium_sheet_strip]
          gap_type: 短链
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from matcher.errors import RegionFileError, UnknownRegionError
from matcher.knowledge.catalogue import DATA_DIR, Catalogue
from matcher.records import Region
from matcher.text import normalize_text, strip_internal_tags
from matcher.yamlio import read_yaml

logger = logging.getLogger(__name__)

REGIONS_DIR = DATA_DIR / "regions"


def parse_regions(path: Path, catalogue: Catalogue | None = None) -> list[Region]:
    """Regions of one YAML file, validated (and checked against the catalogue when given)."""
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise RegionFileError(Path(path).name, "-", f"not valid YAML: {exc}") from exc
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise RegionFileError(Path(path).name, "-", "expected a list of regions")
    out = []
    for i, entry in enumerate(raw):
        label = entry.get("id", f"[{i}]") if isinstance(entry, dict) else f"[{i}]"
        try:
            region = Region.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise RegionFileError(Path(path).name, str(label), f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
        if catalogue is not None:
            check_region(region, catalogue, Path(path).name)
        out.append(without_internal_tags(region))
    return out


def without_internal_tags(region: Region) -> Region:
    """The region without the authoring tags ("(seed 002)", "(public fact)") in its user-facing text."""
    region.description = strip_internal_tags(region.description)
    for r in region.residents:
        r.capacity, r.note = strip_internal_tags(r.capacity), strip_internal_tags(r.note)
    for n in region.needs:
        n.text = strip_internal_tags(n.text)
    return region


def check_region(region: Region, catalogue: Catalogue, source: str = "region") -> None:
    """Every chain and link a region names must exist in the catalogue."""
    for c in region.target_chains:
        if c not in catalogue.chains:
            raise RegionFileError(source, region.id, f"target chain '{c}' is not in the catalogue")
    for r in region.residents:
        for lid in (*r.links, *r.integrated):
            if lid not in catalogue.links:
                raise RegionFileError(source, f"{region.id}/{r.name}", f"unknown link '{lid}'")
    for p in (*region.projects, *region.established):
        for lid in p.links:
            if lid not in catalogue.links:
                raise RegionFileError(source, f"{region.id}/{getattr(p, 'name', 'established')}", f"unknown link '{lid}'")
    for n in region.needs:
        if n.chain and n.chain not in catalogue.chains:
            raise RegionFileError(source, f"{region.id}/need", f"unknown chain '{n.chain}'")
        for lid in n.links:
            if lid not in catalogue.links:
                raise RegionFileError(source, f"{region.id}/need", f"unknown link '{lid}'")


class RegionBook:
    """Regions by id with name/alias look-up."""

    def __init__(self, regions: list[Region]) -> None:
        self.regions: dict[str, Region] = {}
        self._names: dict[str, str] = {}
        for r in regions:
            self.add(r)

    def add(self, region: Region) -> None:
        self.regions[region.id] = region
        for name in (region.id, region.name, *region.aliases):
            self._names[normalize_text(name)] = region.id

    def get(self, key: str, tenant: str | None = None) -> Region:
        rid = self._names.get(normalize_text(key))
        region = self.regions.get(rid) if rid else None
        if region is None or (region.tenant is not None and region.tenant != tenant):
            raise UnknownRegionError(key, sorted(r.name for r in self.regions.values() if r.tenant is None))
        return region

    def children(self, region_id: str) -> list[Region]:
        return [r for r in self.regions.values() if r.parent == region_id]

    def __iter__(self):
        return iter(self.regions.values())

    def __len__(self) -> int:
        return len(self.regions)


def load_regions(directory: Path | None = None, catalogue: Catalogue | None = None) -> RegionBook:
    """Every region file of ``directory`` (default: the embedded demo regions)."""
    directory = Path(directory) if directory else REGIONS_DIR
    regions: list[Region] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        for r in parse_regions(path, catalogue):
            if r.id in seen:
                raise RegionFileError(path.name, r.id, f"duplicate region id (also in {seen[r.id]})")
            seen[r.id] = path.name
            regions.append(r)
    book = RegionBook(regions)
    for r in regions:
        if r.parent and r.parent not in book.regions:
            raise RegionFileError(seen[r.id], r.id, f"parent '{r.parent}' is not a known region")
    for r in regions:
        path, up = [r.id], r.parent
        while up is not None and up not in path:
            path.append(up)
            up = book.regions[up].parent
        if up is not None:
            raise RegionFileError(seen[r.id], r.id, f"parent chain loops: {' → '.join([*path, up])}")
    logger.info("loaded %d regions from %s", len(regions), directory)
    return book


@lru_cache(maxsize=1)
def default_regions() -> RegionBook:
    from matcher.knowledge.catalogue import default_catalogue

    return load_regions(catalogue=default_catalogue())
