"""Who am I: the tenant and key behind the request (the staff page shows it; CRMs use it to check a key)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import ApiKeyDep, ServiceDep

router = APIRouter(tags=["session 会话"])


class Me(BaseModel):
    tenant: str
    key_id: str
    key_name: str
    rate_limit_per_minute: int


@router.get("/me", response_model=Me, summary="当前租户 The tenant and API key of this request")
def me(key: ApiKeyDep, svc: ServiceDep) -> Me:
    return Me(
        tenant=key.tenant, key_id=key.id, key_name=key.name, rate_limit_per_minute=svc.limiter.per_minute
    )
