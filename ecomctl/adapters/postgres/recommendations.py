"""Co-purchase and best-seller queries over the order history."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from ecomctl.adapters.postgres.database import Database

_BOUGHT_TOGETHER = """
SELECT other.product_id, count(*) AS together
FROM order_items seed
JOIN orders o ON o.id = seed.order_id AND o.status IN ('paid', 'shipped', 'delivered')
JOIN order_items other ON other.order_id = seed.order_id
JOIN products p ON p.id = other.product_id AND p.active
WHERE seed.product_id = ANY($1::bigint[]) AND other.product_id <> ALL($1::bigint[])
GROUP BY other.product_id
ORDER BY together DESC, other.product_id
LIMIT $2
"""

_BEST_SELLERS_OF_CATEGORIES = """
SELECT p.id AS product_id
FROM products p JOIN inventory i ON i.product_id = p.id
WHERE p.active AND p.category_id IN (
    SELECT category_id FROM products WHERE id = ANY($1::bigint[])
) AND p.id <> ALL($1::bigint[])
ORDER BY i.sold DESC, p.id
LIMIT $2
"""

_BEST_SELLERS = """
SELECT p.id AS product_id FROM products p JOIN inventory i ON i.product_id = p.id
WHERE p.active ORDER BY i.sold DESC, p.id LIMIT $1
"""


async def bought_together(
    conn: asyncpg.Connection, product_ids: Sequence[int], limit: int
) -> list[int]:
    rows = await conn.fetch(_BOUGHT_TOGETHER, list(product_ids), limit)
    return [r["product_id"] for r in rows]


async def best_sellers(
    conn: asyncpg.Connection, near_product_ids: Sequence[int], limit: int
) -> list[int]:
    """Best sellers of the categories of ``near_product_ids`` (of the shop if empty)."""
    if near_product_ids:
        rows = await conn.fetch(_BEST_SELLERS_OF_CATEGORIES, list(near_product_ids), limit)
    else:
        rows = await conn.fetch(_BEST_SELLERS, limit)
    return [r["product_id"] for r in rows]


class PostgresPurchaseHistory:
    """The recommendation service's purchase history: the queries above, each on a pooled
    connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def bought_together(self, product_ids: Sequence[int], limit: int) -> list[int]:
        async with self._db.connection() as conn:
            return await bought_together(conn, product_ids, limit)

    async def best_sellers(self, near_product_ids: Sequence[int], limit: int) -> list[int]:
        async with self._db.connection() as conn:
            return await best_sellers(conn, near_product_ids, limit)
