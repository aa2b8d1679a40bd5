"""PostgreSQL restarted under a running shop costs at most the requests in flight: ``kill -9``
of the local stack's server, ``ecomctl stack up postgres``, and the gateway (in this process,
its event loop running all along, as a served shop's does) answers every request after it.

(The Redis restart is in test_redis_durability.py.) Other tests share this PostgreSQL: the
outage lasts the seconds a restart takes, and the server is back before the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections import Counter

import httpx
import psutil

from ecomctl.config import LOCAL_PORTS
from ecomctl.stack.process import listener_pid
from tests.integration.test_redis_durability import stack_up
from tests.shopdata import http_login, http_shopper


async def test_a_postgres_restart_costs_no_request_after_it(gateway_url: str) -> None:
    email = f"pgr-{uuid.uuid4().hex[:12]}@example.test"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        auth, _ = await http_shopper(client, email)

        async def list_orders() -> int:  # read from PostgreSQL on every call
            return (await client.get("/api/orders", headers=auth)).status_code

        # Use many of the pool's connections, so they all die with the server.
        assert Counter(await asyncio.gather(*(list_orders() for _ in range(20)))) == {200: 20}

        pid = listener_pid(LOCAL_PORTS.postgres)
        assert pid and pid > 0
        try:
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.NoSuchProcess):
                await asyncio.to_thread(psutil.Process(pid).wait, 10)
            assert await list_orders() == 503  # really gone: said so, no 500
        finally:
            await asyncio.to_thread(stack_up, "postgres")
        assert listener_pid(LOCAL_PORTS.postgres) not in (None, pid)

        after = [await list_orders() for _ in range(20)]
        after += await asyncio.gather(*(list_orders() for _ in range(20)))
        assert after == [200] * 40, Counter(after)
        await http_login(client, email)  # asserts 200
