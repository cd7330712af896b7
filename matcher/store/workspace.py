"""The workspace: the catalogue, regions (embedded demo + store) and the store, opened from settings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property

from matcher.knowledge.catalogue import Catalogue, default_catalogue
from matcher.knowledge.located import located_lookup, located_presence
from matcher.knowledge.regions import RegionBook, default_regions
from matcher.records import Region
from matcher.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class Workspace:
    """Everything a job needs, opened lazily from one Settings object."""

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None) -> None:
        self.settings = settings
        self.catalogue = catalogue or default_catalogue()

    @classmethod
    def open(cls, settings: Settings | None = None) -> Workspace:
        return cls(settings or get_settings())

    @cached_property
    def store(self):  # -> matcher.store.store.Store
        from matcher.store.store import Store

        self.settings.ensure_dirs()
        return Store(self.settings.database_url)

    def regions(self, tenant: str | None = None) -> RegionBook:
        """Embedded demo regions overlaid with the store's regions (a store region replaces a demo one by id)."""
        regions = {r.id: r for r in default_regions()}
        try:
            stored = self.store.list_regions(tenant)
        except Exception as exc:  # store not initialised or unreachable: demo regions still work
            logger.debug("store regions unavailable: %s", exc)
            stored = []
        for r in stored:
            regions[r.id] = r
        return RegionBook(list(regions.values()))

    def located_presence(self, region: Region, book: RegionBook, tenant: str | None = None) -> dict[str, list[str]]:
        """Links made by stored firms registered in the region (by province/city/county); {} without a store."""
        try:
            firms = self.store.enterprises_in_province(region.province, tenant)
        except Exception as exc:  # store not initialised or unreachable: the diagnosis still works without it
            logger.debug("store enterprises unavailable: %s", exc)
            return {}
        return located_presence(region, firms, self.catalogue, book)

    def located_for(self, book: RegionBook, tenant: str | None = None) -> Callable[[Region], dict[str, list[str]]]:
        """:meth:`located_presence` for any region of ``book`` (firms read once per province); {} without a store."""

        def firms_in(province: str) -> list:
            try:
                return list(self.store.enterprises_in_province(province, tenant))
            except Exception as exc:  # store not initialised or unreachable: the diagnosis still works without it
                logger.debug("store enterprises unavailable: %s", exc)
                return []

        return located_lookup(firms_in, self.catalogue, book)
