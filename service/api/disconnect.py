"""The pure-ASGI middleware base of the API, and work that stops when the client goes away.

:class:`DisconnectWatchMiddleware` reads the ASGI ``receive`` channel on its own task for the whole request and sets a
``threading.Event`` (``request.state.client_gone``) when the client disconnects. Sync route handlers run in worker
threads, where they cannot await anything: long loops (a region's shortlists, exports) call :func:`check_client`
between units of work, which raises :class:`ClientGone` — the work stops, a metric counts it, and the (unread)
response is a 499.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

__all__ = ["ClientGone", "DisconnectWatchMiddleware", "HttpMiddleware", "check_client"]


class ClientGone(Exception):
    """The client disconnected while its request was being served."""


class HttpMiddleware:
    """Pure-ASGI middleware base: non-HTTP scopes (lifespan, websocket) pass straight through to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        raise NotImplementedError


class DisconnectWatchMiddleware(HttpMiddleware):
    """Sets ``scope["state"]["client_gone"]`` when ``http.disconnect`` arrives, while the app runs."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = threading.Event()
        scope.setdefault("state", {})["client_gone"] = gone
        queue: asyncio.Queue[Message] = asyncio.Queue()

        async def pump() -> None:  # the only reader of ``receive``: the app reads from the queue
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    await queue.put(message)
                    return
                await queue.put(message)

        task = asyncio.create_task(pump())
        try:
            await self.app(scope, queue.get, send)
        finally:
            task.cancel()


def check_client(request: Request, route: str) -> None:
    """Raise :class:`ClientGone` when the request's client has disconnected (call between units of work)."""
    gone = getattr(request.state, "client_gone", None)
    if gone is not None and gone.is_set():
        svc = getattr(request.app.state, "service", None)
        if svc is not None:
            svc.metrics.cancelled.labels(route=route).inc()
        logger.info("client gone: %s stopped early", route)
        raise ClientGone(route)
