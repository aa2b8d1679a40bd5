"""Stock SQL: reservations move units from available to reserved with one guarded statement.

Rows are locked in product-id order (the ``locked`` and ``ordered`` CTEs), so two checkouts
over the same products never deadlock, and the ``on_hand - reserved >= qty`` guard makes overselling
impossible without any check-then-act window.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID

import asyncpg

from ecomctl.adapters.postgres.outbox import event_parameters, events_cte
from ecomctl.services.ports.orders import NewOrder, Placement

# A new order with its stock, in one statement: the lines' stock rows are locked in
# product-id order and reserved under the guard; only if every line got its stock are the
# order, its items, its reservations and its events (outbox) inserted. Otherwise nothing is
# inserted and the caller rolls the transaction back (undoing the lines that were reserved).
# The hold and the payment's lease are timed by the database's clock.
_PLACE = f"""
WITH req AS (
    SELECT * FROM unnest($2::bigint[], $3::int[], $4::numeric[]) AS r(product_id, qty, price)
), locked AS (
    SELECT i.product_id FROM inventory i JOIN req USING (product_id)
    ORDER BY i.product_id FOR UPDATE OF i
), reserved AS (
    UPDATE inventory i SET reserved = i.reserved + req.qty
    FROM req JOIN locked USING (product_id)
    WHERE i.product_id = req.product_id AND i.on_hand - i.reserved >= req.qty
    RETURNING i.product_id
), o AS (
    INSERT INTO orders (id, user_id, status, total, currency, expires_at, cart_revision,
                        payment_holder, payment_lease_until, payment_claims)
    SELECT $1, $5, $6, $7, $8, now() + $9::interval, $10, $11,
           clock_timestamp() + make_interval(secs => $12), ($11::uuid IS NOT NULL)::int
    WHERE (SELECT count(*) FROM reserved) = cardinality($2::bigint[])
    RETURNING created_at, expires_at
), items AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT $1, req.product_id, req.qty, req.price FROM o, req
), reservations AS (
    INSERT INTO inventory_reservations (order_id, product_id, quantity, status)
    SELECT $1, req.product_id, req.qty, 'reserved' FROM o, req
), events AS (
    {events_cte(13, "o")}
)
SELECT o.created_at, o.expires_at, (SELECT array_agg(product_id) FROM reserved) AS reserved
FROM (SELECT 1) AS one LEFT JOIN o ON true
"""


def settle_stock(order_id: str, outcome: str, guard: str = "") -> str:
    """CTEs (``settled``, ``ordered``, ``stock``: the lines settled) that commit (sold) or
    release the reservations of the order ``order_id`` (SQL: a parameter) as ``outcome``
    ('committed' or 'released'; NULL: none), exactly once: only rows still in 'reserved'
    move, so a duplicate call changes nothing. ``guard``: an SQL condition the reservations
    move only under."""
    condition = f" AND {guard}" if guard else ""
    return f"""settled AS (
    UPDATE inventory_reservations SET status = {outcome}, updated_at = now()
    WHERE order_id = {order_id} AND status = 'reserved' AND {outcome}::text IS NOT NULL
          {condition}
    RETURNING product_id, quantity
), ordered AS (
    SELECT i.product_id FROM inventory i JOIN settled USING (product_id)
    ORDER BY i.product_id FOR UPDATE OF i
), stock AS (
    UPDATE inventory i
    SET reserved = i.reserved - s.quantity,
        on_hand = i.on_hand - CASE WHEN {outcome} = 'committed' THEN s.quantity ELSE 0 END,
        sold = i.sold + CASE WHEN {outcome} = 'committed' THEN s.quantity ELSE 0 END
    FROM settled s JOIN ordered USING (product_id)
    WHERE i.product_id = s.product_id
    RETURNING i.product_id
)"""


_SETTLE = f"WITH {settle_stock('$1', '$2')} SELECT product_id FROM stock"


class PostgresInventory:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def reserve(self, new: NewOrder) -> Placement:
        """The order placed with its stock reserved, or the products that lacked stock (then
        nothing is inserted; the caller rolls the transaction back)."""
        order = new.order
        ids = [line.product_id for line in order.lines]
        row = await self._conn.fetchrow(
            _PLACE, order.id, ids, [line.quantity for line in order.lines],
            [line.unit_price for line in order.lines],
            order.user_id, order.status.value, order.total, order.currency, new.hold_for,
            order.cart_revision, new.holder, new.lease_s, *event_parameters(new.events),
        )
        if row["created_at"] is None:
            reserved = set(row["reserved"] or ())
            return Placement(None, tuple(pid for pid in ids if pid not in reserved))
        return Placement(replace(order, created_at=row["created_at"],
                                 expires_at=row["expires_at"]))

    async def commit(self, order_id: UUID) -> int:
        """Payment captured: reserved units leave stock as sold."""
        return len(await self._conn.fetch(_SETTLE, order_id, "committed"))

    async def release(self, order_id: UUID) -> int:
        """Order cancelled or expired: reserved units become available again."""
        return len(await self._conn.fetch(_SETTLE, order_id, "released"))

    async def stall(self, seconds: float) -> None:
        await self._conn.execute("SELECT pg_sleep($1)", seconds)
