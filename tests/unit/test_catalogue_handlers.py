"""Recommendations and the event consumers' handlers against in-memory ports."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ecomctl.domain.events import ConsumedEvent
from ecomctl.domain.models import Category
from ecomctl.errors import ValidationFailed
from ecomctl.services.consumers import AnalyticsCounter, SearchIndexer
from ecomctl.services.recommendation import RecommendationService
from ecomctl.services.search import SearchService
from tests.unit.catalogue_fakes import (
    InMemoryAnalytics,
    InMemoryCatalogue,
    InMemoryPurchaseHistory,
    InMemoryRecommendationCache,
    InMemorySearchIndex,
    Spans,
    product,
)


def _event(event_type: str, aggregate_id: object = "1", **payload: Any) -> ConsumedEvent:
    now = datetime.now(UTC)
    return ConsumedEvent(uuid.uuid4(), event_type, "x", str(aggregate_id), payload, "t", 0, 0,
                         now, now, ())


def _recommender(
    together: list[int], sellers: list[int]
) -> tuple[RecommendationService, InMemoryPurchaseHistory, InMemoryRecommendationCache, Spans]:
    history = InMemoryPurchaseHistory(together, sellers)
    cache = InMemoryRecommendationCache()
    spans = Spans("recommendation")
    return RecommendationService(history, cache, spans.tracer), history, cache, spans


async def test_recommendations_top_up_with_best_sellers_and_are_cached() -> None:
    service, history, cache, spans = _recommender(together=[5, 6], sellers=[6, 2, 7, 8, 9])

    first = await service.for_products([2, 1, 2], limit=4)

    assert first == [5, 6, 7, 8]  # co-purchases first, then best sellers not already there
    assert history.calls == [("bought_together", [1, 2], 4), ("best_sellers", [1, 2], 6)]
    assert cache.entries == {((1, 2), 4): [5, 6, 7, 8]}
    assert spans.last("recommendation.get")["ecom.cache.level"] == "l3"
    assert spans.last("recommendation.get")["ecom.recommendation.co_purchase"] == 2

    assert await service.for_products([1, 2], limit=4) == first
    assert len(history.calls) == 2  # answered by the cache
    assert spans.last("recommendation.get")["ecom.cache.hit"] is True
    assert (service.hits, service.misses) == (1, 1)


async def test_recommendations_without_seeds_are_the_shop_best_sellers() -> None:
    service, history, _, _ = _recommender(together=[5], sellers=[3, 4, 5])
    assert await service.for_products([], limit=2) == [3, 4]
    assert [call[0] for call in history.calls] == ["best_sellers"]


async def test_an_unavailable_cache_degrades_to_the_history() -> None:
    service, history, cache, spans = _recommender(together=[5, 6], sellers=[])
    cache.unavailable = True
    assert await service.for_products([1], limit=2) == [5, 6]
    assert await service.for_products([1], limit=2) == [5, 6]
    assert len(history.calls) == 2 and service.misses == 2
    assert spans.last("recommendation.get")["ecom.cache.hit"] is False


@pytest.mark.parametrize("limit", [0, 21])
async def test_recommendation_limit_is_bounded(limit: int) -> None:
    service, history, _, _ = _recommender([1], [2])
    with pytest.raises(ValidationFailed):
        await service.for_products([1], limit=limit)
    assert history.calls == []


async def test_search_indexer_follows_product_changes() -> None:
    repo = InMemoryCatalogue(category_list=[Category(1, "tea", "Fine Tea")])
    repo.products[3] = product(3, price="4.00")
    repo.products[4] = product(4, active=False)
    index = InMemorySearchIndex()
    indexer = SearchIndexer(repo, SearchService(index, Spans("search").tracer))
    tx = object()

    await indexer(_event("product.changed", 3), tx)
    assert index.docs[3].category_name == "Fine Tea" and index.docs[3].price == Decimal("4.00")
    await indexer(_event("product.changed", 3), tx)
    assert repo.log == ["categories"]  # category names are looked up once, then remembered

    index.docs[4] = replace(index.docs[3], product_id=4)
    await indexer(_event("product.changed", 4), tx)  # delisted: removed
    await indexer(_event("product.changed", 99), tx)  # gone: removed (absent is fine)
    assert sorted(index.docs) == [3] and index.deleted == [4, 99]

    await indexer(_event("order.paid", 3), tx)  # not ours: nothing happens
    assert repo.get_calls == [3, 3, 4, 99]


async def test_analytics_counts_events_and_revenue_in_the_consumers_transaction() -> None:
    store = InMemoryAnalytics()
    counter = AnalyticsCounter(store)
    tx = object()
    captured = _event("payment.captured", amount="10.05", currency="EUR")

    await counter(captured, tx)
    assert store.writes == [(tx, {"events.payment.captured": 1, "revenue_cents.EUR": 1005})]

    await counter.handle_batch(
        [_event("order.paid"), captured, _event("order.paid"),
         _event("payment.captured", amount="0.99", currency="EUR")], tx)
    assert store.writes[-1] == (tx, {"events.order.paid": 2, "events.payment.captured": 2,
                                     "revenue_cents.EUR": 1104})
    assert store.counters["revenue_cents.EUR"] == 2109
    await counter.handle_batch([], tx)
    assert len(store.writes) == 2  # nothing to write, no write
    # A capture refunded (it landed on a cancelled order) is revenue no more.
    await counter(_event("payment.refunded", amount="10.05", currency="EUR"), tx)
    assert store.counters["revenue_cents.EUR"] == 1104


async def test_analytics_claims_and_counts_only_the_events_new_to_its_consumer() -> None:
    store = InMemoryAnalytics()
    counter, tx = AnalyticsCounter(store), object()
    paid, captured = _event("order.paid"), _event("payment.captured", amount="2.50",
                                                  currency="EUR")

    assert await counter.handle_new("analytics", [paid, captured], tx) == {
        paid.event_id, captured.event_id}
    # Redelivered with one new event: only the new one counts.
    refunded = _event("payment.refunded", amount="2.50", currency="EUR")
    assert await counter.handle_new("analytics", [captured, refunded], tx) == {
        refunded.event_id}
    assert store.counters == {"events.order.paid": 1, "events.payment.captured": 1,
                              "events.payment.refunded": 1, "revenue_cents.EUR": 0}
