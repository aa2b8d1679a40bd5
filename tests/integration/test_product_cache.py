"""The product service and its three-level cache, on the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from ecomctl.adapters.cache import TieredCache, fast_fail_redis
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.products import ProductRepository
from ecomctl.adapters.product_cache import decode_product, encode_product
from ecomctl.domain.models import Product
from ecomctl.errors import NotFound, ValidationFailed
from ecomctl.services.product import ProductService
from ecomctl.telemetry.spans import ServiceTracer


class CountingRepository(ProductRepository):
    """The real repository, recording each batch query it is asked for."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.get_many_calls: list[list[int]] = []

    async def get_many(self, product_ids: Sequence[int]) -> dict[int, Product]:
        self.get_many_calls.append(sorted(product_ids))
        return await super().get_many(product_ids)


@dataclass
class Catalogue:
    slug: str
    empty_slug: str
    product_ids: list[int]  # ascending; the last one is inactive
    prices: dict[int, Decimal]

    @property
    def active_ids(self) -> list[int]:
        return self.product_ids[:-1]


class Harness:
    """Builds services that share PostgreSQL and Redis but each have their own cache (= their
    own L1, like separate processes), all in a namespace unique to the test."""

    def __init__(self, db: Database, redis: Redis, namespace: str) -> None:
        self.db = db
        self.redis = redis
        self.namespace = namespace
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = ServiceTracer("product", provider.get_tracer("tests"))
        self.caches: list[TieredCache[Product]] = []

    def service(
        self, redis: Redis | None = None, **options: Any
    ) -> tuple[ProductService, TieredCache[Product], CountingRepository]:
        cache: TieredCache[Product] = TieredCache(
            redis or self.redis, namespace=self.namespace, encode=encode_product,
            decode=decode_product, **options,
        )
        self.caches.append(cache)
        repo = CountingRepository(self.db)
        return ProductService(repo, cache, self.tracer), cache, repo

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def last_attributes(self, name: str) -> dict[str, object]:
        return dict(self.spans(name)[-1].attributes or {})


@pytest.fixture
async def harness(db: Database, cache_redis: Redis) -> AsyncIterator[Harness]:
    h = Harness(db, cache_redis, f"it-product:{uuid.uuid4().hex}")
    yield h
    for cache in h.caches:
        await cache.stop()
    keys = [k async for k in cache_redis.scan_iter(match=f"{h.namespace}:*")]
    if keys:
        await cache_redis.delete(*keys)


@pytest.fixture
async def catalogue(db: Database) -> AsyncIterator[Catalogue]:
    tag = uuid.uuid4().hex[:12]
    slug, empty_slug = f"it-cat-{tag}", f"it-empty-{tag}"
    prices = [Decimal("19.99"), Decimal("0.10"), Decimal("5.00"), Decimal("120.50"),
              Decimal("7.77"), Decimal("3.33"), Decimal("42.00")]
    async with db.transaction() as conn:
        category_id = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ($1, 'IT') RETURNING id", slug
        )
        await conn.execute("INSERT INTO categories (slug, name) VALUES ($1, 'Empty')", empty_slug)
        ids = [
            await conn.fetchval(
                "INSERT INTO products (sku, name, category_id, price, active) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                f"{slug}-{i}", f"Product {i}", category_id, price, i < len(prices) - 1,
            )
            for i, price in enumerate(prices)
        ]
    yield Catalogue(slug, empty_slug, ids, dict(zip(ids, prices, strict=True)))
    async with db.transaction() as conn:
        await conn.execute(
            "DELETE FROM outbox WHERE aggregate_type = 'product' AND aggregate_id = ANY($1)",
            [str(i) for i in ids],
        )
        await conn.execute("DELETE FROM products WHERE id = ANY($1::bigint[])", ids)
        await conn.execute(
            "DELETE FROM categories WHERE slug = ANY($1)", [slug, empty_slug]
        )


async def test_get_is_served_by_l3_then_l1_then_l2(
    harness: Harness, catalogue: Catalogue, cache_redis: Redis
) -> None:
    pid = catalogue.product_ids[0]
    service, cache, _ = harness.service()

    product = await service.get(pid)
    assert product.id == pid and product.price == Decimal("19.99")
    assert harness.last_attributes("product.get") == {
        "ecom.product.id": pid, "ecom.cache.hit": False, "ecom.cache.level": "l3",
    }
    assert await service.get(pid) == product
    assert harness.last_attributes("product.get")["ecom.cache.level"] == "l1"
    assert harness.last_attributes("product.get")["ecom.cache.hit"] is True

    # L2 holds exact JSON with a TTL; a second cache (another process's L1) is served by it.
    raw = await cache_redis.get(f"{harness.namespace}:{pid}")
    assert raw is not None and json.loads(raw)["price"] == "19.99"
    assert 0 < await cache_redis.ttl(f"{harness.namespace}:{pid}") <= 300
    other_service, other_cache, _ = harness.service()
    assert await other_service.get(pid) == product
    assert harness.last_attributes("product.get")["ecom.cache.level"] == "l2"
    assert await other_service.get(pid) == product
    assert harness.last_attributes("product.get")["ecom.cache.level"] == "l1"

    assert {k: cache.stats()[k] for k in ("l1_hits", "l1_misses", "l2_misses", "l3_hits")} == {
        "l1_hits": 1, "l1_misses": 1, "l2_misses": 1, "l3_hits": 1,
    }
    assert {k: other_cache.stats()[k] for k in ("l1_hits", "l2_hits", "l3_hits")} == {
        "l1_hits": 1, "l2_hits": 1, "l3_hits": 0,
    }
    assert cache.redis_errors == 0 and not cache.degraded


