"""Money and stock under double-clicks, abandoned orders and hostile clients, over HTTP on
the real stack: Idempotency-Key, the pending-order cap, cancel, expiry and cart reuse."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from ecomctl.bootstrap import ShopStack
from tests.shopdata import gateway_faults, http_shopper, make_catalogue


async def _shopper(client: httpx.AsyncClient) -> dict[str, str]:
    return (await http_shopper(client))[0]


async def _add(client: httpx.AsyncClient, auth: dict[str, str], product_id: int,
               quantity: int) -> None:
    added = await client.post("/api/cart/items", headers=auth,
                              json={"product_id": product_id, "quantity": quantity})
    assert added.status_code == 201, added.text


async def _db(shop: ShopStack, sql: str, *args: object) -> list[dict[str, object]]:
    async with shop.db.connection() as conn:
        return [dict(r) for r in await conn.fetch(sql, *args)]


async def _captures(shop: ShopStack, order_ids: list[str]) -> int:
    assert shop.payment_gateway is not None
    ledger = shop.payment_gateway.simulator.ledger()
    return sum(1 for c in ledger if c["order_id"] in order_ids)


async def test_eight_concurrent_checkouts_with_one_key_make_one_order_and_one_capture(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=20)
    auth = await _shopper(client)
    await _add(client, auth, catalogue.ids[0], 1)
    key = {"Idempotency-Key": str(uuid.uuid4()), **auth}

    answers = await asyncio.gather(*(client.post("/api/checkout", headers=key)
                                      for _ in range(8)))

    codes = sorted(a.status_code for a in answers)
    assert set(codes) <= {200, 409}, [a.text for a in answers]
    first = next(a for a in answers if a.status_code == 200)
    order_id = first.json()["order_id"]
    # Every 200 is the same response; every 409 says the first is still running.
    assert {a.json()["order_id"] for a in answers if a.status_code == 200} == {order_id}
    conflicts = [a for a in answers if a.status_code == 409]
    assert all(a.json()["error"] == "idempotency_conflict" and a.headers["Retry-After"]
               for a in conflicts)
    mine = await _db(shop, "SELECT o.id FROM orders o JOIN users u ON u.id = o.user_id "
                           "WHERE u.id = (SELECT user_id FROM orders WHERE id = $1)",
                     uuid.UUID(order_id))
    assert len(mine) == 1
    assert await _captures(shop, [order_id]) == 1

    # The client retries after the 409s: the first response, replayed, nothing charged.
    replay = await client.post("/api/checkout", headers=key)
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await _captures(shop, [order_id]) == 1
    # The same key with a different body is refused.
    other = await client.post("/api/checkout", headers=key, json={"order_id": order_id})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_mismatch"


async def test_without_a_key_a_double_click_is_two_requests(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    """Documented: no key, no deduplication. The second click pays the cart again only if it
    is still there; here the first click emptied it."""
    catalogue = await make_catalogue(shop, 1, stock=20)
    auth = await _shopper(client)
    await _add(client, auth, catalogue.ids[0], 1)
    first = await client.post("/api/checkout", headers=auth)
    second = await client.post("/api/checkout", headers=auth)
    assert first.status_code == 200
    assert second.status_code == 409 and second.json()["error"] == "empty_cart"


async def test_a_refusal_is_replayed_too_and_keys_are_per_shopper(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    alice, bob = await _shopper(client), await _shopper(client)
    key = str(uuid.uuid4())
    empty = await client.post("/api/orders", headers={"Idempotency-Key": key, **alice})
    assert empty.status_code == 409 and empty.json()["error"] == "empty_cart"
    catalogue = await make_catalogue(shop, 1, stock=5)
    await _add(client, alice, catalogue.ids[0], 1)
    again = await client.post("/api/orders", headers={"Idempotency-Key": key, **alice})
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    # Bob's identical key is his own.
    await _add(client, bob, catalogue.ids[0], 1)
    bobs = await client.post("/api/orders", headers={"Idempotency-Key": key, **bob})
    assert bobs.status_code == 201, bobs.text
    for bad in ("", "tab\there", "x" * 256):
        refused = await client.post("/api/orders", headers={"Idempotency-Key": bad, **bob})
        assert refused.status_code == 422, (bad, refused.text)


async def test_pending_orders_are_reused_capped_cancelled_and_expire(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    cap = shop.services.orders.policy.max_pending
    catalogue = await make_catalogue(shop, cap + 1, stock=10)
    auth = await _shopper(client)
    await _add(client, auth, catalogue.ids[0], 1)
    first = await client.post("/api/orders", headers=auth)
    assert first.status_code == 201 and first.json()["expires_at"]
    # The same cart again: the open order, not a second reservation.
    again = await client.post("/api/orders", headers=auth)
    assert again.json()["id"] == first.json()["id"]
    ids = [first.json()["id"]]
    for product_id in catalogue.ids[1:cap]:
        await _add(client, auth, product_id, 1)
        placed = await client.post("/api/orders", headers=auth)
        assert placed.status_code == 201, placed.text
        ids.append(placed.json()["id"])
    await _add(client, auth, catalogue.ids[cap], 1)
    over = await client.post("/api/orders", headers=auth)
    assert over.status_code == 409 and over.json()["error"] == "too_many_pending_orders"

    # Someone else cannot cancel it (404); the owner can, once (then 409), and its unit
    # of the first product is free again (the later orders hold the cart's units too).
    reserved = "SELECT reserved FROM inventory WHERE product_id = $1"
    before = await _db(shop, reserved, catalogue.ids[0])
    stranger = await _shopper(client)
    assert (await client.post(f"/api/orders/{ids[0]}/cancel",
                              headers=stranger)).status_code == 404
    cancelled = await client.post(f"/api/orders/{ids[0]}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await client.post(f"/api/orders/{ids[0]}/cancel", headers=auth)).status_code == 409
    assert before == [{"reserved": cap}]
    assert await _db(shop, reserved, catalogue.ids[0]) == [{"reserved": cap - 1}]
    # Below the cap again.
    assert (await client.post("/api/orders", headers=auth)).status_code == 201


async def test_a_product_exhausted_by_pending_orders_is_sellable_again_after_expiry(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=4)
    product = catalogue.ids[0]
    hoarders = [await _shopper(client) for _ in range(2)]
    held = []
    for auth in hoarders:
        await _add(client, auth, product, 2)
        placed = await client.post("/api/orders", headers=auth)
        assert placed.status_code == 201, placed.text
        held.append(uuid.UUID(placed.json()["id"]))
    buyer = await _shopper(client)
    await _add(client, buyer, product, 1)
    refused = await client.post("/api/checkout", headers=buyer)
    assert refused.status_code == 409 and refused.json()["error"] == "out_of_stock"

    # Their hold runs out (moved into the past rather than waiting 15 minutes); the
    # events role's sweeper cancels them on its own.
    await _db(shop, "UPDATE orders SET expires_at = now() - interval '1 second' "
                    "WHERE id = ANY($1::uuid[])", held)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = await _db(shop, "SELECT status FROM orders WHERE id = ANY($1::uuid[])", held)
        if all(r["status"] == "cancelled" for r in rows):
            break
        await asyncio.sleep(0.2)
    assert all(r["status"] == "cancelled" for r in rows), rows
    events = await _db(shop, "SELECT count(*) AS n FROM outbox WHERE event_type = "
                             "'order.expired' AND aggregate_id = ANY($1::text[])",
                       [str(h) for h in held])
    assert events == [{"n": 2}]
    # An expired order cannot be paid...
    late = await client.post("/api/checkout", headers=hoarders[0],
                             json={"order_id": str(held[0])})
    assert late.status_code == 409
    # ...and the stock sells again.
    bought = await client.post("/api/checkout", headers=buyer)
    assert bought.status_code == 200, bought.text


async def test_an_answer_lost_then_settled_as_paid_is_not_bought_again(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    """The shopper got 202 (the gateway captured, the answer was lost); the reconciler
    settles the order as paid. "Pay the cart" again must find it empty, not charge twice."""
    catalogue = await make_catalogue(shop, 1, stock=3)
    auth = await _shopper(client)
    await _add(client, auth, catalogue.ids[0], 1)
    async with gateway_faults(shop, timeout_rate=1.0, timeout_capture_rate=1.0,
                              replay_timeout_rate=1.0, timeout_delay_s=1.0):
        lost = await client.post("/api/checkout", headers=auth)
        assert lost.status_code == 202, lost.text
        order_id = lost.json()["order_id"]
        assert (await shop.services.reconciler.reconcile(now=True)).paid >= 1

    order = await client.get(f"/api/orders/{order_id}", headers=auth)
    assert order.json()["status"] == "paid"
    assert (await client.get("/api/cart", headers=auth)).json() == {"lines": []}
    again = await client.post("/api/checkout", headers=auth)
    assert (again.status_code, again.json()["error"]) == (409, "empty_cart")
    orders = await client.get("/api/orders", headers=auth)
    assert [o["id"] for o in orders.json()["items"]] == [order_id]
    assert await _captures(shop, [order_id]) == 1
