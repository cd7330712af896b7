"""Request dependencies: the service state, the store, and the caller's API key / tenant, as Annotated aliases.

Routes declare what they need::

    @router.get("/regions/{region_id}")
    def get_region(region_id: str, tenant: TenantDep, svc: ServiceDep) -> Region: ...

Every ``/v1`` route depends on :func:`require_api_key` (set on the router), which checks ``X-API-Key`` (401),
applies the per-key rate limit (429 with ``Retry-After``) and records the tenant on ``request.state``.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from matcher.store.store import Store
from service.api.ratelimit import RateLimiter
from service.api.security import ApiKey, verify_api_key

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from matcher.knowledge.mapping import LinkMapper
    from matcher.ranking.engine import Engine
    from matcher.settings import Settings
    from service.api.observability import Metrics

__all__ = [
    "ApiError",
    "authenticate",
    "ApiKeyDep",
    "ServiceDep",
    "ServiceState",
    "StoreDep",
    "TenantDep",
    "require_api_key",
]

logger = logging.getLogger(__name__)

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key bound to a tenant (`chainmatch apikey create`)"
)


class ApiError(Exception):
    """An error answer: HTTP status and the JSON error body (code, Chinese message, field, value, allowed)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        value: Any = None,
        allowed: list[str] | None = None,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.field, self.value, self.allowed, self.headers = field, value, allowed, headers
        self.details = details
        super().__init__(f"{status} {code}: {message}")


