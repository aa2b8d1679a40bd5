"""Product search against the real Elasticsearch of the local stack.

Each module run owns its own alias (``it-products-<uuid>``) and deletes its indices at the end;
tests that change documents use ids and words no other test queries for.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.adapters.search import ProductSearchIndex
from ecomctl.config import Settings
from ecomctl.domain.search import ProductDocument, SearchQuery
from ecomctl.errors import BackendUnavailable, InfraError, ValidationFailed
from ecomctl.services.search import SearchService
from ecomctl.telemetry.spans import ServiceTracer

# Every generated description carries this word, so one query returns the whole catalogue.
EVERYWHERE = "catalogueitem"
DESCRIPTION_ONLY = "quokkafeather"  # in exactly one description, in no name
CATEGORIES = {
    "kitchen": "Kitchen and Dining",
    "outdoor": "Outdoor Gear",
    "audio": "Audio Equipment",
    "apparel": "Apparel",
}
ADJECTIVES = ["Aurora", "Basalt", "Cobalt", "Ember", "Fjord", "Glacier", "Harbor", "Indigo"]
MATERIALS = ["Walnut", "Copper", "Linen", "Granite", "Bamboo", "Leather", "Ceramic", "Wool"]
NOUNS = ["Kettle", "Lantern", "Backpack", "Blender", "Jacket", "Skillet", "Compass", "Tent"]
FILLER = ["sturdy", "handmade", "portable", "durable", "elegant", "compact", "practical"]
CATALOGUE_SIZE = 200


def _catalogue(seed: int = 20240613) -> list[ProductDocument]:
    rng = random.Random(seed)
    combos = [(a, m, n) for a in ADJECTIVES for m in MATERIALS for n in NOUNS]
    names = [" ".join(combo) for combo in rng.sample(combos, CATALOGUE_SIZE)]
    docs = []
    for product_id, name in enumerate(names, start=1):
        slug = rng.choice(sorted(CATEGORIES))
        words = " ".join(rng.sample(FILLER, 3))
        extra = f" {DESCRIPTION_ONLY}" if product_id == 17 else ""
        docs.append(
            ProductDocument(
                product_id=product_id,
                sku=f"IT-{product_id:05d}",
                name=name,
                description=f"A {words} {EVERYWHERE}{extra}",
                category_slug=slug,
                category_name=CATEGORIES[slug],
                price=Decimal(rng.randint(100, 50_000)) / 100,
                currency="EUR",
                active=product_id % 10 != 0,
            )
        )
    return docs


DOCS = _catalogue()
ACTIVE = [doc for doc in DOCS if doc.active]
INACTIVE = [doc for doc in DOCS if not doc.active]


@pytest.fixture(scope="module")
async def es_client(settings: Settings) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(settings.elasticsearch_url, request_timeout=30)
    yield client
    await client.close()


@pytest.fixture(scope="module")
async def catalogue(es_client: AsyncElasticsearch) -> AsyncIterator[ProductSearchIndex]:
    index = ProductSearchIndex(es_client, alias=f"it-products-{uuid.uuid4().hex}")
    try:
        await index.ensure_index()
        assert await index.bulk_index(iter(DOCS), refresh=True) == CATALOGUE_SIZE
        yield index
    finally:
        await es_client.indices.delete(index=index.index_name, ignore_unavailable=True)


@pytest.fixture
async def fresh_index(es_client: AsyncElasticsearch) -> AsyncIterator[ProductSearchIndex]:
    """An alias nobody has created yet."""
    index = ProductSearchIndex(es_client, alias=f"it-products-{uuid.uuid4().hex}")
    yield index
    await es_client.indices.delete(index=index.index_name, ignore_unavailable=True)


async def _all_ids(index: ProductSearchIndex, text: str, **filters: Any) -> list[int]:
    """Every hit of a query, page by page, in result order."""
    ids: list[int] = []
    page = 1
    while True:
        result = await index.search(SearchQuery(text, page=page, page_size=100, **filters))
        ids.extend(hit.product_id for hit in result.items)
        if len(ids) >= result.total or not result.items:
            assert len(ids) == result.total
            return ids
        page += 1


async def test_the_catalogue_is_indexed_behind_a_versioned_alias(
    catalogue: ProductSearchIndex, es_client: AsyncElasticsearch
) -> None:
    assert await catalogue.count() == CATALOGUE_SIZE
    aliases = await es_client.indices.get_alias(name=catalogue.alias)
    assert list(aliases.body) == [f"{catalogue.alias}-v1"]
    mapping = await es_client.indices.get_mapping(index=catalogue.index_name)
    properties = mapping[catalogue.index_name]["mappings"]["properties"]
    assert properties["price_cents"]["type"] == "long"
    assert properties["price"]["type"] == "keyword"
    assert properties["name"]["fields"]["keyword"]["type"] == "keyword"


async def test_an_exact_name_ranks_its_product_first(catalogue: ProductSearchIndex) -> None:
    for target in (ACTIVE[0], ACTIVE[57], ACTIVE[-1]):
        page = await catalogue.search(SearchQuery(target.name))
        top = page.items[0]
        assert top.product_id == target.product_id
        assert (top.name, top.category_slug, top.price) == (
            target.name, target.category_slug, target.price,
        )
        assert isinstance(top.price, Decimal)
        assert top.score > page.items[1].score


async def test_a_word_only_in_a_description_finds_its_product(
    catalogue: ProductSearchIndex,
) -> None:
    page = await catalogue.search(SearchQuery(DESCRIPTION_ONLY))
    assert page.total == 1
    assert [hit.product_id for hit in page.items] == [17]


async def test_a_misspelt_word_still_finds_the_product(catalogue: ProductSearchIndex) -> None:
    page = await catalogue.search(SearchQuery("quokkafeathr"))
    assert [hit.product_id for hit in page.items] == [17]


async def test_only_active_products_are_returned(catalogue: ProductSearchIndex) -> None:
    assert sorted(await _all_ids(catalogue, EVERYWHERE)) == sorted(d.product_id for d in ACTIVE)
    for hidden in INACTIVE[:5]:
        assert hidden.product_id not in await _all_ids(catalogue, hidden.name)


async def test_the_category_filter_keeps_one_category(catalogue: ProductSearchIndex) -> None:
    for slug in CATEGORIES:
        expected = sorted(d.product_id for d in ACTIVE if d.category_slug == slug)
        assert expected, "the generated catalogue should use every category"
        assert sorted(await _all_ids(catalogue, EVERYWHERE, category=slug)) == expected
    assert await _all_ids(catalogue, EVERYWHERE, category="no-such-category") == []


async def test_the_price_filter_is_inclusive_at_both_bounds(
    catalogue: ProductSearchIndex,
) -> None:
    prices = sorted({d.price for d in ACTIVE})
    low, high = prices[40], prices[120]
    expected = sorted(d.product_id for d in ACTIVE if low <= d.price <= high)
    found = await _all_ids(catalogue, EVERYWHERE, min_price=low, max_price=high)
    assert sorted(found) == expected
    # both boundary prices are in; one cent beyond either bound they are out
    at_low = {d.product_id for d in ACTIVE if d.price == low}
    at_high = {d.product_id for d in ACTIVE if d.price == high}
    assert at_low | at_high <= set(found)
    narrower = await _all_ids(
        catalogue, EVERYWHERE, min_price=low + Decimal("0.01"), max_price=high - Decimal("0.01")
    )
    assert not (at_low | at_high) & set(narrower)
    assert sorted(narrower) == sorted(set(expected) - at_low - at_high)
    # one bound only, combined with a category
    only_max = await _all_ids(catalogue, EVERYWHERE, max_price=low, category="audio")
    assert sorted(only_max) == sorted(
        d.product_id for d in ACTIVE if d.price <= low and d.category_slug == "audio"
    )


async def test_pages_are_disjoint_and_together_give_the_full_result(
    catalogue: ProductSearchIndex,
) -> None:
    full = await _all_ids(catalogue, "Copper Kettle")
    assert len(full) > 20
    pages: list[list[int]] = []
    page_number = 1
    while True:
        page = await catalogue.search(SearchQuery("Copper Kettle", page=page_number, page_size=7))
        assert (page.page, page.page_size, page.total) == (page_number, 7, len(full))
        if not page.items:
            break
        pages.append([hit.product_id for hit in page.items])
        page_number += 1
    flat = [product_id for ids in pages for product_id in ids]
    assert len(flat) == len(set(flat))  # disjoint
    assert flat == full  # same order as one big page: ties broken by product_id
    assert all(len(ids) == 7 for ids in pages[:-1])
    # a page past the end is empty but still knows the total
    beyond = await catalogue.search(SearchQuery("Copper Kettle", page=50, page_size=7))
    assert beyond.items == [] and beyond.total == len(full)


async def test_upsert_renames_and_delete_removes(catalogue: ProductSearchIndex) -> None:
    doc = ProductDocument(
        product_id=100_001, sku="IT-UPSERT", name="Zanzibar Quasar Teapot",
        description="brews tea", category_slug="kitchen", category_name="Kitchen and Dining",
        price=Decimal("12.34"), currency="EUR", active=True,
    )
    await catalogue.upsert(doc)
    await catalogue.refresh()
    found = await catalogue.search(SearchQuery("Zanzibar Quasar Teapot"))
    assert [hit.product_id for hit in found.items] == [doc.product_id]
    assert found.items[0].price == Decimal("12.34")

    renamed = ProductDocument(**{**doc.__dict__, "name": "Xylophonic Marmalade Gizmo"})
    await catalogue.upsert(renamed)
    await catalogue.refresh()
    found = await catalogue.search(SearchQuery("Xylophonic Marmalade Gizmo"))
    assert [(hit.product_id, hit.name) for hit in found.items] == [
        (doc.product_id, "Xylophonic Marmalade Gizmo")
    ]
    assert (await catalogue.search(SearchQuery("Zanzibar Quasar Teapot"))).total == 0
    assert await catalogue.count() == CATALOGUE_SIZE + 1

    await catalogue.delete(doc.product_id)
    await catalogue.refresh()
    assert (await catalogue.search(SearchQuery("Xylophonic Marmalade Gizmo"))).total == 0
    assert await catalogue.count() == CATALOGUE_SIZE
    await catalogue.delete(doc.product_id)  # already gone: fine
    await catalogue.delete(987_654_321)  # never existed: fine


async def test_ensure_index_is_idempotent_and_safe_concurrently(
    fresh_index: ProductSearchIndex, es_client: AsyncElasticsearch
) -> None:
    await asyncio.gather(*(fresh_index.ensure_index() for _ in range(4)))
    await fresh_index.ensure_index()
    aliases = await es_client.indices.get_alias(name=fresh_index.alias)
    assert list(aliases.body) == [fresh_index.index_name]
    assert await fresh_index.count() == 0


async def test_a_document_elasticsearch_refuses_fails_the_bulk(
    fresh_index: ProductSearchIndex,
) -> None:
    await fresh_index.ensure_index()
    too_big = ProductDocument(
        product_id=2**63, sku="IT-BIG", name="Overflow", description="x",
        category_slug="kitchen", category_name="Kitchen", price=Decimal("1"),
        currency="EUR", active=True,
    )
    with pytest.raises(InfraError) as caught:
        await fresh_index.bulk_index([too_big], refresh=True)
    assert not isinstance(caught.value, BackendUnavailable)
    assert str(2**63) in str(caught.value)
    assert await fresh_index.count() == 0


async def test_searching_an_index_that_was_never_created_is_a_bug_not_an_outage(
    fresh_index: ProductSearchIndex,
) -> None:
    with pytest.raises(InfraError) as caught:
        await fresh_index.search(SearchQuery("anything"))
    assert not isinstance(caught.value, BackendUnavailable)
    assert "index_not_found_exception" in str(caught.value)


async def test_an_unreachable_server_is_backend_unavailable() -> None:
    index = ProductSearchIndex.from_url("http://127.0.0.1:1", alias="it-products-unreachable")
    try:
        with pytest.raises(BackendUnavailable) as caught:
            await index.search(SearchQuery("shoes"))
        assert caught.value.backend == "elasticsearch"
        with pytest.raises(BackendUnavailable):
            await index.ensure_index()
        with pytest.raises(BackendUnavailable):
            await index.bulk_index(DOCS[:3])
        with pytest.raises(BackendUnavailable):
            await index.delete(1)
    finally:
        await index.close()


async def test_the_service_traces_queries_and_applies_product_changes_idempotently(
    catalogue: ProductSearchIndex,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    service = SearchService(catalogue, ServiceTracer("search", provider.get_tracer("it")))

    target = ACTIVE[3]
    page = await service.query(SearchQuery(target.name, page=1, page_size=5))
    assert page.items[0].product_id == target.product_id
    (span,) = exporter.get_finished_spans()
    assert span.name == "search.query"
    assert span.attributes is not None
    assert span.attributes["ecom.search.query"] == target.name
    assert span.attributes["ecom.search.page"] == 1
    assert span.attributes["ecom.search.results"] == page.total
    long_text = "y" * 150
    await service.query(SearchQuery(long_text))
    assert exporter.get_finished_spans()[-1].attributes["ecom.search.query"] == "y" * 100  # type: ignore[index]

    doc = ProductDocument(
        product_id=100_002, sku="IT-SVC", name="Vermilion Orrery Clock",
        description="ticks", category_slug="audio", category_name="Audio Equipment",
        price=Decimal("45.00"), currency="EUR", active=True,
    )

    async def hits_for_doc() -> list[int]:
        await catalogue.refresh()
        return await _all_ids(catalogue, "Vermilion Orrery Clock")

    exporter.clear()
    for _ in range(2):  # a replayed event changes nothing
        await service.apply_product_change(doc, doc.product_id)
        assert await hits_for_doc() == [doc.product_id]
    assert await catalogue.count() == CATALOGUE_SIZE + 1

    deactivated = ProductDocument(**{**doc.__dict__, "active": False})
    await service.apply_product_change(deactivated, doc.product_id)
    assert await hits_for_doc() == []
    assert await catalogue.count() == CATALOGUE_SIZE  # removed, not merely hidden
    for _ in range(2):
        await service.apply_product_change(None, doc.product_id)
        assert await hits_for_doc() == []
    updates = exporter.get_finished_spans()
    assert [s.name for s in updates] == ["search.update"] * 5
    assert [s.attributes["ecom.search.action"] for s in updates] == [  # type: ignore[index]
        "upsert", "upsert", "delete", "delete", "delete",
    ]
    assert {s.attributes["ecom.product.id"] for s in updates} == {doc.product_id}  # type: ignore[index]

    with pytest.raises(ValidationFailed):
        await service.apply_product_change(doc, doc.product_id + 1)

    exporter.clear()
    assert await service.index_products([doc], refresh=True) == 1
    (index_span,) = exporter.get_finished_spans()
    assert index_span.name == "search.index"
    assert index_span.attributes is not None
    assert index_span.attributes["ecom.search.indexed"] == 1
    await service.apply_product_change(None, doc.product_id)
    assert await hits_for_doc() == []