async def test_get_many_loads_all_misses_with_one_query(
    harness: Harness, catalogue: Catalogue
) -> None:
    ids = catalogue.active_ids[:5]
    service, _, repo = harness.service()
    warm_l2_service, _, _ = harness.service()
    await service.get(ids[0])
    await service.get(ids[1])  # ids[0..1] now in L1
    await warm_l2_service.get(ids[2])  # ids[2] only in Redis, as far as `service` knows
    unknown = 2**62 + int(uuid.uuid4().int % 1_000_000)

    products = await service.get_many([*ids, unknown, ids[0]])

    assert sorted(products) == sorted(ids)
    assert all(products[i].price == catalogue.prices[i] for i in ids)
    assert repo.get_many_calls == [sorted([ids[3], ids[4], unknown])]  # ONE query, misses only
    attrs = harness.last_attributes("product.get_many")
    assert attrs["ecom.product.requested_count"] == 6
    assert (attrs["ecom.cache.l1_count"], attrs["ecom.cache.l2_count"],
            attrs["ecom.cache.l3_count"]) == (2, 1, 2)
    assert attrs["ecom.product.found_count"] == 5

    # Everything found is now in L1: no query at all the second time.
    assert await service.get_many(ids) == products
    assert len(repo.get_many_calls) == 1
    assert harness.last_attributes("product.get_many")["ecom.cache.l1_count"] == 5

    # Inactive products are left out unless asked for; still no per-id queries.
    inactive = catalogue.product_ids[-1]
    assert inactive not in await service.get_many([inactive])
    assert (await service.get_many([inactive], include_inactive=True))[inactive].active is False
    assert await service.get_many([]) == {}


async def test_update_price_commits_an_event_and_invalidates_every_process(
    harness: Harness, catalogue: Catalogue, db: Database
) -> None:
    pid = catalogue.product_ids[0]
    writer, writer_cache, _ = harness.service()
    reader, reader_cache, _ = harness.service()
    await writer_cache.start()
    await reader_cache.start()
    assert (await writer.get(pid)).price == Decimal("19.99")
    assert (await reader.get(pid)).price == Decimal("19.99")
    await reader.get(pid)
    assert harness.last_attributes("product.get")["ecom.cache.level"] == "l1"

    updated = await writer.update_price(pid, "24.50")
    assert updated.price == Decimal("24.50") and updated.version == 2
    assert harness.last_attributes("product.update")["ecom.product.version"] == 2

    assert (await writer.get(pid)).price == Decimal("24.50")
    assert harness.last_attributes("product.get")["ecom.cache.level"] == "l3"
    # The reader's L1 is dropped by the pub/sub message, not by waiting for its TTL.
    for _ in range(100):
        if reader_cache.stats()["invalidations_received"] >= 1:
            break
        await asyncio.sleep(0.02)
    assert reader_cache.stats()["invalidations_received"] >= 1
    assert (await reader.get(pid)).price == Decimal("24.50")
    assert harness.last_attributes("product.get")["ecom.cache.level"] != "l1"

    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT event_type, topic, payload FROM outbox "
            "WHERE aggregate_type = 'product' AND aggregate_id = $1",
            str(pid),
        )
        version = await conn.fetchval("SELECT version FROM products WHERE id = $1", pid)
    assert version == 2
    assert len(rows) == 1
    assert rows[0]["event_type"] == "product.changed"
    assert rows[0]["topic"] == "product-events"
    payload = json.loads(rows[0]["payload"])
    assert payload["product_id"] == pid and payload["version"] == 2
    assert payload["price"] == "24.50"

    # Delisting goes the same way: then the product is not found, from any process.
    delisted = await writer.set_active(pid, False)
    assert delisted.active is False and delisted.version == 3
    with pytest.raises(NotFound):
        await writer.get(pid)
    for _ in range(100):
        if reader_cache.stats()["invalidations_received"] >= 2:
            break
        await asyncio.sleep(0.02)
    with pytest.raises(NotFound):
        await reader.get(pid)
    async with db.connection() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE aggregate_type = 'product' AND aggregate_id = $1",
            str(pid),
        )
    assert count == 2

    with pytest.raises(ValidationFailed):
        await writer.update_price(pid, "-1")
    with pytest.raises(ValidationFailed):
        await writer.update_price(pid, Decimal("NaN"))


