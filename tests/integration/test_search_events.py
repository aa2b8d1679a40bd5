"""The search index follows product changes through product-events on Kafka, and search
requests are traced by the Elasticsearch client's own OpenTelemetry support."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.bootstrap import ShopStack
from ecomctl.domain.search import SearchQuery
from tests.shopdata import make_catalogue


async def _search(shop: ShopStack, word: str) -> dict[int, Decimal]:
    await shop.search_index.refresh()
    page = await shop.services.search.query(SearchQuery(word, page_size=50))
    return {hit.product_id: hit.price for hit in page.items}


async def test_price_change_and_delisting_reach_the_index(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 3, index=True)
    word = catalogue.products[0].name.split()[0]
    assert set(await _search(shop, word)) == set(catalogue.ids)

    await shop.services.products.update_price(catalogue.ids[0], Decimal("77.70"))
    await shop.services.products.set_active(catalogue.ids[1], False)
    await shop.drain(30)

    for _ in range(50):  # the consumer committed; the index refresh is near real time
        found = await _search(shop, word)
        if catalogue.ids[1] not in found and found.get(catalogue.ids[0]) == Decimal("77.70"):
            break
        await asyncio.sleep(0.1)
    assert found == {catalogue.ids[0]: Decimal("77.70"),
                     catalogue.ids[2]: catalogue.products[2].price}


async def test_search_spans_come_from_the_elasticsearch_client(
    shop: ShopStack, spans: InMemorySpanExporter
) -> None:
    with shop.telemetry.tracer("shopper").span("journey.search") as root:
        await shop.services.search.query(SearchQuery("anything at all"))
    trace_id = root.get_span_context().trace_id
    trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    es = [s for s in trace if (s.attributes or {}).get("db.system.name") == "elasticsearch"]
    assert es, [(s.name, dict(s.attributes or {})) for s in trace]
    assert es[0].parent is not None
    assert {str(s.resource.attributes["service.name"]) for s in es} == {"search"}
