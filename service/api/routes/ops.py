"""Operations endpoints (no API key): liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from matcher.store import ALL_TENANTS
from service.api.deps import ServiceDep

router = APIRouter(tags=["operations 运维"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: store reachable and index loaded (503 until then)",
    responses={503: {"description": "not ready yet (index loading or store unreachable)"}},
)
def readyz(svc: ServiceDep) -> JSONResponse:
    checks: dict[str, str] = {}
    stored: int | None = None
    try:
        stored = svc.store.count_enterprises(ALL_TENANTS)
        checks["store"] = "ok"
    except Exception as exc:  # report, never raise: this is the probe
        checks["store"] = f"error: {type(exc).__name__}"
    checks["index"] = (
        "ok" if svc.is_ready() else ("error: " + svc.warm_error if svc.warm_error else "loading")
    )
    lag = svc.lag(stored)
    bound = svc.settings.ready_max_lag_s
    if checks["index"] == "ok" and lag["seconds"] > bound:
        checks["index"] = f"behind: {lag['rows']} rows, {lag['seconds']:.0f} s (bound {bound:g} s)"
    ok = all(v == "ok" for v in checks.values())
    # informational, never a reason for 503: the gap index and the query cache are built after readiness
    checks["warmup"] = "done" if svc.warmed.is_set() else ("failed" if svc.warm_error else "running")
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": checks,
        "index_size": svc.index_size(),
        "pending_reembeds": svc.pending,
        "lag": lag,
        "start": svc.start_state(),
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(svc: ServiceDep) -> Response:
    data = svc.metrics.render() if svc.metrics is not None else b""
    return Response(data, media_type=CONTENT_TYPE_LATEST)
