"""Sessions and carts survive a Redis crash: ``kill -9`` the local stack's server, bring it
back with ``ecomctl stack up redis``, and the shopper's token and cart still work over HTTP.

Other engineers' tests share this Redis: the outage is kept to the few seconds a restart takes,
and Redis is brought back before the test ends whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

import httpx
import psutil
import redis.asyncio as redis

from ecomctl.bootstrap import ShopStack
from ecomctl.config import LOCAL_PORTS
from ecomctl.stack.process import listener_pid
from tests.shopdata import SHOPPER_PASSWORD, http_shopper, make_catalogue


def stack_up(name: str) -> None:
    done = subprocess.run([sys.executable, "-m", "ecomctl.cli.main", "stack", "up", name],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


async def ensure_append_only(client: redis.Redis) -> None:
    """A server started before the append-only settings: switch it on live (Redis rewrites
    the AOF from the data it holds), which is what its next start does from the config."""
    if (await client.config_get("appendonly"))["appendonly"] == "yes":
        return
    await client.config_set("appendonly", "yes")
    deadline = time.monotonic() + 30
    while True:
        info = await client.info("persistence")
        if info["aof_enabled"] and not info["aof_rewrite_in_progress"] and not info.get(
                "aof_rewrite_scheduled"):
            return
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.1)


async def test_a_session_and_a_cart_survive_a_redis_kill(
    shop: ShopStack, gateway_url: str, redis_client: redis.Redis
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=10)
    product_id = catalogue.ids[0]
    email = f"aof-{uuid.uuid4().hex[:12]}@example.test"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        auth, _ = await http_shopper(client, email)
        added = await client.post("/api/cart/items", headers=auth,
                                  json={"product_id": product_id, "quantity": 2})
        assert added.status_code == 201, added.text

        config = await redis_client.config_get("appendfsync")
        await ensure_append_only(redis_client)
        assert config["appendfsync"] == "everysec"
        await asyncio.sleep(1.2)  # appendfsync everysec: at most the last second is at risk

        pid = listener_pid(LOCAL_PORTS.redis)
        assert pid and pid > 0
        killed_at = time.monotonic()
        try:
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).wait(timeout=10)
            down = await client.get("/api/cart", headers=auth)
            assert down.status_code == 503  # really gone: the gateway says so, no 500
        finally:
            await asyncio.to_thread(stack_up, "redis")
        outage_s = time.monotonic() - killed_at
        assert listener_pid(LOCAL_PORTS.redis) not in (None, pid)

        # The pools reconnect on their own: the same token, the same cart.
        cart = await client.get("/api/cart", headers=auth)
        assert cart.status_code == 200, cart.text
        assert cart.json() == {"lines": [{"product_id": product_id, "quantity": 2}]}
        me = await client.get("/api/users/me", headers=auth)
        assert me.status_code == 200 and me.json()["email"] == email

        # Every pooled connection died with the server; none of them costs a request: the
        # client retries on a fresh connection (9 of 20 logins were 503 before).
        logins = [(await client.post("/api/users/login", json={
            "email": email, "password": SHOPPER_PASSWORD})).status_code for _ in range(20)]
        assert logins == [200] * 20
    print(f"\nredis kill -9 and `stack up redis`: {outage_s:.1f} s down; "  # noqa: T201
          "session and cart kept")
