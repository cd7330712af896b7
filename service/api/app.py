"""The FastAPI application: the versioned JSON API (``/v1``), the staff web page (``/``) and operations endpoints.

::

    app = create_app(settings)        # uvicorn service.api.app:app, or `chainmatch serve`

- every ``/v1`` route needs ``X-API-Key`` (a key bound to a tenant; see :mod:`service.api.security`);
- errors are JSON ``{"error": {"code", "message", "field", "value", "allowed"}}`` — a stable English code and a
  Chinese message; unexpected exceptions are logged with the request id and answered with a bare 500;
- ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus) need no key; OpenAPI docs are at ``/docs``;
- on start the demo corpus is loaded into an empty store and the index is fitted in the background
  (``/readyz`` answers 503 until it is ready; requests that arrive earlier wait for the fit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from matcher.errors import ChainMatchError
from matcher.settings import Settings, get_settings
from matcher.store.database import is_statement_timeout
from service.api.deps import ApiError, ServiceState, authenticate
from service.api.disconnect import ClientGone, DisconnectWatchMiddleware, HttpMiddleware
from service.api.observability import Metrics, RequestContextMiddleware, RouteTemplates, current_request_id
from service.api.routes import api_router, ops_router
from service.api.schemas import text_problem

__all__ = ["STATIC_DIR", "create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
API_VERSION = "1.0.0"

# ChainMatchError.code -> (HTTP status, Chinese message prefix, field the error is about)
_ERRORS: dict[str, tuple[int, str, str | None]] = {
    "unknown_chain": (422, "未知产业链", "chain"),
    "unknown_link": (422, "未知产业链环节", "link"),
    "unknown_region": (404, "未找到地区", "region_id"),
    "unknown_enterprise": (404, "未找到企业", "enterprise_id"),
    "unknown_lead": (404, "未找到线索", "lead_id"),
    "unknown_api_key": (404, "未找到 API 密钥", "key_id"),
    "invalid_request": (422, "请求参数无效", None),
    "invalid_transition": (422, "线索状态不能这样变更", "status"),
    "shared_read_only": (403, "共享数据对租户只读，不能修改或删除", None),
    "store_conflict": (409, "数据冲突", None),
    "import_file_invalid": (422, "文件无法导入", "file"),
    "region_file_invalid": (422, "地区数据无效", None),
    "catalogue_invalid": (500, "产业链目录无效", None),
    "not_fitted": (503, "索引尚未就绪，请稍后重试", None),
    "query_timeout": (503, "查询超时，已取消，请换更具体的条件重试", None),
}
_HTTP_CODES = {
    400: ("bad_request", "请求无效"),
    401: ("unauthorized", "未认证"),
    403: ("forbidden", "无权访问"),
    404: ("not_found", "未找到该资源"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("payload_too_large", "请求体过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}
_VALIDATION_ZH = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_too_long": "过长",
    "string_too_short": "过短",
    "too_long": "条目过多",
    "too_short": "条目过少",
    "string_pattern_mismatch": "格式不正确",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "greater_than": "数值过小",
    "less_than": "数值过大",
    "enum": "不是允许的取值",
    "literal_error": "不是允许的取值",
    "int_parsing": "应为整数",
    "float_parsing": "应为数字",
    "bool_parsing": "应为布尔值",
    "json_invalid": "不是有效的 JSON",
    "model_attributes_type": "应为对象",
    "dict_type": "应为对象",
    "list_type": "应为列表",
    "string_type": "应为字符串",
}


def _json_value(value: Any) -> Any:
    try:
        value = jsonable_encoder(value)
    except Exception:  # anything odd becomes its text
        value = str(value)
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, (list, dict)) and len(str(value)) > 500:
        return None  # whole bodies are not echoed back
    return value


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    value: Any = None,
    allowed: list[str] | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The JSON error answer every failure uses."""
    body: dict[str, Any] = {"code": code, "message": message, "field": field, "value": _json_value(value)}
    if allowed is not None:
        body["allowed"] = [str(a) for a in allowed][:100]
    if details is not None:
        body["details"] = details
    return JSONResponse(json_safe({"error": body}), status_code=status, headers=headers)


