"""产业援疆 pairing: which provinces and cities aid each Xinjiang prefecture (``matcher/data/aiding.yaml``).

File format: a YAML list, one entry per prefecture / city / XPCC division::

    - prefecture: 伊犁哈萨克自治州        # official name (the key of :func:`load_aiding`)
      region_id: yili                     # snake_case pinyin id, as in the region files
      aliases: [伊犁州, 伊犁]
      aiding: [江苏省]                     # aiding provinces / municipalities (may be empty)
      cities: [苏州市, 张家港市]            # optional: aiding cities named in the sources
      counties: {江苏省: [巩留县, ...]}     # optional: which counties each aiding province pairs with

A region's own ``aiding`` list (in its region file) wins; otherwise :func:`aiding_for` looks the region up as a
county of a prefecture in this table, then walks up its parents (``巩留县`` → ``伊犁州`` → 江苏省).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from matcher.errors import RegionFileError
from matcher.knowledge.catalogue import DATA_DIR
from matcher.knowledge.regions import RegionBook
from matcher.records import Region, RegionLevel
from matcher.text import normalize_text
from matcher.yamlio import read_yaml

logger = logging.getLogger(__name__)

AIDING_FILE = DATA_DIR / "aiding.yaml"


@dataclass(frozen=True)
class AidingEntry:
    """One prefecture (or XPCC division) and the provinces / cities that aid it."""

    prefecture: str
    region_id: str
    aiding: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    counties: dict[str, tuple[str, ...]] = field(default_factory=dict)
    note: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the prefecture goes by: official name, id and aliases."""
        return (self.prefecture, self.region_id, *self.aliases)


class AidingTable:
    """Look-ups over the pairing entries by prefecture name/alias/id and by county name."""

    def __init__(self, entries: list[AidingEntry]) -> None:
        self.entries = entries
        self._by_name: dict[str, AidingEntry] = {}
        self._by_county: dict[str, list[str]] = {}
        for entry in entries:
            for name in entry.names:
                self._by_name[normalize_text(name)] = entry
            for province, counties in entry.counties.items():
                for county in counties:
                    self._by_county.setdefault(normalize_text(county), []).append(province)

    def prefecture(self, name: str) -> AidingEntry | None:
        """The entry of a prefecture by official name, short name or region id."""
        return self._by_name.get(normalize_text(name))

    def county(self, name: str) -> list[str]:
        """Aiding provinces paired with one county (empty if the table does not name it)."""
        return list(self._by_county.get(normalize_text(name), []))


def _as_tuple(value: object, path: Path, label: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RegionFileError(path.name, label, f"'{key}' must be a list, received {type(value).__name__}")
    return tuple(str(v) for v in value)


def parse_aiding(path: Path = AIDING_FILE) -> AidingTable:
    """Read and validate an aiding file.

    Raises:
        RegionFileError: naming the file, the entry and the problem (bad YAML, missing key, wrong type).
    """
    path = Path(path)
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as exc:
        raise RegionFileError(path.name, "-", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, list):
        raise RegionFileError(path.name, "-", "expected a list of {prefecture, region_id, aiding} entries")
    entries: list[AidingEntry] = []
    for i, item in enumerate(raw):
        label = str(item.get("prefecture", f"[{i}]")) if isinstance(item, dict) else f"[{i}]"
        if not isinstance(item, dict):
            raise RegionFileError(path.name, label, "an entry must be a mapping")
        for key in ("prefecture", "region_id", "aiding"):
            if key not in item:
                raise RegionFileError(path.name, label, f"missing required key '{key}'")
        counties_raw = item.get("counties") or {}
        if not isinstance(counties_raw, dict):
            raise RegionFileError(path.name, label, "'counties' must map an aiding province to a list of counties")
        aiding = _as_tuple(item["aiding"], path, label, "aiding")
        for province in counties_raw:
            if province not in aiding:
                raise RegionFileError(path.name, label, f"counties names '{province}', which is not in aiding {list(aiding)}")
        entries.append(
            AidingEntry(
                prefecture=str(item["prefecture"]),
                region_id=str(item["region_id"]),
                aiding=aiding,
                aliases=_as_tuple(item.get("aliases"), path, label, "aliases"),
                cities=_as_tuple(item.get("cities"), path, label, "cities"),
                counties={str(p): _as_tuple(c, path, label, "counties") for p, c in counties_raw.items()},
                note=str(item.get("note") or ""),
            )
        )
    logger.debug("loaded %d aiding entries from %s", len(entries), path)
    return AidingTable(entries)


@lru_cache(maxsize=1)
def default_aiding_table() -> AidingTable:
    """The embedded pairing table, loaded once per process."""
    return parse_aiding(AIDING_FILE)


def load_aiding(path: Path | None = None) -> dict[str, list[str]]:
    """Prefecture official name → aiding provinces/municipalities (e.g. ``伊犁哈萨克自治州`` → ``[江苏省]``)."""
    table = parse_aiding(path) if path else default_aiding_table()
    return {e.prefecture: list(e.aiding) for e in table.entries}


def aiding_for(region: Region | str, book: RegionBook, table: AidingTable | None = None) -> list[str]:
    """The provinces that aid a region: its own ``aiding``, else its county pairing, else its parents'.

    Args:
        region: a region record, or its id / name / alias in ``book``.
        book: the regions, to walk up ``parent`` links.
        table: the pairing table (default: the embedded one).

    Returns:
        Aiding provinces/municipalities, possibly empty when nothing along the parent chain is paired.

    Example:
        >>> aiding_for("巩留县", default_regions())  # doctest: +SKIP
        ['江苏省']
    """
    table = table or default_aiding_table()
    current: Region | None = book.get(region) if isinstance(region, str) else region
    seen: set[str] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.aiding:
            return list(current.aiding)
        if current.level in (RegionLevel.COUNTY, RegionLevel.PARK):
            for name in (current.name, *current.aliases):
                paired = table.county(name)
                if paired:
                    return paired
        if current.level == RegionLevel.PREFECTURE:
            for name in (current.id, current.name, *current.aliases):
                entry = table.prefecture(name)
                if entry is not None:
                    return list(entry.aiding)
        current = book.regions.get(current.parent) if current.parent else None
    return []
