"""Recommendations from real order history: products bought together with the given ones,
topped up with best sellers of their categories; cached in Redis with a TTL."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence

import redis.asyncio as redis
from redis.exceptions import RedisError

from ecomctl.adapters.postgres import recommendations as sql
from ecomctl.adapters.postgres.database import Database
from ecomctl.errors import ValidationFailed
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

MAX_RECOMMENDATIONS = 20


class RecommendationService:
    def __init__(
        self,
        db: Database,
        cache: redis.Redis,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
        *,
        ttl_s: int = 300,
    ) -> None:
        self._db = db
        self._cache = cache
        self._tracer = tracer
        self._metrics = metrics
        self._ttl_s = ttl_s
        self.hits = 0
        self.misses = 0

    async def for_products(self, product_ids: Sequence[int], limit: int = 5) -> list[int]:
        if not 1 <= limit <= MAX_RECOMMENDATIONS:
            raise ValidationFailed(f"limit must be between 1 and {MAX_RECOMMENDATIONS}")
        seeds = sorted(set(product_ids))[:50]
        key = f"ecomctl:reco:{limit}:{','.join(map(str, seeds))}"
        with self._tracer.span(
            "recommendation.get", {"ecom.recommendation.seeds": len(seeds)}
        ) as span:
            cached = await self._cached(key)
            span.set_attribute("ecom.cache.hit", cached is not None)
            if cached is not None:
                self.hits += 1
                self._count(hit=True)
                span.set_attribute("ecom.cache.level", "l2")
                return cached
            self.misses += 1
            self._count(hit=False)
            span.set_attribute("ecom.cache.level", "l3")
            async with self._db.connection() as conn:
                found = await sql.bought_together(conn, seeds, limit) if seeds else []
                span.set_attribute("ecom.recommendation.co_purchase", len(found))
                if len(found) < limit:
                    extra = await sql.best_sellers(conn, seeds, limit + len(found))
                    found += [pid for pid in extra if pid not in found][: limit - len(found)]
            await self._store(key, found)
            return found

    async def _cached(self, key: str) -> list[int] | None:
        try:
            raw = await self._cache.get(key)
        except RedisError:
            return None  # the cache is an optimisation: degrade to the database
        return [int(pid) for pid in json.loads(raw)] if raw else None

    async def _store(self, key: str, product_ids: list[int]) -> None:
        with contextlib.suppress(RedisError):
            await self._cache.set(key, json.dumps(product_ids), ex=self._ttl_s)

    def _count(self, hit: bool) -> None:
        if self._metrics:
            self._metrics.cache_lookup("recommendation", "l2", hit)
