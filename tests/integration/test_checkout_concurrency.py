"""200 shoppers race for 50 units: the guarded reservation must sell exactly the stock."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from ecomctl.adapters.payment_gateway import PaymentGatewayClient
from ecomctl.bootstrap import ShopStack
from ecomctl.domain.models import CheckoutResult
from ecomctl.errors import OutOfStock, Overloaded
from tests.shopdata import make_catalogue, make_users

SHOPPERS = 200
PRODUCTS = 10
UNITS_EACH = 5


async def test_200_concurrent_checkouts_sell_exactly_the_stock(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, PRODUCTS, stock=UNITS_EACH)
    users = await make_users(shop, SHOPPERS)
    for i, user in enumerate(users):
        await shop.services.carts.add_item(user.id, catalogue.ids[i % PRODUCTS], 1)

    async def checkout(user_id: int) -> CheckoutResult:
        # 200 at once on a pool of 20: the pool's acquire timeout pushes some back
        # (Overloaded, a 503 over HTTP); they try again, as a client does.
        while True:
            try:
                return await shop.services.checkout.checkout(user_id)
            except Overloaded:
                await asyncio.sleep(0.05)

    # The race is about stock: give the in-process gateway, which shares this saturated
    # event loop, time to answer (a lost answer leaves the order payment_unknown instead).
    assert shop.payment_gateway_url is not None
    patient = PaymentGatewayClient(shop.payment_gateway_url, timeout_s=30)
    previous = shop.services.payments.use_gateway(patient)
    try:
        results = await asyncio.gather(*(checkout(user.id) for user in users),
                                       return_exceptions=True)
    finally:
        shop.services.payments.use_gateway(previous)
        await patient.aclose()

    paid = [r for r in results if not isinstance(r, BaseException) and r.succeeded]
    out_of_stock = [r for r in results if isinstance(r, OutOfStock)]
    unexpected = [r for r in results if r not in paid and not isinstance(r, OutOfStock)]
    assert unexpected == [], unexpected[:3]
    assert (len(paid), len(out_of_stock)) == (PRODUCTS * UNITS_EACH, SHOPPERS - 50)

    user_ids = [u.id for u in users]
    async with shop.db.connection() as conn:
        stock = await conn.fetch(
            "SELECT product_id, on_hand, reserved, sold FROM inventory "
            "WHERE product_id = ANY($1::bigint[])",
            catalogue.ids,
        )
        orders = await conn.fetch(
            "SELECT status, count(*) AS n, sum(total) AS total FROM orders "
            "WHERE user_id = ANY($1::bigint[]) GROUP BY status",
            user_ids,
        )
        captured = await conn.fetchval(
            "SELECT sum(p.amount) FROM payments p JOIN orders o ON o.id = p.order_id "
            "WHERE o.user_id = ANY($1::bigint[]) AND p.status = 'captured'",
            user_ids,
        )
    for row in stock:
        assert (row["on_hand"], row["reserved"], row["sold"]) == (0, 0, UNITS_EACH), dict(row)
    # Losers rolled back entirely: no order row, no reservation left behind.
    assert {r["status"]: r["n"] for r in orders} == {"paid": 50}
    assert captured == sum(r["total"] for r in orders) == sum(
        (p.total for p in paid), Decimal("0")
    )
    # Winners' carts are empty, losers keep theirs to try again.
    carts = [await shop.services.carts.get(u.id) for u in users]
    assert sum(1 for c in carts if c.is_empty) == 50

    # Every paid order gets exactly one shipment once the consumers are drained, and the
    # shipment consumer saw each committed order's events exactly once.
    await shop.drain(60)
    async with shop.db.connection() as conn:
        shipments = await conn.fetch(
            "SELECT o.id, count(s.id) AS n FROM orders o LEFT JOIN shipments s "
            "ON s.order_id = o.id WHERE o.user_id = ANY($1::bigint[]) GROUP BY o.id",
            user_ids,
        )
        consumed = await conn.fetch(
            "SELECT x.event_type, count(pe.event_id) AS n, count(DISTINCT x.event_id) AS events "
            "FROM outbox x LEFT JOIN processed_events pe "
            "ON pe.event_id = x.event_id AND pe.consumer = 'shipment' "
            "WHERE x.topic = 'order-events' AND x.aggregate_id = ANY($1::text[]) "
            "GROUP BY x.event_type",
            [str(r.order_id) for r in paid],
        )
    assert len(shipments) == 50 and all(r["n"] == 1 for r in shipments)
    by_type = {r["event_type"]: (r["n"], r["events"]) for r in consumed}
    assert by_type["order.placed"] == (50, 50)
    assert by_type["order.paid"] == (50, 50)
