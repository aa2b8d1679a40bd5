"""Deadlocks and timeouts on the real PostgreSQL. The transaction PostgreSQL rolls back to
break a deadlock is a retryable ``Contention`` (503 with Retry-After over HTTP), never a 500;
the expiry sweep forced into one recovers, and the housekeeping loop that runs it keeps
running. A timeout is the database's only when the driver raised it."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest

from ecomctl.bootstrap import ShopStack
from ecomctl.errors import BackendUnavailable, Contention
from tests.shopdata import http_shopper, make_catalogue

LOCK = "SELECT 1 FROM inventory WHERE product_id = $1 FOR UPDATE"


async def test_the_transaction_rolled_back_by_a_deadlock_is_contention(shop: ShopStack) -> None:
    first_id, second_id = (await make_catalogue(shop, 2, stock=5)).ids
    both_locked_one = asyncio.Barrier(2)

    async def lock_in_turn(first: int, second: int) -> None:
        async with shop.db.transaction() as conn:
            await conn.execute(LOCK, first)
            await both_locked_one.wait()
            await conn.execute(LOCK, second)

    outcomes = await asyncio.gather(lock_in_turn(first_id, second_id),
                                    lock_in_turn(second_id, first_id), return_exceptions=True)
    losers = [o for o in outcomes if o is not None]
    assert len(losers) == 1 and isinstance(losers[0], Contention), outcomes
    assert isinstance(losers[0].__cause__, asyncpg.DeadlockDetectedError)
    assert losers[0].retry_after_s == 1


async def _waiting_on_a_lock(shop: ShopStack) -> bool:
    async with shop.db.connection() as conn:
        return bool(await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%inventory%' AND pid <> pg_backend_pid())"))


async def _status(shop: ShopStack, order_id: uuid.UUID) -> str:
    async with shop.db.connection() as conn:
        return str(await conn.fetchval("SELECT status FROM orders WHERE id = $1", order_id))


async def _pending_order(client: httpx.AsyncClient, product_ids: list[int]) -> uuid.UUID:
    auth, _ = await http_shopper(client)
    for product_id in product_ids:
        added = await client.post("/api/cart/items", headers=auth,
                                  json={"product_id": product_id, "quantity": 1})
        assert added.status_code == 201, added.text
    placed = await client.post("/api/orders", headers=auth)
    assert placed.status_code == 201, placed.text
    return uuid.UUID(placed.json()["id"])


async def _expire(shop: ShopStack, order_id: uuid.UUID) -> uuid.UUID:
    """Its hold ran out (moved into the past rather than waiting 15 minutes)."""
    async with shop.db.connection() as conn:
        await conn.execute("UPDATE orders SET expires_at = now() - interval '1 second' "
                           "WHERE id = $1", order_id)
    return order_id


async def _cancelled_within(shop: ShopStack, order_id: uuid.UUID, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await _status(shop, order_id) == "cancelled":
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_sweep_forced_into_a_deadlock_recovers_and_housekeeping_goes_on(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    """The running shop's sweeper (the events role's housekeeping, every second) expires an
    order of two products. A hostile transaction holds the second product, waits until the
    sweeper holds the first and waits for the second, then asks for the first: PostgreSQL's
    deadlock check fires first for the sweeper (it waited first) and rolls it back."""
    low, high = sorted((await make_catalogue(shop, 2, stock=5)).ids)
    order_id = await _pending_order(client, [low, high])
    async with shop.db.transaction() as hostile:
        await hostile.execute(LOCK, high)
        await _expire(shop, order_id)
        deadline = time.monotonic() + 15
        while not await _waiting_on_a_lock(shop):
            assert time.monotonic() < deadline, "the sweeper never reached the locked product"
            await asyncio.sleep(0.05)
        await hostile.execute(LOCK, low)  # the sweeper is the victim: this one is granted
        assert await _status(shop, order_id) == "pending"
    # The hostile transaction is gone; the next round expires the order, stock back once.
    assert await _cancelled_within(shop, order_id, 15)
    async with shop.db.connection() as conn:
        reserved = await conn.fetch("SELECT reserved FROM inventory WHERE product_id = "
                                    "ANY($1::bigint[])", [low, high])
    assert [r["reserved"] for r in reserved] == [0, 0]
    # And the loop is still alive: another order expires on its own.
    assert await _cancelled_within(shop, await _expire(shop, await _pending_order(
        client, [low])), 15)


async def test_a_timeout_is_the_databases_only_when_the_driver_raised_it(
    shop: ShopStack,
) -> None:
    """A statement timeout (asyncpg raised it) means the database did not answer; the
    caller's own timeout, on a live connection, stays the caller's."""
    with pytest.raises(BackendUnavailable):
        async with shop.db.connection() as conn:
            await conn.fetchval("SELECT pg_sleep(1)", timeout=0.05)
    with pytest.raises(TimeoutError) as raised:
        async with shop.db.connection() as conn:
            await conn.fetchval("SELECT 1")
            await asyncio.wait_for(asyncio.sleep(1), timeout=0.01)
    assert not isinstance(raised.value, BackendUnavailable)
