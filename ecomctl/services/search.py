"""The search service: product queries, bulk (re)indexing, and keeping the index in step with
product changes (what the Kafka consumer of product events calls)."""

from __future__ import annotations

from collections.abc import Iterable

from ecomctl.domain.models import Page
from ecomctl.domain.search import ProductDocument, SearchHit, SearchQuery
from ecomctl.errors import ValidationFailed
from ecomctl.services.ports.catalogue import SearchIndex
from ecomctl.telemetry.spans import ServiceTracer

MAX_QUERY_ATTRIBUTE_CHARS = 100


class SearchService:
    def __init__(self, index: SearchIndex, tracer: ServiceTracer) -> None:
        self._index = index
        self._tracer = tracer
    async def query(self, q: SearchQuery) -> Page[SearchHit]:
        attributes: dict[str, str | int] = {
            "ecom.search.query": q.text[:MAX_QUERY_ATTRIBUTE_CHARS],
            "ecom.search.page": q.page,
        }
        if q.category is not None:
            attributes["ecom.search.category"] = q.category
        with self._tracer.span("search.query", attributes) as span:
            page = await self._index.search(q)
            span.set_attribute("ecom.search.results", page.total)
            return page

    async def index_products(
        self, docs: Iterable[ProductDocument], *, refresh: bool = False
    ) -> int:
        with self._tracer.span("search.index") as span:
            indexed = await self._index.bulk_index(docs, refresh=refresh)
            span.set_attribute("ecom.search.indexed", indexed)
            return indexed

    async def apply_product_change(self, doc: ProductDocument | None, product_id: int) -> None:
        """Make the index reflect the product's current state: searchable when active, absent
        when inactive or deleted (``doc`` None). Replaying the same change is harmless."""
        if doc is not None and doc.product_id != product_id:
            raise ValidationFailed(
                f"document is for product {doc.product_id}, change is for {product_id}"
            )
        action = "upsert" if doc is not None and doc.active else "delete"
        with self._tracer.span(
            "search.update", {"ecom.product.id": product_id, "ecom.search.action": action}
        ):
            if doc is not None and doc.active:
                await self._index.upsert(doc)
            else:
                await self._index.delete(product_id)
