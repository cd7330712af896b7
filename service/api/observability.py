"""Operations: request ids, structured JSON logs and Prometheus metrics.

- Every request gets an id: the caller's ``X-Request-ID`` when it is sane (≤ 128 characters of letters, digits and
  ``-_.:``), else a new one; it is echoed in the response header and attached to every log record written while
  the request runs (``request_id``).
- :class:`JsonFormatter` writes one JSON object per log line (``ts``, ``level``, ``logger``, ``message``,
  ``request_id`` and any ``extra`` fields); ``chainmatch serve`` installs it.
- :class:`Metrics` owns a private registry (so several apps can live in one process, e.g. in tests): request
  latency histograms per route template, request counts by status, the index size and the pending re-embeds.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JsonFormatter",
    "Metrics",
    "RequestContextMiddleware",
    "RouteTemplates",
    "configure_json_logging",
    "current_request_id",
]

logger = logging.getLogger("service.access")

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


def current_request_id() -> str:
    """The id of the request being served ('-' outside a request)."""
    return _request_id.get()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, request_id, extras, exc (when any)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", _request_id.get()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route the root logger (and uvicorn's) to stderr as JSON lines with request ids."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our own access line carries the request id


class Metrics:
    """The service's Prometheus metrics in a private registry.

    Args:
        index_size: returns the number of enterprises in the fitted index (0 before fitting).
        pending: returns the number of changed enterprises not yet re-embedded into the index.
        unsaved: returns the number of enterprises the saved index does not hold yet.
    """

    def __init__(
        self, index_size: Callable[[], int], pending: Callable[[], int], unsaved: Callable[[], int] = lambda: 0
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "chainmatch_request_duration_seconds",
            "Request latency by route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.requests = Counter(
            "chainmatch_requests",
            "Requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "chainmatch_index_size", "Enterprises in the fitted index.", registry=self.registry
        )
        self.pending = Gauge(
            "chainmatch_pending_reembeds",
            "Changed enterprises waiting to be re-embedded.",
            registry=self.registry,
        )
        self.unsaved = Gauge(
            "chainmatch_index_unsaved",
            "Enterprises served by the in-memory index but not yet written into the saved index.",
            registry=self.registry,
        )
        self.refresh = Histogram(
            "chainmatch_index_refresh_seconds",
            "Duration of one index refresh (prepare + swap) on the refresher thread.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.rate_limited = Counter(
            "chainmatch_rate_limited", "Requests refused by the rate limiter.", registry=self.registry
        )
        self.cancelled = Counter(
            "chainmatch_cancelled",
            "Requests whose work stopped because the client disconnected, by route.",
            ["route"],
            registry=self.registry,
        )
        self._gauges = ((self.index_size, index_size), (self.pending, pending), (self.unsaved, unsaved))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.latency.labels(method, route).observe(seconds)
        self.requests.labels(method, route, str(status)).inc()

    def render(self) -> bytes:
        """The exposition text (gauges refreshed first)."""
        for gauge, fn in self._gauges:
            try:
                gauge.set(fn())
            except Exception as exc:  # a metric must never break the scrape
                logging.getLogger(__name__).warning("metric not available: %s", exc)
        return generate_latest(self.registry)


class RouteTemplates:
    """Maps a request path to its route template (``/v1/regions/{region_id}``) from the app's OpenAPI paths,
    so metrics are labelled per route, never per id (bounded label cardinality)."""

    def __init__(self, paths: Callable[[], list[str]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def match(self, path: str) -> str:
        if self._compiled is None:
            from starlette.routing import compile_path

            paths = sorted(self._paths(), key=lambda p: p.count("{"))  # literal segments win over parameters
            self._compiled = [(compile_path(p)[0], p) for p in paths]
        for regex, template in self._compiled:
            if regex.match(path):
                return template
        if path == "/":
            return "/"
        return "/static" if path.startswith("/static/") else "unmatched"


class RequestContextMiddleware:
    """Pure ASGI middleware: request id in and out, one access log line, latency metrics per route template."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics | None = None, templates: RouteTemplates | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = _request_id.set(rid)
        status = 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - t0
            template = self.templates.match(scope["path"]) if self.templates is not None else scope["path"]
            if self.metrics is not None:
                self.metrics.observe(scope["method"], template, status, seconds)
            logger.info(
                "%s %s %d %.1fms",
                scope["method"],
                template,
                status,
                seconds * 1000,
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                    "tenant": scope.get("state", {}).get("tenant"),
                },
            )
            _request_id.reset(token)
