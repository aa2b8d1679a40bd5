"""Running the gateway over HTTP on top of a running shop stack.

The gateway refuses what it cannot serve well: per-address limits on login and register,
at most ``limit_concurrency`` requests in flight (a 503 at once beyond that, instead of
queueing), connections that send no request closed after a few seconds, and the client
address from ``X-Forwarded-For`` only behind proxies the operator names. All come from the
settings (``PushBack``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ecomctl.adapters.asgi_server import ServedAddress, serving
from ecomctl.bootstrap import ShopStack
from ecomctl.gateway.app import create_app
from ecomctl.gateway.push_back import RequestLimits


def gateway_app(shop: ShopStack) -> FastAPI:
    limits = RequestLimits(shop.rate_limiter)
    return create_app(shop.services, shop.readiness, limits,
                      shop.telemetry.gateway_telemetry())


@asynccontextmanager
async def running_gateway(
    shop: ShopStack,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    reuse_port: bool = False,
    limit_concurrency: int | None = None,
) -> AsyncIterator[ServedAddress]:
    """``limit_concurrency``: None takes the settings' (``ECOMCTL_LIMIT_CONCURRENCY``); 0 is
    no limit."""
    if limit_concurrency is None:
        limit_concurrency = shop.settings.push_back.limit_concurrency
    async with serving(
        gateway_app(shop), name="gateway", host=host, port=port, reuse_port=reuse_port,
        limit_concurrency=limit_concurrency or None,
        forwarded_allow_ips=shop.settings.push_back.forwarded_allow_ips,
    ) as address:
        yield address
