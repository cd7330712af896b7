"""The API's routers, collected in one place: every ``/v1`` route requires an API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.deps import require_api_key
from service.routes import catalogue, enterprises, exports, leads, ops, recommendations, regions, session

__all__ = ["api_router", "ops_router"]

api_router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
api_router.include_router(regions.router)
api_router.include_router(exports.router)
api_router.include_router(recommendations.router)
api_router.include_router(enterprises.router)
api_router.include_router(leads.router)
api_router.include_router(catalogue.router)
api_router.include_router(session.router)

ops_router = ops.router
