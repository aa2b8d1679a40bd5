"""Recommendations from real order history: products bought together with the given ones,
topped up with best sellers of their categories; cached with a TTL."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from ecomctl.errors import InfraError, ValidationFailed
from ecomctl.services.ports.catalogue import PurchaseHistory, RecommendationCache
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

MAX_RECOMMENDATIONS = 20


class RecommendationService:
    def __init__(
        self,
        history: PurchaseHistory,
        cache: RecommendationCache,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
    ) -> None:
        self._history = history
        self._cache = cache
        self._tracer = tracer
        self._metrics = metrics
        self.hits = 0
        self.misses = 0

    async def for_products(self, product_ids: Sequence[int], limit: int = 5) -> list[int]:
        if not 1 <= limit <= MAX_RECOMMENDATIONS:
            raise ValidationFailed(f"limit must be between 1 and {MAX_RECOMMENDATIONS}")
        seeds = sorted(set(product_ids))[:50]
        with self._tracer.span(
            "recommendation.get", {"ecom.recommendation.seeds": len(seeds)}
        ) as span:
            cached = await self._cached(seeds, limit)
            span.set_attribute("ecom.cache.hit", cached is not None)
            if cached is not None:
                self.hits += 1
                self._count(hit=True)
                span.set_attribute("ecom.cache.level", "l2")
                return cached
            self.misses += 1
            self._count(hit=False)
            span.set_attribute("ecom.cache.level", "l3")
            found = await self._history.bought_together(seeds, limit) if seeds else []
            span.set_attribute("ecom.recommendation.co_purchase", len(found))
            if len(found) < limit:
                extra = await self._history.best_sellers(seeds, limit + len(found))
                found += [pid for pid in extra if pid not in found][: limit - len(found)]
            await self._store(seeds, limit, found)
            return found

    async def _cached(self, seeds: list[int], limit: int) -> list[int] | None:
        try:
            return await self._cache.get(seeds, limit)
        except InfraError:
            return None  # the cache is an optimisation: degrade to the database

    async def _store(self, seeds: list[int], limit: int, product_ids: list[int]) -> None:
        with contextlib.suppress(InfraError):  # the next request recomputes
            await self._cache.put(seeds, limit, product_ids)

    def _count(self, hit: bool) -> None:
        if self._metrics:
            self._metrics.cache_lookup("recommendation", "l2", hit)
