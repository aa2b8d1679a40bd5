"""The Redis recommendation cache: a round trip with its TTL on the real Redis, and Redis
failures turned into ecomctl errors (which the service takes as a miss)."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis

from ecomctl.adapters.cache import fast_fail_redis
from ecomctl.adapters.recommendation_cache import RedisRecommendationCache, recommendation_key
from ecomctl.errors import BackendUnavailable
from ecomctl.services.recommendation import RecommendationService
from ecomctl.telemetry.spans import ServiceTracer


async def test_round_trip_under_the_shop_prefix_with_a_ttl(cache_redis: Redis) -> None:
    seeds = [2**40 + uuid.uuid4().int % 1_000_000]  # an id no other test uses
    key = recommendation_key(seeds, 3)
    cache = RedisRecommendationCache(cache_redis, ttl_s=60)
    try:
        assert await cache.get(seeds, 3) is None
        await cache.put(seeds, 3, [7, 5, 9])
        assert await cache.get(seeds, 3) == [7, 5, 9]
        assert key.startswith("ecomctl:reco:3:")
        assert 0 < await cache_redis.ttl(key) <= 60
        assert await cache.get(seeds, 4) is None  # the limit is part of the key
    finally:
        await cache_redis.delete(key)


async def test_unreachable_redis_is_backend_unavailable_and_a_miss_for_the_service() -> None:
    dead = fast_fail_redis("redis://127.0.0.1:1/0")
    try:
        cache = RedisRecommendationCache(dead)
        with pytest.raises(BackendUnavailable):
            await cache.get([1], 3)
        with pytest.raises(BackendUnavailable):
            await cache.put([1], 3, [2])

        class History:
            async def bought_together(self, product_ids: object, limit: int) -> list[int]:
                return [11, 12]

            async def best_sellers(self, near: object, limit: int) -> list[int]:
                return [13]

        service = RecommendationService(History(), cache, ServiceTracer("recommendation"))
        assert await service.for_products([1], limit=3) == [11, 12, 13]
        assert service.misses == 1
    finally:
        await dead.aclose()
