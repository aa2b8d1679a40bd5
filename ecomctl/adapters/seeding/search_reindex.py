"""The search index after a seed: recreated empty, then every active product bulk-indexed
from PostgreSQL (what was committed, not what we meant to write), then refreshed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import asyncpg
from elasticsearch import AsyncElasticsearch

from ecomctl.adapters.search import ProductSearchIndex
from ecomctl.domain.search import ProductDocument

DOCS_PER_REQUEST_GROUP = 5_000  # rows fetched per cursor round trip, sent as bulk requests
CONCURRENT_GROUPS = 2  # bulk requests in flight: keeps the node busy while we build the next

_ACTIVE_PRODUCTS = """
SELECT p.id, p.sku, p.name, p.description, c.slug AS category_slug,
       c.name AS category_name, p.price, p.currency, p.active
FROM products p JOIN categories c ON c.id = p.category_id
WHERE p.active
ORDER BY p.id
"""


async def recreate_index(client: AsyncElasticsearch, alias: str) -> ProductSearchIndex:
    """The alias's index, deleted and created afresh (empty)."""
    search = ProductSearchIndex(client, alias)
    await search.recreate()
    return search


async def index_active_products(
    conn: asyncpg.Connection,
    search: ProductSearchIndex,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Bulk index every active product; returns how many were indexed."""
    total = int(await conn.fetchval("SELECT count(*) FROM products WHERE active"))
    indexed = 0
    in_flight: set[asyncio.Task[int]] = set()
    try:
        async with aclosing(_groups(conn)) as groups:
            async for group in groups:
                if len(in_flight) >= CONCURRENT_GROUPS:
                    done, in_flight = await asyncio.wait(
                        in_flight, return_when=asyncio.FIRST_COMPLETED
                    )
                    indexed += sum(task.result() for task in done)
                    if progress is not None:
                        progress(indexed, total)
                in_flight.add(asyncio.create_task(search.bulk_index(group)))
        for task in asyncio.as_completed(in_flight):
            indexed += await task
            if progress is not None:
                progress(indexed, total)
    finally:
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
    await search.refresh()
    return indexed


async def _groups(conn: asyncpg.Connection) -> AsyncGenerator[list[ProductDocument], None]:
    async with conn.transaction():
        cursor = await conn.cursor(_ACTIVE_PRODUCTS)
        while rows := await cursor.fetch(DOCS_PER_REQUEST_GROUP):
            yield [_document(row) for row in rows]


def _document(row: Any) -> ProductDocument:
    return ProductDocument(
        product_id=row["id"], sku=row["sku"], name=row["name"],
        description=row["description"], category_slug=row["category_slug"],
        category_name=row["category_name"], price=row["price"], currency=row["currency"],
        active=row["active"],
    )
