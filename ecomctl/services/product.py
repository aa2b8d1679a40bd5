"""The product service: catalogue reads through the three-level cache, and price/listing
changes that write a ``product.changed`` outbox event in the same transaction and invalidate
the cache (in every process) after the commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from ecomctl.domain.events import PRODUCT_EVENTS, DomainEvent, new_event
from ecomctl.domain.flags import FaultFlags
from ecomctl.domain.models import Category, Page, Product
from ecomctl.domain.money import money
from ecomctl.errors import InfraError, NotFound, ValidationFailed
from ecomctl.services.ports.cache import CacheLevel, ReadThroughCache
from ecomctl.services.ports.catalogue import EventsFor, ProductCatalogue
from ecomctl.telemetry.spans import ServiceTracer

MAX_PAGE_SIZE = 100
_MAX_ID = 2**63 - 1  # BIGINT


def _valid_id(product_id: object) -> bool:
    return (
        isinstance(product_id, int) and not isinstance(product_id, bool)
        and 1 <= product_id <= _MAX_ID
    )


class ProductService:
    def __init__(
        self,
        repo: ProductCatalogue,
        cache: ReadThroughCache[Product],
        tracer: ServiceTracer,
        flags: FaultFlags | None = None,
    ) -> None:
        self._repo = repo
        self._cache = cache
        self._tracer = tracer
        self._flags = flags or FaultFlags()

    def _check_catalogue_fault(self, product_ids: Sequence[int]) -> None:
        failing = self._flags.failing_product_ids.intersection(product_ids)
        if failing:
            raise InfraError(f"product catalogue failure for product {min(failing)}")

    async def get(self, product_id: int) -> Product:
        """The product if it exists and is listed; NotFound otherwise."""
        with self._tracer.span("product.get", {"ecom.product.id": product_id}) as span:
            self._check_catalogue_fault([product_id])
            product: Product | None = None
            if _valid_id(product_id):
                product, level = await self._cache.get(
                    str(product_id), lambda: self._repo.get(product_id)
                )
                span.set_attribute("ecom.cache.hit", level is not CacheLevel.L3)
                span.set_attribute("ecom.cache.level", level.value)
                if self._cache.degraded:
                    span.set_attribute("ecom.cache.degraded", True)
            if product is None or not product.active:
                raise NotFound("product", product_id)
            return product

    async def get_many(
        self, product_ids: Sequence[int], *, include_inactive: bool = False
    ) -> dict[int, Product]:
        """The products among ``product_ids`` that exist (and are listed, unless
        ``include_inactive``); the others are simply absent. At most one SQL query."""
        wanted = [pid for pid in dict.fromkeys(product_ids) if _valid_id(pid)]
        with self._tracer.span(
            "product.get_many", {"ecom.product.requested_count": len(wanted)}
        ) as span:
            self._check_catalogue_fault(wanted)
            found = await self._cache.get_many([str(pid) for pid in wanted], self._load_many)
            levels = Counter(level for _, level in found.values())
            for level in CacheLevel:
                span.set_attribute(f"ecom.cache.{level.value}_count", levels[level])
            if self._cache.degraded:
                span.set_attribute("ecom.cache.degraded", True)
            products = {
                product.id: product
                for product, _ in found.values()
                if include_inactive or product.active
            }
            span.set_attribute("ecom.product.found_count", len(products))
            return products

    async def list_by_category(
        self, slug: str, page: int = 1, page_size: int = 20
    ) -> Page[Product]:
        """A page of the category's listed products, ordered by id (stable across pages)."""
        with self._tracer.span(
            "product.list",
            {"ecom.category.slug": slug, "ecom.page": page, "ecom.page_size": page_size},
        ) as span:
            if not isinstance(page, int) or isinstance(page, bool) or page < 1:
                raise ValidationFailed("page must be an integer >= 1")
            if (
                not isinstance(page_size, int) or isinstance(page_size, bool)
                or not 1 <= page_size <= MAX_PAGE_SIZE
            ):
                raise ValidationFailed(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
            result = await self._repo.list_by_category(slug, page, page_size)
            if result is None:
                raise NotFound("category", slug)
            span.set_attribute("ecom.product.count", len(result.items))
            span.set_attribute("ecom.product.total", result.total)
            return result

    async def categories(self) -> list[Category]:
        with self._tracer.span("product.categories") as span:
            categories = await self._repo.categories()
            span.set_attribute("ecom.category.count", len(categories))
            return categories

    async def update_price(self, product_id: int, price: Decimal | str) -> Product:
        """Set a new price (validated as money); NotFound for an unknown product."""
        with self._tracer.span(
            "product.update", {"ecom.product.id": product_id, "ecom.product.change": "price"}
        ) as span:
            amount = money(price)
            product = await self._change(
                product_id, "price",
                lambda events: self._repo.update_price(product_id, amount, events),
            )
            span.set_attribute("ecom.product.version", product.version)
            return product

    async def set_active(self, product_id: int, active: bool) -> Product:
        """List (True) or delist (False) a product; NotFound for an unknown product."""
        with self._tracer.span(
            "product.update", {"ecom.product.id": product_id, "ecom.product.change": "active"}
        ) as span:
            if not isinstance(active, bool):
                raise ValidationFailed("active must be a boolean")
            product = await self._change(
                product_id, "active",
                lambda events: self._repo.set_active(product_id, active, events),
            )
            span.set_attribute("ecom.product.version", product.version)
            return product

    async def _change(
        self,
        product_id: int,
        change: str,
        write: Callable[[EventsFor], Awaitable[Product | None]],
    ) -> Product:
        """The repository writes the row and its event in one transaction. Invalidation only
        after the commit, so no reader can re-cache the old row between our invalidation and
        the commit."""
        if not _valid_id(product_id):
            raise NotFound("product", product_id)

        def changed(product: Product) -> list[DomainEvent]:
            return [new_event(
                "product.changed", PRODUCT_EVENTS, "product", product_id,
                product_id=product_id, version=product.version, change=change,
                price=product.price, active=product.active,
            )]

        product = await write(changed)
        if product is None:
            raise NotFound("product", product_id)
        await self._cache.invalidate(str(product_id))
        return product

    async def _load_many(self, keys: list[str]) -> dict[str, Product]:
        products = await self._repo.get_many([int(key) for key in keys])
        return {str(pid): product for pid, product in products.items()}
