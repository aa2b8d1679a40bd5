"""Stock SQL: reservations move units from available to reserved with one guarded statement.

Rows are locked in product-id order (the ``locked`` CTE), so two checkouts over the same
products never deadlock, and the ``on_hand - reserved >= qty`` guard makes overselling
impossible without any check-then-act window.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from ecomctl.domain.models import OrderLine

_RESERVE = """
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::int[]) AS r(product_id, qty)
), locked AS (
    SELECT i.product_id FROM inventory i JOIN req USING (product_id)
    ORDER BY i.product_id FOR UPDATE OF i
)
UPDATE inventory i SET reserved = i.reserved + req.qty
FROM req JOIN locked USING (product_id)
WHERE i.product_id = req.product_id AND i.on_hand - i.reserved >= req.qty
RETURNING i.product_id
"""

_RECORD_RESERVATIONS = """
INSERT INTO inventory_reservations (order_id, product_id, quantity, status)
SELECT $1, product_id, qty, 'reserved' FROM unnest($2::bigint[], $3::int[]) AS r(product_id, qty)
"""

# Commit (sold) or release the reservations of one order, exactly once: only rows still in
# 'reserved' move, so a duplicate call changes nothing.
_SETTLE = """
WITH settled AS (
    UPDATE inventory_reservations SET status = $2, updated_at = now()
    WHERE order_id = $1 AND status = 'reserved'
    RETURNING product_id, quantity
), ordered AS (
    SELECT i.product_id FROM inventory i JOIN settled USING (product_id)
    ORDER BY i.product_id FOR UPDATE OF i
)
UPDATE inventory i
SET reserved = i.reserved - s.quantity,
    on_hand = i.on_hand - CASE WHEN $2 = 'committed' THEN s.quantity ELSE 0 END,
    sold = i.sold + CASE WHEN $2 = 'committed' THEN s.quantity ELSE 0 END
FROM settled s JOIN ordered USING (product_id)
WHERE i.product_id = s.product_id
RETURNING i.product_id
"""


class PostgresInventory:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def reserve(self, order_id: UUID, lines: Sequence[OrderLine]) -> list[int]:
        """Reserve every line or nothing; returns the product ids that lacked stock (empty
        on success; the caller then rolls the transaction back)."""
        ids = [line.product_id for line in lines]
        quantities = [line.quantity for line in lines]
        reserved = {row["product_id"] for row in await self._conn.fetch(_RESERVE, ids, quantities)}
        short = [pid for pid in ids if pid not in reserved]
        if not short:
            await self._conn.execute(_RECORD_RESERVATIONS, order_id, ids, quantities)
        return short

    async def commit(self, order_id: UUID) -> int:
        """Payment captured: reserved units leave stock as sold."""
        return len(await self._conn.fetch(_SETTLE, order_id, "committed"))

    async def release(self, order_id: UUID) -> int:
        """Order cancelled or expired: reserved units become available again."""
        return len(await self._conn.fetch(_SETTLE, order_id, "released"))

    async def stall(self, seconds: float) -> None:
        await self._conn.execute("SELECT pg_sleep($1)", seconds)
