"""Running the gateway over HTTP on top of a running shop stack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ecomctl.adapters.asgi_server import ServedAddress, serving
from ecomctl.bootstrap import ShopStack
from ecomctl.gateway.app import create_app


def gateway_app(shop: ShopStack) -> FastAPI:
    app = create_app(shop.services, shop.readiness)
    shop.telemetry.instrument_app(app)
    return app


@asynccontextmanager
async def running_gateway(
    shop: ShopStack, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False
) -> AsyncIterator[ServedAddress]:
    async with serving(
        gateway_app(shop), name="gateway", host=host, port=port, reuse_port=reuse_port
    ) as address:
        yield address
