"""What the Kafka consumers do with each event; each handler runs inside the transaction that
records the event as processed (see adapters/kafka/consumer), so redelivery is harmless."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

import asyncpg

from ecomctl.adapters.kafka.consumer import ConsumedEvent
from ecomctl.adapters.postgres.products import ProductRepository
from ecomctl.adapters.search import ProductDocument
from ecomctl.services.search import SearchService
from ecomctl.services.shipment import ShipmentService


class ShipmentCreator:
    """order-events: a paid order gets its shipment."""

    event_types = frozenset({"order.paid"})

    def __init__(self, shipments: ShipmentService) -> None:
        self._shipments = shipments

    async def __call__(self, event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        if event.event_type == "order.paid":
            await self._shipments.create_for_paid_order(conn, UUID(event.aggregate_id))


class SearchIndexer:
    """product-events: the search index follows product changes."""

    event_types = frozenset({"product.changed"})

    def __init__(self, products: ProductRepository, search: SearchService) -> None:
        self._products = products
        self._search = search
        self._category_names: dict[str, str] = {}

    async def __call__(self, event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        if event.event_type != "product.changed":
            return
        product_id = int(event.aggregate_id)
        product = await self._products.get(product_id)
        if product is None or not product.active:
            await self._search.apply_product_change(None, product_id)
            return
        if product.category_slug not in self._category_names:
            self._category_names = {c.slug: c.name for c in await self._products.categories()}
        name = self._category_names.get(product.category_slug, product.category_slug)
        await self._search.apply_product_change(
            ProductDocument.from_product(product, name), product_id
        )


_COUNT = """
INSERT INTO analytics_counters (name, value) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
"""


_COUNT_MANY = """
INSERT INTO analytics_counters (name, value)
SELECT name, value FROM unnest($1::text[], $2::bigint[]) AS c(name, value)
ON CONFLICT (name) DO UPDATE SET value = analytics_counters.value + EXCLUDED.value
"""


class AnalyticsCounter:
    """order/payment/shipment events: counts per event type, captured revenue in cents."""

    async def __call__(self, event: ConsumedEvent, conn: asyncpg.Connection) -> None:
        for name, value in _counts(event):
            await conn.execute(_COUNT, name, value)

    async def handle_batch(
        self, events: Sequence[ConsumedEvent], conn: asyncpg.Connection
    ) -> None:
        """A poll's events in one statement (names sorted: two consumers lock rows in the
        same order)."""
        totals: Counter[str] = Counter()
        for event in events:
            for name, value in _counts(event):
                totals[name] += value
        if totals:
            names = sorted(totals)
            await conn.execute(_COUNT_MANY, names, [totals[name] for name in names])


def _counts(event: ConsumedEvent) -> list[tuple[str, int]]:
    counts = [(f"events.{event.event_type}", 1)]
    if event.event_type == "payment.captured":
        cents = int(Decimal(str(event.payload["amount"])) * 100)
        counts.append((f"revenue_cents.{event.payload['currency']}", cents))
    return counts
