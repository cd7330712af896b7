"""The API's routers, collected in one place: every ``/v1`` route requires an API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from service.api.deps import require_api_key
from service.api.routes import (
    catalogue,
    enterprises,
    exports,
    leads,
    ops,
    recommendations,
    regions,
    session,
    signals,
)
from service.api.schemas import ErrorResponse

__all__ = ["ERROR_RESPONSES", "api_router", "ops_router"]

ERROR_RESPONSES: dict[int | str, dict] = {
    400: {"model": ErrorResponse, "description": "malformed request body (not parseable)"},
    401: {"model": ErrorResponse, "description": "missing, invalid or revoked API key"},
    403: {"model": ErrorResponse, "description": "the shared corpus is read-only to tenants"},
    404: {"model": ErrorResponse, "description": "unknown (or another tenant's) id"},
    409: {"model": ErrorResponse, "description": "conflict with an existing row"},
    413: {"model": ErrorResponse, "description": "request body over the upload limit"},
    422: {"model": ErrorResponse, "description": "invalid input: field, value and reason"},
    429: {"model": ErrorResponse, "description": "rate limit spent; see Retry-After"},
    500: {"model": ErrorResponse, "description": "unexpected error (logged with the request id)"},
    503: {"model": ErrorResponse, "description": "index not ready yet"},
}
"""Error answers every ``/v1`` route may give (all share the :class:`ErrorResponse` body)."""

api_router = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], responses=ERROR_RESPONSES)
api_router.include_router(regions.router)
api_router.include_router(exports.router)
api_router.include_router(recommendations.router)
api_router.include_router(enterprises.router)
api_router.include_router(leads.router)
api_router.include_router(catalogue.router)
api_router.include_router(session.router)
api_router.include_router(signals.router)

ops_router = ops.router