def json_safe(obj: Any) -> Any:
    """``obj`` with every string made encodable (lone surrogates replaced) and NaN/Infinity as null, so echoing
    a bad input back in an error can never fail to render."""
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8") if not obj.isascii() else obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {json_safe(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form", "file"):
        parts = parts[1:]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _unparsable_body(exc: StarletteHTTPException) -> JSONResponse | None:
    """FastAPI answers a body it cannot decode with a bare 400; JSON nested too deeply for the parser and bytes
    that are not UTF-8 get a 422 saying which (never a 500)."""
    if exc.status_code != 400:
        return None
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return error_response(
            422, "json_too_deep", "请求体 JSON 嵌套过深，无法解析 (JSON body nested too deeply)", "body"
        )
    if isinstance(cause, UnicodeDecodeError):
        return error_response(
            422,
            "body_not_utf8",
            f"请求体不是有效的 UTF-8 编码 (JSON body is not valid UTF-8: "
            f"{cause.reason} at byte {cause.start})",
            "body",
        )
    return None


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientGone)
    async def _client_gone(_: Request, exc: ClientGone) -> JSONResponse:
        # nobody reads this answer: 499 (nginx's "client closed request") keeps the access log honest
        return error_response(499, "client_closed_request", f"客户端已断开，{exc} 已停止 (client disconnected)")

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        if is_statement_timeout(exc):  # the bounded-work guarantee, said plainly: 503, not a 500
            logger.warning("statement cancelled at the timeout: %s", str(exc.statement or "")[:200])
            return error_response(503, "query_timeout", f"{_ERRORS['query_timeout'][1]} (statement timeout)")
        logger.error("database error: %s", exc)
        return error_response(500, "internal_error", f"服务器内部错误 (database error, request {current_request_id()})")

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, exc.code, exc.message, exc.field, exc.value, exc.allowed,
            details=getattr(exc, "details", None), headers=exc.headers,
        )  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid", "type": "value_error"}
        field = _field(first.get("loc", ()))
        zh = _VALIDATION_ZH.get(first.get("type", ""), "无效")
        details = [
            {"field": _field(e.get("loc", ())), "reason": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors[:20]
        ]
        return error_response(
            422,
            "validation_error",
            f"请求参数无效：{field} {zh} ({first.get('msg', '')})",
            field,
            first.get("input"),
            details=details,
        )

    @app.exception_handler(ChainMatchError)
    async def _domain(_: Request, exc: ChainMatchError) -> JSONResponse:
        status, zh, field = _ERRORS.get(exc.code, (400, "请求无法处理", None))
        value = getattr(exc, "key", None)
        allowed = None
        if exc.code == "invalid_request":
            field, value = getattr(exc, "field", None), getattr(exc, "value", None)
        elif exc.code == "invalid_transition":
            value = exc.requested.value  # type: ignore[attr-defined]
            allowed = [s.value for s in exc.allowed]  # type: ignore[attr-defined]
        elif exc.code == "shared_read_only":
            field, value = getattr(exc, "kind", None), getattr(exc, "key", None)
        if status >= 500:
            logger.error("%s: %s", exc.code, exc)
        return error_response(status, exc.code, f"{zh}：{exc}", field, value, allowed)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unparsable = _unparsable_body(exc)
        if unparsable is not None:
            return unparsable
        code, zh = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", "请求失败"))
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
        return error_response(exc.status_code, code, f"{zh} ({exc.detail})", headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first matching route's)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            methods.add(method)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


class CatchAllMiddleware(HttpMiddleware):
    """Any exception that escapes the app is logged (with the request id) and answered with a JSON 500."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            rid = current_request_id()
            response = error_response(
                500, "internal_error", f"服务器内部错误，请凭请求编号 {rid} 联系管理员 (internal error)"
            )
            await response(scope, receive, send)


class ApiKeyMiddleware:
    """Checks ``X-API-Key`` (401) and the key's rate limit (429) on every ``/v1`` request before the app reads the
    body, so nothing about a request — not even its validation errors — is answered to an unauthenticated caller."""

    def __init__(self, app: ASGIApp, svc: ServiceState, prefix: str = "/v1/") -> None:
        self.app = app
        self.svc = svc
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith(self.prefix)
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope.get("headers", []):
            if name == b"x-api-key":
                presented = value.decode("latin-1")
                break
        try:
            key = await run_in_threadpool(authenticate, self.svc, presented)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, headers=exc.headers)
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["api_key"] = key
        state["tenant"] = key.tenant
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware(HttpMiddleware):
    """Refuse request bodies over ``limit`` bytes with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    response = self._too_large()
                    await response(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, f"request body over {self.limit // (1024 * 1024)} MB")
            return message

        await self.app(scope, limited, send)

    def _too_large(self) -> JSONResponse:
        mb = self.limit // (1024 * 1024)
        return error_response(413, "payload_too_large", f"请求体超过 {mb} MB 上限 (request body too large)")


class QueryTextGuardMiddleware(HttpMiddleware):
    """Refuse a query string holding NUL or text that is not valid UTF-8 (422 naming the parameter) before any
    route sees it, the same on SQLite and PostgreSQL (PostgreSQL rejects NUL in text; SQLite would store it)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: bytes = scope.get("query_string", b"")
        if b"%" in raw:  # NUL and non-UTF-8 bytes can only arrive percent-encoded
            for part in raw.split(b"&"):
                name, _, value = part.partition(b"=")
                try:
                    problem = text_problem(unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8"))
                except UnicodeDecodeError:
                    problem = "不是有效的 UTF-8 文本 (not valid UTF-8)"
                if problem:
                    field = unquote_to_bytes(name).decode("utf-8", "replace")
                    response = error_response(422, "validation_error", f"请求参数无效：{field} {problem}", field)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware(HttpMiddleware):
    """nosniff, no framing, no referrer; a strict Content-Security-Policy outside the OpenAPI docs."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        docs = scope["path"].startswith(("/docs", "/redoc"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if not docs:
                    headers.append((b"content-security-policy", _CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _install_docs(app: FastAPI) -> None:
    """Interactive API docs at ``/docs`` with Swagger UI 5's JS and CSS from the ``fastapi-offline`` package
    (FastAPI's default page loads them from a CDN, which an offline deployment cannot reach)."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )


def create_app(settings: Settings | None = None, engine: Any = None, *, warm: bool = True) -> FastAPI:
    """Build the service.

    Args:
        settings: configuration (default: from the environment).
        engine: a ready :class:`matcher.ranking.engine.Engine` (default: opened from ``settings``).
        warm: load the demo corpus and fit the index in the background at start-up.

    Returns:
        The FastAPI app; its state (engine, limiter, metrics) is ``app.state.service``.
    """
    settings = settings or get_settings()
    if engine is None:
        from matcher.ranking.engine import Engine

        engine = Engine.open(settings)
    svc = ServiceState(settings, engine)
    svc.metrics = Metrics(
        index_size=svc.index_size, pending=lambda: svc.pending, unsaved=lambda: svc.refresher.unsaved
    )
    svc.refresher.on_refresh = svc.metrics.refresh.observe

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        thread = None
        if warm:
            thread = threading.Thread(target=svc.warm, name="chainmatch-warm", daemon=True)
            thread.start()
        else:
            svc.warmed.set()  # nothing to wait for: the first request fits the index
        try:
            yield
        finally:
            # bounded: a warm-up or an index catch-up still running must not hold a shutdown past its grace period
            deadline = time.monotonic() + settings.shutdown_timeout_s
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
            svc.close(timeout=max(0.5, deadline - time.monotonic()))

    app = FastAPI(
        title="ChainMatch 链式招商智能匹配 API",
        version=API_VERSION,
        description=(
            "Diagnose regions' industry-chain gaps (缺链/短链/弱链) and rank the enterprises that could fill them.\n\n"
            "Every `/v1` route needs an `X-API-Key` header (`chainmatch apikey create --tenant T`). Errors are "
            '`{"error": {"code", "message", "field", "value"}}`.'
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from the packaged Swagger UI: the page works without internet
        redoc_url=None,
    )
    app.state.service = svc
    _install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(ops_router)

    @app.get("/", include_in_schema=False)
    def staff_page() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_docs(app)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After", "Content-Disposition"],
        )
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.max_upload_mb * 1024 * 1024)
    app.add_middleware(QueryTextGuardMiddleware)
    app.add_middleware(ApiKeyMiddleware, svc=svc)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    templates = RouteTemplates(lambda: list(app.openapi().get("paths", {})))
    app.add_middleware(RequestContextMiddleware, metrics=svc.metrics, templates=templates)
    app.add_middleware(DisconnectWatchMiddleware)  # outermost: it alone reads the client's channel
    return app


def create_worker_app() -> FastAPI:
    """The app of one ``chainmatch serve --workers N`` process (settings from the environment)."""
    import os

    if os.environ.get("CHAINMATCH_JSON_LOGS", "1") == "1":
        from service.api.observability import configure_json_logging

        configure_json_logging(logging.INFO)
    return create_app()
