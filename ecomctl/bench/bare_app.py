"""The gateway's floor: a bare Starlette app that answers every ``GET /api/products/{id}``
with the same product-sized JSON, on the same uvicorn settings and event loop as
``ecomctl serve``.

    python -m ecomctl.bench.bare_app --port 18600 --body-file product.json
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ecomctl import event_loop
from ecomctl.adapters.asgi_server import serving


def bare_app(body: bytes) -> Starlette:
    async def product(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/api/products/{product_id:int}", product)])


async def _main(port: int, body: bytes) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(bare_app(body), name="bare-app", port=port) as address:
        sys.stderr.write(f"bare app listening on {address.url}\n")
        sys.stderr.flush()
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    args = parser.parse_args()
    event_loop.run(_main(args.port, args.body_file.read_bytes()))
