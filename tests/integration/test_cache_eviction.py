"""A flood of cache entries evicts cache entries only. The caches live in a Redis of their
own (``redis-cache``: allkeys-lru, in memory); sessions, carts and throttles in the main one
(``redis``: noeviction, on disk). Flooded over HTTP as an attacker would: distinct
recommendation sets (an unauthenticated route, one cache entry per set), with the cache's
memory limit lowered for the test so that it really evicts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from ecomctl.config import Settings
from tests.shopdata import http_shopper

pytestmark = pytest.mark.long  # a flood that fills the cache's Redis (`pytest -m long`)

SHOPPERS = 20
DISTINCT_SETS = 3000


@pytest.fixture
async def cache_redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_cache_url)
    yield client
    await client.aclose()


async def test_a_flood_of_distinct_recommendation_sets_evicts_no_session(
    gateway_url: str, settings: Settings, cache_redis: Redis, redis_client: Redis
) -> None:
    assert settings.redis_cache_url != settings.redis_url
    assert (await redis_client.config_get("maxmemory-policy"))["maxmemory-policy"] == (
        "noeviction")
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        sessions = [(await http_shopper(client))[0] for _ in range(SHOPPERS)]

        previous = (await cache_redis.config_get("maxmemory"))["maxmemory"]
        assert previous is not None  # Redis always reports its limit (0: none)
        used = int((await cache_redis.info("memory"))["used_memory"])
        evicted_before = int((await cache_redis.info("stats"))["evicted_keys"])
        await cache_redis.config_set("maxmemory", str(used + 256 * 1024))
        try:
            rng = random.Random(11)

            async def flood(count: int) -> None:
                for _ in range(count):
                    ids = rng.sample(range(1, 10**12), 3)
                    answer = await client.get("/api/recommendations",
                                              params={"product_id": ids})
                    assert answer.status_code == 200, answer.text

            await asyncio.gather(*(flood(DISTINCT_SETS // 10) for _ in range(10)))
            evicted = int((await cache_redis.info("stats"))["evicted_keys"]) - evicted_before
        finally:
            await cache_redis.config_set("maxmemory", previous)

        assert evicted > 0  # the flood really filled the cache
        for auth in sessions:  # and every session is still there
            me = await client.get("/api/users/me", headers=auth)
            assert me.status_code == 200, me.text
    assert int((await redis_client.info("stats"))["evicted_keys"]) == 0
