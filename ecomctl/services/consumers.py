"""What the Kafka consumers do with each event; each handler runs inside the transaction that
records the event as processed (see adapters/kafka/consumer), so redelivery is harmless.
Handlers get that transaction as an opaque ``Transaction`` and hand it to the ports that
write in it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from uuid import UUID

from ecomctl.domain.events import ConsumedEvent
from ecomctl.domain.search import ProductDocument
from ecomctl.services.ports.catalogue import ProductReader
from ecomctl.services.ports.events import AnalyticsStore, Transaction
from ecomctl.services.ports.orders import UnitOfWork
from ecomctl.services.search import SearchService
from ecomctl.services.shipment import ShipmentService


class ShipmentCreator:
    """order-events: a paid order gets its shipment."""

    event_types = frozenset({"order.paid"})

    def __init__(
        self, shipments: ShipmentService, unit_in: Callable[[Transaction], UnitOfWork]
    ) -> None:
        self._shipments = shipments
        self._unit_in = unit_in  # the order path's unit of work inside the consumer's tx

    async def __call__(self, event: ConsumedEvent, tx: Transaction) -> None:
        if event.event_type == "order.paid":
            async with self._unit_in(tx) as uow:
                await self._shipments.create_for_paid_order(uow, UUID(event.aggregate_id))


class SearchIndexer:
    """product-events: the search index follows product changes."""

    event_types = frozenset({"product.changed"})

    def __init__(self, products: ProductReader, search: SearchService) -> None:
        self._products = products
        self._search = search
        self._category_names: dict[str, str] = {}

    async def __call__(self, event: ConsumedEvent, tx: Transaction) -> None:
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


class AnalyticsCounter:
    """order/payment/shipment events: counts per event type, revenue in cents (captures
    less refunds)."""

    def __init__(self, store: AnalyticsStore) -> None:
        self._store = store

    async def __call__(self, event: ConsumedEvent, tx: Transaction) -> None:
        await self._store.add(tx, dict(_counts(event)))

    async def handle_batch(
        self, events: Sequence[ConsumedEvent], tx: Transaction
    ) -> None:
        """A poll's events in one write."""
        totals: Counter[str] = Counter()
        for event in events:
            for name, value in _counts(event):
                totals[name] += value
        if totals:
            await self._store.add(tx, totals)

    async def handle_new(
        self, consumer: str, events: Sequence[ConsumedEvent], conn: Transaction
    ) -> set[UUID]:
        """A poll's events claimed and counted in one statement, without a transaction of
        its own (the consumer's 4 round trips per partition and poll become 1); returns
        the ids that were new."""
        return await self._store.add_new(
            conn, consumer, [event.event_id for event in events],
            [(event.event_id, name, value) for event in events for name, value in _counts(event)],
        )


# Revenue moves with captures, and back with the refund of a capture on a cancelled order.
_REVENUE_SIGN = {"payment.captured": 1, "payment.refunded": -1}


def _counts(event: ConsumedEvent) -> list[tuple[str, int]]:
    counts = [(f"events.{event.event_type}", 1)]
    sign = _REVENUE_SIGN.get(event.event_type)
    if sign is not None:
        cents = int(Decimal(str(event.payload["amount"])) * 100)
        counts.append((f"revenue_cents.{event.payload['currency']}", sign * cents))
    return counts
