"""Every simulated shopper logs in at the start: more at once than the password-hash queue
holds. The in-process client waits and retries as the HTTP one does on a 503, so a
simulation with many shoppers starts instead of failing (the README's main job: 20).

It runs after test_redis_durability (the file names sort so), in the same shop, on purpose:
right after that test's Redis kill, CI once saw these logins fail with "Connection closed by
server". The cause was the Redis client's retry, which never ran (a synchronous ``Retry``
on an asyncio client; see adapters/redis_pool.py): every dead pooled connection failed one
request."""

from __future__ import annotations

import asyncio
import uuid

from ecomctl.bootstrap import ShopStack
from ecomctl.sim.client import InProcessClient

SHOPPERS = 40  # well over the hash queue (16 waiting, one slot per 2 cores)


async def test_more_shoppers_than_the_hash_queue_holds_all_log_in(shop: ShopStack) -> None:
    tag = uuid.uuid4().hex[:10]
    emails = [f"crowd-{tag}-{i}@example.test" for i in range(SHOPPERS)]
    for email in emails:
        await shop.services.users.register(email, "crowd-pass-123", "Crowd")
    clients = [InProcessClient(shop.services) for _ in emails]

    await asyncio.gather(*(c.login(e, "crowd-pass-123") for c, e in zip(clients, emails,
                                                                         strict=True)))

    assert all(c.user_id > 0 for c in clients)
    assert len({c.user_id for c in clients}) == SHOPPERS
