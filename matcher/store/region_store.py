"""Region rows of the store (shared and per tenant)."""

from __future__ import annotations

from sqlalchemy import (
    or_,
    select,
)
from sqlalchemy.orm import Session

from matcher.errors import UnknownRegionError
from matcher.records import Enterprise, Region
from matcher.store.database import _now
from matcher.store.db_models import EnterpriseRow, RegionRow
from matcher.store.tenancy import SharedCorpusReadOnlyError, check_tenant
from matcher.text import normalize_text

__all__ = ["RegionStore"]


class RegionStore:
    """Region profiles of :class:`Store`: shared regions, and a tenant's own overriding them for that tenant.

    A mixin: it relies on the store's ``transaction()``, ``_reader()`` and ``_visible()``.
    """

    def enterprises_in_province(self, province: str, tenant: str | None = None) -> list[Enterprise]:
        """Enterprises visible to ``tenant`` registered in ``province`` (e.g. 新疆): who is located in a region."""
        e = EnterpriseRow
        visible = self._visible(check_tenant(tenant, allow_all=True))
        stmt = select(e.profile).where(visible, e.province == province).order_by(e.id)
        with self._reader() as session:
            return [Enterprise.model_validate(r.profile) for r in session.execute(stmt).all()]

    # --- regions ------------------------------------------------------------------------------------------------
    @staticmethod
    def _region_key(region_id: str, tenant: str | None) -> str:
        return region_id if tenant is None else f"{tenant}:{region_id}"

    def upsert_region(self, region: Region) -> None:
        """Insert or replace a region; ``region.tenant`` decides whether it is shared or a tenant's own.

        A tenant's region with the same id as a shared one overrides it for that tenant only.
        """
        tenant = check_tenant(region.tenant)
        key = self._region_key(region.id, tenant)
        now = _now()
        profile = region.model_dump(mode="json")
        with self.transaction() as session:
            row = session.get(RegionRow, key)
            if row is None:
                session.add(RegionRow(key=key, id=region.id, tenant=tenant, profile=profile, updated_at=now))
            elif row.profile != profile:
                row.profile = profile
                row.updated_at = now

    def _visible_regions(self, session: Session, tenant: str | None) -> dict[str, Region]:
        r = RegionRow
        cond = r.tenant.is_(None) if tenant is None else or_(r.tenant.is_(None), r.tenant == tenant)
        out: dict[str, Region] = {}
        for row in session.execute(
            select(r.id, r.tenant, r.profile).where(cond).order_by(r.tenant.is_(None).desc())
        ):
            out[row.id] = Region.model_validate(row.profile)  # shared first, the tenant's own overrides
        return dict(sorted(out.items()))

    def get_region(self, region_id: str, tenant: str | None = None) -> Region:
        """A region by id (or exact name / alias) as ``tenant`` sees it: its own version first, else the shared one.

        Raises:
            UnknownRegionError: not found; the message lists the region ids visible to ``tenant``.
        """
        tenant = check_tenant(tenant)
        with self._reader() as session:
            keys = [self._region_key(region_id, tenant)] + ([region_id] if tenant is not None else [])
            for key in keys:
                row = session.get(RegionRow, key)
                if row is not None:
                    return Region.model_validate(row.profile)
            regions = self._visible_regions(session, tenant)
        wanted = normalize_text(region_id)
        for region in regions.values():
            if wanted in {normalize_text(n) for n in (region.name, *region.aliases)}:
                return region
        raise UnknownRegionError(region_id, sorted(regions))

    def list_regions(self, tenant: str | None = None) -> list[Region]:
        """Regions ``tenant`` sees (shared ones, overridden by its own of the same id), sorted by id."""
        tenant = check_tenant(tenant)
        with self._reader() as session:
            return list(self._visible_regions(session, tenant).values())

    def delete_region(self, region_id: str, tenant: str | None = None) -> None:
        """Delete a region: a tenant its own; ``tenant=None`` the shared one.

        Raises:
            UnknownRegionError: no such region for ``tenant``.
            SharedCorpusReadOnlyError: a tenant tried to delete a shared region.
        """
        tenant = check_tenant(tenant)
        with self.transaction() as session:
            row = session.get(RegionRow, self._region_key(region_id, tenant))
            if row is None:
                if tenant is not None and session.get(RegionRow, region_id) is not None:
                    raise SharedCorpusReadOnlyError("region", region_id, tenant)
                raise UnknownRegionError(region_id)
            session.delete(row)
