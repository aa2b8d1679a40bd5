"""Serving an ASGI app with uvicorn inside the running event loop (gateway, simulators).

The embedding program owns Ctrl-C, so uvicorn's signal handlers are switched off; the
listening socket is bound before start-up, so ``port=0`` yields the port actually chosen.
The client address is the socket's peer unless the caller names trusted proxies (uvicorn
trusts ``X-Forwarded-For`` from 127.0.0.1 by default: on a loopback server, every client).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from ecomctl.adapters.http_guards import InFlightLimit, idle_closing
from ecomctl.errors import ServerStartError

IDLE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ServedAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        """A base URL a local client can connect to (wildcard addresses become loopback)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp,
    *,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    before_stop: Callable[[], None] | None = None,
    startup_timeout_s: float = 10.0,
    shutdown_timeout_s: float = 5.0,
    reuse_port: bool = False,
    limit_concurrency: int | None = None,
    forwarded_allow_ips: Sequence[str] = (),
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> AsyncIterator[ServedAddress]:
    """Serve ``app`` in a background task until the block exits.

    ``reuse_port`` (SO_REUSEPORT) lets several processes listen on the same port, the kernel
    spreading connections among them: how ``serve --role api`` processes share one port.
    ``limit_concurrency``: past that many requests in flight, a 503 at once (and the
    connection closed) instead of queueing; None: no limit. ``forwarded_allow_ips``: the
    proxies (addresses, networks, ``*``) whose ``X-Forwarded-For`` names the client; none by
    default. A connection that sends no request within ``idle_timeout_s`` is closed.
    """
    sock = _listen_socket(name, host, port, reuse_port=reuse_port)
    if limit_concurrency is not None:
        app = InFlightLimit(app, limit_concurrency)
    server = _EmbeddedServer(
        uvicorn.Config(
            app,
            http=idle_closing(idle_timeout_s),
            timeout_keep_alive=math.ceil(idle_timeout_s),
            interface="asgi3",
            lifespan="off",
            log_config=None,  # leave the host program's logging alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=math.ceil(shutdown_timeout_s),
            proxy_headers=bool(forwarded_allow_ips),
            forwarded_allow_ips=list(forwarded_allow_ips) or None,
        )
    )
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    try:
        await _wait_started(name, server, task, host, port, startup_timeout_s)
        yield ServedAddress(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        if before_stop is not None:
            before_stop()
        await _stop(server, task, shutdown_timeout_s)
        sock.close()


def _listen_socket(name: str, host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    where = f"{name}: cannot listen on {host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ServerStartError(f"{where}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServerStartError(f"{where}: {exc}") from exc
    return sock


async def _wait_started(
    name: str,
    server: uvicorn.Server,
    task: asyncio.Task[None],
    host: str,
    port: int,
    timeout_s: float,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not server.started:
        if task.done():
            cause = None if task.cancelled() else task.exception()
            raise ServerStartError(
                f"{name} on {host}:{port} exited during start-up: {cause!r}"
            ) from cause
        if loop.time() > deadline:
            raise ServerStartError(f"{name} on {host}:{port} did not start within {timeout_s:g}s")
        await asyncio.sleep(0.005)


async def _stop(server: uvicorn.Server, task: asyncio.Task[None], timeout_s: float) -> None:
    try:
        # Shielded: if our caller is being cancelled, the server still finishes its shutdown.
        await asyncio.wait_for(asyncio.shield(task), timeout=timeout_s + 1.0)
    except TimeoutError:
        server.force_exit = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
