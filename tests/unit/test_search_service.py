"""The search service against an in-memory index: what it asks the index, what it records on
its spans, and how a product change becomes an upsert or a delete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecomctl.domain.search import ProductDocument, SearchQuery
from ecomctl.errors import ValidationFailed
from ecomctl.services.search import SearchService
from tests.unit.catalogue_fakes import InMemorySearchIndex, Spans


def _doc(pid: int, name: str = "Green tea", **overrides: Any) -> ProductDocument:
    fields: dict[str, Any] = {
        "product_id": pid, "sku": f"SKU-{pid}", "name": name, "description": "",
        "category_slug": "tea", "category_name": "Tea", "price": Decimal("4.2"),
        "currency": "EUR", "active": True,
    }
    return ProductDocument(**{**fields, **overrides})


def _service() -> tuple[SearchService, InMemorySearchIndex, Spans]:
    index = InMemorySearchIndex()
    spans = Spans("search")
    return SearchService(index, spans.tracer), index, spans


async def test_index_then_query_returns_the_index_page_and_records_it() -> None:
    service, index, spans = _service()
    docs = [_doc(1), _doc(2, "Black tea"), _doc(3, "Teapot"), _doc(4, "Mug")]
    assert await service.index_products(iter(docs)) == 4
    assert spans.last("search.index")["ecom.search.indexed"] == 4

    query = SearchQuery("tea", category="tea", page=1, page_size=2)
    page = await service.query(query)

    assert index.queries == [query]
    assert [h.product_id for h in page.items] == [1, 2] and page.total == 3
    assert page.items[0].price == Decimal("4.20")
    assert spans.last("search.query") == {
        "ecom.search.query": "tea", "ecom.search.page": 1, "ecom.search.category": "tea",
        "ecom.search.results": 3,
    }


async def test_query_text_on_the_span_is_cut_and_category_left_out_when_absent() -> None:
    service, _, spans = _service()
    await service.query(SearchQuery("x" * 150))
    attrs = spans.last("search.query")
    assert attrs["ecom.search.query"] == "x" * 100
    assert "ecom.search.category" not in attrs and attrs["ecom.search.results"] == 0


async def test_a_product_change_upserts_active_and_removes_inactive_or_deleted() -> None:
    service, index, spans = _service()
    await service.apply_product_change(_doc(5), 5)
    assert 5 in index.docs and spans.last("search.update")["ecom.search.action"] == "upsert"

    renamed = _doc(5, "Oolong")
    await service.apply_product_change(renamed, 5)
    await service.apply_product_change(renamed, 5)  # a replay changes nothing
    assert index.docs == {5: renamed}

    await service.apply_product_change(_doc(5, active=False), 5)
    assert index.docs == {} and index.deleted == [5]
    assert spans.last("search.update") == {"ecom.product.id": 5, "ecom.search.action": "delete"}
    await service.apply_product_change(None, 6)  # deleted product: delete, harmless if absent
    assert index.deleted == [5, 6]


async def test_a_document_for_another_product_is_refused_before_the_index() -> None:
    service, index, spans = _service()
    with pytest.raises(ValidationFailed):
        await service.apply_product_change(_doc(5), 6)
    assert index.docs == {} and index.deleted == [] and spans.named("search.update") == []
