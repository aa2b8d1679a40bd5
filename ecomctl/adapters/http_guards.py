"""What keeps a served app up against clients that misbehave: connections that never send a
request are closed, and the concurrency limit counts requests in flight, not sockets.

uvicorn's own ``limit_concurrency`` counts every open connection, and it never times out a
connection that has not sent a request yet: a client holding 1,100 idle sockets got every
other client's request answered 503. Here an idle socket costs a file descriptor for a few
seconds and nothing else.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.auto import AutoHTTPProtocol

OVERLOADED_BODY = json.dumps({
    "error": "overloaded",
    "message": "the server is at its limit of requests in flight; retry in 1s",
}).encode()


class InFlightLimit:
    """At most ``limit`` HTTP requests in the app at once; beyond, a 503 with ``Retry-After``
    at once (refusing fast beats queueing: a queued request's client has often given up by
    the time it is served). Lifespan and websocket scopes pass untouched."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if self.in_flight >= self._limit:
            await _refuse(send)
            return
        self.in_flight += 1
        try:
            await self._app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _refuse(send: Send) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(OVERLOADED_BODY)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": OVERLOADED_BODY})


def idle_closing(timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools or h11, as uvicorn picks), closing a connection
    whose first request has not arrived (its head complete) within ``timeout_s``. Between
    requests, uvicorn's keep-alive timeout does the same."""
    base: Any = AutoHTTPProtocol

    class IdleClosingProtocol(base):  # type: ignore[misc]
        _first_request_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            self._first_request_timer = asyncio.get_running_loop().call_later(
                timeout_s, self._close_if_no_request)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._first_request_timer is not None:
                self._first_request_timer.cancel()
            super().connection_lost(exc)

        def _close_if_no_request(self) -> None:
            # ``cycle`` is set once a request's head is parsed, by both implementations.
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

    return IdleClosingProtocol
