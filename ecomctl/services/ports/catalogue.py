"""The catalogue's ports: products (read, and written with their events in one transaction),
the search index, and the purchase history and cache behind recommendations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Protocol

from ecomctl.domain.events import DomainEvent
from ecomctl.domain.models import Category, Page, Product
from ecomctl.domain.search import ProductDocument, SearchHit, SearchQuery

EventsFor = Callable[[Product], Sequence[DomainEvent]]
"""The events a product change raises, built from the row as the change left it."""


class ProductReader(Protocol):
    async def get(self, product_id: int) -> Product | None:
        """The product, active or not; None if there is no such id."""
        ...

    async def get_many(self, product_ids: Sequence[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids``, in one round trip."""
        ...

    async def categories(self) -> list[Category]: ...


class ProductCatalogue(ProductReader, Protocol):
    async def list_by_category(
        self, slug: str, page: int, page_size: int
    ) -> Page[Product] | None:
        """A page of the category's active products, ordered by id; None if the category
        does not exist."""
        ...

    async def update_price(
        self, product_id: int, price: Decimal, events: EventsFor
    ) -> Product | None:
        """One transaction: set the price, bump the version, and write ``events(updated)``
        to the outbox. None (and nothing written) if there is no such product."""
        ...

    async def set_active(
        self, product_id: int, active: bool, events: EventsFor
    ) -> Product | None:
        """As ``update_price``, listing or delisting the product."""
        ...


class SearchIndex(Protocol):
    async def search(self, query: SearchQuery) -> Page[SearchHit]: ...

    async def bulk_index(self, docs: Iterable[ProductDocument], *, refresh: bool = False) -> int:
        """Index (create or replace) ``docs``; how many were indexed."""
        ...

    async def upsert(self, doc: ProductDocument) -> None: ...

    async def delete(self, product_id: int) -> None:
        """Remove a product; removing one that is not indexed is not an error."""
        ...


class PurchaseHistory(Protocol):
    async def bought_together(self, product_ids: Sequence[int], limit: int) -> list[int]:
        """Active products most often in the same paid orders as ``product_ids`` (not
        themselves), most frequent first."""
        ...

    async def best_sellers(self, near_product_ids: Sequence[int], limit: int) -> list[int]:
        """Best sellers of the categories of ``near_product_ids`` (of the shop if empty),
        not those products themselves."""
        ...


class RecommendationCache(Protocol):
    """Raises an ``InfraError`` when the cache cannot be reached: callers decide whether
    that matters (for recommendations it does not)."""

    async def get(self, seeds: Sequence[int], limit: int) -> list[int] | None: ...

    async def put(self, seeds: Sequence[int], limit: int, product_ids: Sequence[int]) -> None: ...