async def test_update_of_unknown_product_writes_nothing(
    harness: Harness, catalogue: Catalogue, db: Database
) -> None:
    service, _, _ = harness.service()
    unknown = 2**62 + int(uuid.uuid4().int % 1_000_000)
    with pytest.raises(NotFound):
        await service.update_price(unknown, "1.00")
    with pytest.raises(NotFound):
        await service.set_active(unknown, True)
    async with db.connection() as conn:
        count = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE aggregate_type = 'product' AND aggregate_id = $1",
            str(unknown),
        )
    assert count == 0


async def test_not_found_for_unknown_invalid_and_inactive_ids(
    harness: Harness, catalogue: Catalogue, cache_redis: Redis
) -> None:
    service, cache, _ = harness.service()
    unknown = 2**62 + int(uuid.uuid4().int % 1_000_000)
    for pid in (unknown, 0, -5, 2**70, catalogue.product_ids[-1]):
        with pytest.raises(NotFound):
            await service.get(pid)
    outcomes = [dict(s.attributes or {}).get("ecom.outcome") for s in harness.spans("product.get")]
    assert outcomes == ["NotFound"] * 5
    # Negative results are not cached: nothing for the unknown id in Redis.
    assert await cache_redis.exists(f"{harness.namespace}:{unknown}") == 0
    assert cache.stats()["l3_misses"] == 1


async def test_redis_outage_degrades_to_l1_and_the_database(
    harness: Harness, catalogue: Catalogue
) -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    dead = fast_fail_redis("redis://127.0.0.1:1/0")
    try:
        service, cache, repo = harness.service(dead, clock=clock)
        a, b, c, d = catalogue.active_ids[:4]

        assert (await service.get(a)).price == catalogue.prices[a]
        assert harness.last_attributes("product.get")["ecom.cache.level"] == "l3"
        assert harness.last_attributes("product.get")["ecom.cache.degraded"] is True
        assert cache.redis_errors >= 1 and cache.degraded
        errors = cache.redis_errors

        # L1 still works; while the breaker is open Redis is not even tried.
        await service.get(a)
        assert harness.last_attributes("product.get")["ecom.cache.level"] == "l1"
        products = await service.get_many([a, b, c])
        assert sorted(products) == [a, b, c]
        assert repo.get_many_calls == [sorted([b, c])]
        assert cache.redis_errors == errors
        assert cache.stats()["l2_skipped"] >= 2

        # After the breaker's second, Redis is tried again (and fails again).
        clock.now += 1.5
        assert not cache.degraded
        await service.get(d)
        assert cache.redis_errors > errors

        # Writes still commit; the invalidation is best effort; start/stop do not raise.
        assert (await service.update_price(d, "9.99")).price == Decimal("9.99")
        assert (await service.get(d)).price == Decimal("9.99")
        await cache.start()
        await cache.stop()
        stats = cache.stats()
        assert stats["l2_hits"] == 0 and stats["l3_hits"] == 5
    finally:
        await dead.aclose()


async def test_list_by_category_paginates_stably(
    harness: Harness, catalogue: Catalogue
) -> None:
    service, _, _ = harness.service()
    first = await service.list_by_category(catalogue.slug, page=1, page_size=4)
    second = await service.list_by_category(catalogue.slug, page=2, page_size=4)
    beyond = await service.list_by_category(catalogue.slug, page=3, page_size=4)
    assert first.total == second.total == beyond.total == 6  # the inactive one is not listed
    assert [p.id for p in first.items] == catalogue.active_ids[:4]
    assert [p.id for p in second.items] == catalogue.active_ids[4:]
    assert beyond.items == [] and (beyond.page, beyond.page_size) == (3, 4)
    assert all(p.category_slug == catalogue.slug for p in first.items)
    assert first.items[1].price == Decimal("0.10")
    assert await service.list_by_category(catalogue.slug, 1, 4) == first  # same order again

    empty = await service.list_by_category(catalogue.empty_slug)
    assert empty.items == [] and empty.total == 0
    with pytest.raises(NotFound):
        await service.list_by_category(f"{catalogue.slug}-nope")
    for page, size in ((0, 10), (1, 0), (1, 101), (-1, 5)):
        with pytest.raises(ValidationFailed):
            await service.list_by_category(catalogue.slug, page, size)
    slugs = [c.slug for c in await service.categories()]
    assert catalogue.slug in slugs and catalogue.empty_slug in slugs
