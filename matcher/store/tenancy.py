"""Tenancy: the shared corpus (``tenant=None``) versus a tenant's private rows; tenant names and scoped ids."""

from __future__ import annotations

import re

from matcher.errors import ChainMatchError, InvalidRequestError

__all__ = ["ALL_TENANTS", "SharedCorpusReadOnlyError", "scoped_id"]

ALL_TENANTS = "*"


_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SharedCorpusReadOnlyError(ChainMatchError, PermissionError):
    """A tenant tried to change or delete a row of the shared corpus."""

    code = "shared_read_only"

    def __init__(self, kind: str, key: str, tenant: str) -> None:
        self.kind, self.key, self.tenant = kind, key, tenant
        super().__init__(
            f"{kind} '{key}' belongs to the shared corpus, which is read-only to tenant '{tenant}' "
            "(expected one of the tenant's own rows)"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def check_tenant(tenant: str | None, *, allow_all: bool = False) -> str | None:
    """Validate a tenant name (letters, digits, ``_.-``, ≤ 64 chars); ``None`` is the shared corpus."""
    if tenant is None or (allow_all and tenant == ALL_TENANTS):
        return tenant
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise InvalidRequestError(
            "tenant", tenant, "expected 1-64 characters of letters, digits, '_', '.', '-' (no ':')"
        )
    return tenant


def scoped_id(enterprise_id: str, tenant: str | None) -> str:
    """The stored (globally unique) id of an enterprise: ``id`` for the shared corpus, ``{tenant}:{id}`` else."""
    if tenant is None or enterprise_id.startswith(f"{tenant}:"):
        return enterprise_id
    return f"{tenant}:{enterprise_id}"
