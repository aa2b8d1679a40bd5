"""In-memory implementations of the catalogue and event-handler ports (ecomctl.services.ports),
for unit tests of the services without any backend. Each one records what it was asked, so a
test can say how the service used it; ``log`` (shared when a test passes one) orders calls
across fakes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.domain.events import DomainEvent
from ecomctl.domain.models import Category, Page, Product
from ecomctl.domain.search import ProductDocument, SearchHit, SearchQuery
from ecomctl.errors import InfraError
from ecomctl.services.ports.cache import CacheLevel
from ecomctl.services.ports.catalogue import EventsFor
from ecomctl.services.ports.events import Transaction
from ecomctl.telemetry.spans import ServiceTracer


class Spans:
    """A ServiceTracer whose finished spans stay in memory."""

    def __init__(self, service: str) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = ServiceTracer(service, provider.get_tracer("unit"))

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def last(self, name: str) -> dict[str, object]:
        return dict(self.named(name)[-1].attributes or {})


def product(pid: int, *, price: str = "10.00", active: bool = True, slug: str = "tea",
            version: int = 1) -> Product:
    return Product(id=pid, sku=f"SKU-{pid}", name=f"Product {pid}", description="",
                   category_id=1, category_slug=slug, price=Decimal(price), currency="EUR",
                   active=active, version=version)


@dataclass
class InMemoryCatalogue:
    """ProductCatalogue: rows in a dict; a write and its events land together or not at all."""

    products: dict[int, Product] = field(default_factory=dict)
    category_list: list[Category] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    outbox: list[DomainEvent] = field(default_factory=list)
    get_calls: list[int] = field(default_factory=list)
    get_many_calls: list[list[int]] = field(default_factory=list)
    fail_writes: bool = False

    async def get(self, product_id: int) -> Product | None:
        self.get_calls.append(product_id)
        return self.products.get(product_id)

    async def get_many(self, product_ids: Sequence[int]) -> dict[int, Product]:
        self.get_many_calls.append(sorted(product_ids))
        return {pid: self.products[pid] for pid in product_ids if pid in self.products}

    async def categories(self) -> list[Category]:
        self.log.append("categories")
        return list(self.category_list)

    async def list_by_category(
        self, slug: str, page: int, page_size: int
    ) -> Page[Product] | None:
        if slug not in {c.slug for c in self.category_list}:
            return None
        listed = sorted((p for p in self.products.values()
                         if p.category_slug == slug and p.active), key=lambda p: p.id)
        start = (page - 1) * page_size
        return Page(listed[start:start + page_size], page, page_size, len(listed))

    async def update_price(
        self, product_id: int, price: Decimal, events: EventsFor
    ) -> Product | None:
        return self._write(product_id, events, price=price)

    async def set_active(
        self, product_id: int, active: bool, events: EventsFor
    ) -> Product | None:
        return self._write(product_id, events, active=active)

    def _write(self, product_id: int, events: EventsFor, **change: Any) -> Product | None:
        if self.fail_writes:
            raise InfraError("the database went away mid-write")
        current = self.products.get(product_id)
        if current is None:
            return None
        updated = replace(current, version=current.version + 1, **change)
        raised = list(events(updated))
        self.products[product_id] = updated
        self.outbox.extend(raised)
        self.log.append(f"write {product_id}")
        return updated


@dataclass
class InMemoryCache:
    """ReadThroughCache with one level: a hit is L1, a load is L3; negatives never stored."""

    log: list[str] = field(default_factory=list)
    entries: dict[str, Product] = field(default_factory=dict)
    degraded: bool = False

    async def get(
        self, key: str, load: Callable[[], Awaitable[Product | None]]
    ) -> tuple[Product | None, CacheLevel]:
        if key in self.entries:
            return self.entries[key], CacheLevel.L1
        value = await load()
        if value is not None:
            self.entries[key] = value
        return value, CacheLevel.L3

    async def get_many(
        self,
        keys: Iterable[str],
        load_many: Callable[[list[str]], Awaitable[dict[str, Product]]],
    ) -> dict[str, tuple[Product, CacheLevel]]:
        wanted = list(dict.fromkeys(keys))
        found = {k: (self.entries[k], CacheLevel.L1) for k in wanted if k in self.entries}
        missing = [k for k in wanted if k not in found]
        if missing:
            loaded = await load_many(missing)
            for key, value in loaded.items():
                self.entries[key] = value
                found[key] = (value, CacheLevel.L3)
        return {k: found[k] for k in wanted if k in found}

    async def invalidate(self, key: str) -> None:
        self.log.append(f"invalidate {key}")
        self.entries.pop(key, None)


@dataclass
class InMemorySearchIndex:
    """SearchIndex: documents by id; a query matches names containing the text."""

    docs: dict[int, ProductDocument] = field(default_factory=dict)
    queries: list[SearchQuery] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    async def search(self, query: SearchQuery) -> Page[SearchHit]:
        self.queries.append(query)
        hits = [SearchHit(d.product_id, d.name, d.category_slug, d.price, 1.0)
                for d in sorted(self.docs.values(), key=lambda d: d.product_id)
                if d.active and query.text.lower() in d.name.lower()]
        start = (query.page - 1) * query.page_size
        return Page(hits[start:start + query.page_size], query.page, query.page_size, len(hits))

    async def bulk_index(self, docs: Iterable[ProductDocument], *, refresh: bool = False) -> int:
        count = 0
        for doc in docs:
            self.docs[doc.product_id] = doc
            count += 1
        return count

    async def upsert(self, doc: ProductDocument) -> None:
        self.docs[doc.product_id] = doc

    async def delete(self, product_id: int) -> None:
        self.deleted.append(product_id)
        self.docs.pop(product_id, None)


@dataclass
class InMemoryPurchaseHistory:
    """PurchaseHistory with fixed answers (already ordered as the real queries would)."""

    together: list[int] = field(default_factory=list)
    sellers: list[int] = field(default_factory=list)
    calls: list[tuple[str, list[int], int]] = field(default_factory=list)

    async def bought_together(self, product_ids: Sequence[int], limit: int) -> list[int]:
        self.calls.append(("bought_together", list(product_ids), limit))
        return [p for p in self.together if p not in product_ids][:limit]

    async def best_sellers(self, near_product_ids: Sequence[int], limit: int) -> list[int]:
        self.calls.append(("best_sellers", list(near_product_ids), limit))
        return [p for p in self.sellers if p not in near_product_ids][:limit]


@dataclass
class InMemoryRecommendationCache:
    entries: dict[tuple[tuple[int, ...], int], list[int]] = field(default_factory=dict)
    unavailable: bool = False

    async def get(self, seeds: Sequence[int], limit: int) -> list[int] | None:
        if self.unavailable:
            raise InfraError("cache down")
        return self.entries.get((tuple(seeds), limit))

    async def put(self, seeds: Sequence[int], limit: int, product_ids: Sequence[int]) -> None:
        if self.unavailable:
            raise InfraError("cache down")
        self.entries[(tuple(seeds), limit)] = list(product_ids)


@dataclass
class InMemoryAnalytics:
    """AnalyticsStore: counters in a dict, plus each write and the transaction it came in."""

    counters: dict[str, int] = field(default_factory=dict)
    writes: list[tuple[Transaction, dict[str, int]]] = field(default_factory=list)
    claimed: dict[str, set[UUID]] = field(default_factory=dict)

    async def add(self, tx: Transaction, counts: Mapping[str, int]) -> None:
        self.writes.append((tx, dict(counts)))
        for name, value in counts.items():
            self.counters[name] = self.counters.get(name, 0) + value

    async def add_new(
        self, tx: Transaction, consumer: str, event_ids: Sequence[UUID],
        counts: Sequence[tuple[UUID, str, int]],
    ) -> set[UUID]:
        new = set(event_ids) - self.claimed.get(consumer, set())
        self.claimed.setdefault(consumer, set()).update(new)
        totals: dict[str, int] = {}
        for event_id, name, value in counts:
            if event_id in new:
                totals[name] = totals.get(name, 0) + value
        await self.add(tx, totals)
        return new