class _ReadWriteLock:
    """Many readers (recommendations) or one writer (index swap) at a time; a waiting writer goes first.

    Without the writer preference a steady stream of overlapping reads kept the swap waiting for seconds.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class ServiceState:
    """What the app holds for its lifetime: settings, engine, rate limiter, metrics and the index refresher.

    Writes commit to the store in the request; the :class:`~service.api.refresher.IndexRefresher` brings them into
    the in-memory index (and the saved one) on its own thread, serialised with recommendations by a
    read-write lock so a ranking never sees a half-updated index.
    """

    def __init__(self, settings: Settings, engine: Engine) -> None:
        from service.api.refresher import IndexRefresher

        self.settings = settings
        self.engine = engine
        self.limiter = RateLimiter(settings.rate_limit_per_minute)
        self.metrics: Metrics | None = None
        self.index_lock = _ReadWriteLock()
        self.refresher = IndexRefresher(
            engine,
            self.index_lock.write,
            refresh_interval=settings.refresh_interval_s,
            persist_interval=settings.index_persist_interval_s,
            snapshot_interval=settings.snapshot_interval_s,
        )
        engine.snapshots.defer_save = True  # saved by the refresher's forked child, off the start path
        self.store.origin = self.refresher.origin  # our own writes are marked so the change feed skips them
        self.ready = threading.Event()  # the recommender is fitted: requests are served
        self._missing_since: float | None = None  # first /readyz that saw store rows the index lacks
        self.warmed = threading.Event()  # the start-up warm-up (gap index, query cache) is over
        self.warm_error: str | None = None

    @property
    def store(self) -> Store:
        return self.engine.ws.store

    @cached_property
    def mapper(self) -> LinkMapper:
        """Product → chain link mapper for profiles arriving through the API."""
        from matcher.knowledge.mapping import LinkMapper

        return LinkMapper(self.engine.catalogue)

    @property
    def pending(self) -> int:
        """Changed enterprises submitted for re-embedding and not yet in the index."""
        return self.refresher.pending

    def is_ready(self) -> bool:
        """The index is fitted (by the start-up warm-up or by the first request)."""
        if self.ready.is_set():
            return True
        # the warm-up failed but a later request fitted the index
        return self.warm_error is not None and getattr(self.engine, "_recommender", None) is not None

    def lag(self, stored: int | None) -> dict[str, float | int]:
        """How far the served index is behind the store: rows (queued + not yet seen) and seconds since the
        oldest of them. Rows the store holds and the index lacks with nothing queued (another process's writes
        the change feed has not delivered yet) count from when they were first noticed."""
        pending = self.pending
        missing = 0
        if stored is not None and self.ready.is_set():
            missing = max(0, stored - self.index_size() - pending)
        now = time.monotonic()
        if missing and self._missing_since is None:
            self._missing_since = now
        elif not missing:
            self._missing_since = None
        seconds = max(self.refresher.lag_seconds, now - self._missing_since if self._missing_since else 0.0)
        return {"rows": pending + missing, "seconds": round(seconds, 3)}

    def start_state(self) -> dict[str, str | int]:
        """How this process got its index: ``restored`` from the snapshot (with ``replayed`` feed changes) or
        ``fitted`` (``reason``: why no snapshot was used); and the snapshots it has saved since."""
        keeper = self.engine.snapshots
        return {"outcome": keeper.outcome or "loading", "reason": keeper.reason, "replayed": keeper.replayed,
                "snapshot_seq": keeper.saved_seq, "snapshots_saved": self.refresher.snapshots,
                "background_refits": self.refresher.refits}  # fmt: skip

    def index_size(self) -> int:
        rec = getattr(self.engine, "_recommender", None)
        return len(getattr(rec, "enterprises_", []) or []) if rec is not None else 0

    def warm(self) -> None:
        """Load the demo corpus into an empty store, fit the recommender and the gap index, warm the query
        cache, then follow the store's change log (other processes' writes) and catch the saved index (if any)
        up with the store."""
        try:
            cursor = self.store.last_change_seq()  # before the fit reads the store: nothing slips between
            with self.index_lock.write():
                self.engine.recommender()  # loads the demo corpus into an empty store first (under the engine lock)
            self.ready.set()
            logger.info("index ready: %d enterprises", self.index_size())
            self.engine.gap_index()  # the reverse-direction index (enterprise → regions) follows; built lazily otherwise
            logger.info("gap index ready")
            t0 = time.perf_counter()
            n = self.engine.warm_queries()
            logger.info("query cache warmed: %d catalogue needs in %.1f s", n, time.perf_counter() - t0)
        except Exception as exc:  # readiness reports it; requests will retry the fit
            self.warm_error = f"{type(exc).__name__}: {exc}"
            logger.exception("warm-up failed")
            return
        finally:
            self.warmed.set()
        self.refresher.follow(self.store, cursor)
        keeper = self.engine.snapshots
        if keeper.drifted(self.engine.recommender()):  # a start that replayed much: fresh statistics soon
            self.refresher.refit_soon()
        elif keeper.enabled and (keeper.saved_seq < keeper.seq or keeper.dirty):
            self.refresher.snapshot_soon()
        if self.settings.index_persist_interval_s > 0:
            self.refresher.catch_up()

    def refresh(self, ids: Sequence[str], tenant: str | None, wait: float, seqs: Sequence[int] = ()) -> str:
        """Queue ``ids`` for the index and wait up to ``wait`` seconds: 'updated' when the index already
        serves the change, else 'pending' (it will, within about ``refresh_interval_s`` plus the refresh).
        ``seqs``: the change-feed entries the write appended (the start-up snapshot's position follows them)."""
        if not ids:
            return "updated"
        future = self.refresher.submit([(eid, tenant) for eid in ids], seqs)
        if wait <= 0:
            return "updated" if future.done() and future.exception() is None else "pending"
        try:
            future.result(timeout=wait)
        except FutureTimeout:
            return "pending"
        except Exception:
            return "pending"  # the refresher logged it; the change is in the store and doctor --repair indexes it
        return "updated"

    def close(self, timeout: float | None = None) -> bool:
        """Stop the index workers (within ``timeout`` seconds when given); True when they finished."""
        self.closed_cleanly = self.refresher.close(timeout)
        return self.closed_cleanly


def get_service(request: Request) -> ServiceState:
    return request.app.state.service


ServiceDep = Annotated[ServiceState, Depends(get_service)]


def get_store(svc: ServiceDep) -> Store:
    return svc.store


StoreDep = Annotated[Store, Depends(get_store)]


def authenticate(svc: ServiceState, presented: str | None) -> ApiKey:
    """The active key for ``presented`` after the rate limit; raises the 401 / 429 ApiError otherwise."""
    if not presented:
        raise ApiError(
            401,
            "missing_api_key",
            "缺少 API 密钥：请在请求头 X-API-Key 中提供 (missing X-API-Key header)",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    key = verify_api_key(svc.store, presented)
    if key is None:
        raise ApiError(
            401,
            "invalid_api_key",
            "API 密钥无效或已吊销 (invalid or revoked API key)",
            headers={"WWW-Authenticate": "ApiKey"},
        )
    wait = svc.limiter.check(key.id)
    if wait:
        limit = svc.limiter.per_minute
        _rate_limited(svc, wait, f"请求过于频繁，请 {wait} 秒后重试 (rate limit of {limit}/min exceeded)")
    return key


def _rate_limited(svc: ServiceState, wait: int, message: str) -> NoReturn:
    """Count the refusal and answer 429 with ``Retry-After``."""
    if svc.metrics is not None:
        svc.metrics.rate_limited.inc()
    raise ApiError(429, "rate_limited", message, headers={"Retry-After": str(wait)})


def require_api_key(
    request: Request, svc: ServiceDep, x_api_key: Annotated[str | None, Security(api_key_header)] = None
) -> ApiKey:
    """The caller's active API key: checked (and rate limited) once per request by the app's
    :class:`service.api.app.ApiKeyMiddleware` before any body is read; checked here when the middleware is absent."""
    key = getattr(request.state, "api_key", None)
    if key is None:
        key = authenticate(svc, x_api_key)
        request.state.api_key = key
        request.state.tenant = key.tenant
    return key


ApiKeyDep = Annotated[ApiKey, Depends(require_api_key)]


def charge_work(request: Request, svc: ServiceState, rankings: int, what: str) -> None:
    """Charge a heavy request by its size: one rate-limit token per ranking beyond the one authentication took
    (429 with ``Retry-After`` and the cost when the key's allowance cannot cover it)."""
    key = getattr(request.state, "api_key", None)
    if key is None or rankings <= 1:
        return
    wait = svc.limiter.check(key.id, rankings - 1)
    if wait:
        _rate_limited(
            svc,
            wait,
            f"该请求需要 {rankings} 次排序（{what}），超出频率限额，请 {wait} 秒后重试 "
            f"(this request costs {rankings} rankings; rate limit of {svc.limiter.per_minute}/min)",
        )


def get_tenant(key: ApiKeyDep) -> str:
    return key.tenant


TenantDep = Annotated[str, Depends(get_tenant)]
