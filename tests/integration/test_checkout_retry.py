"""A checkout pushed back by a busy pool after its order committed, retried as a client does.

The pool's acquire timeout (``Overloaded``, a 503 with Retry-After) can hit the unit of work
that settles the payment, after the order, its stock reservation and the charge happened. The
client's retry of the same cart must finish that order: neither be refused for the stock the
order holds, nor buy the cart a second time.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import asyncpg
import pytest

from ecomctl.bootstrap import ShopStack
from ecomctl.domain.models import CheckoutOutcome
from ecomctl.errors import CheckoutInProgress, EmptyCart, Overloaded
from ecomctl.services.payment import GatewayRecord, GatewayResult, PaymentGateway
from tests.shopdata import make_catalogue, make_users


class _BusyPoolAfterCharge:
    """The shop's gateway client, except that once the first charge is answered it holds
    every pooled connection for longer than the pool's acquire timeout: the checkout's next
    unit of work (settling) finds none free, as on a machine busy with other work."""

    def __init__(self, pool: asyncpg.Pool, hold_s: float) -> None:
        self.inner: PaymentGateway | None = None  # the shop's client, once swapped in
        self._pool = pool
        self._hold_s = hold_s
        self.armed = True
        self.hog: asyncio.Task[None] | None = None

    async def charge(self, *, order_id: UUID, amount: Decimal, currency: str,
                     idempotency_key: str) -> GatewayResult:
        assert self.inner is not None
        answer = await self.inner.charge(order_id=order_id, amount=amount,
                                          currency=currency, idempotency_key=idempotency_key)
        if self.armed:
            self.armed = False
            held = asyncio.Event()
            self.hog = asyncio.create_task(self._hold_all(held))
            await held.wait()
        return answer

    async def lookup(self, idempotency_key: str) -> GatewayRecord | None:
        assert self.inner is not None
        return await self.inner.lookup(idempotency_key)

    # The PaymentGateway protocol asks for it; this test never refunds.
    async def refund(self, *, charge_ref: str, amount: Decimal,
                     idempotency_key: str) -> GatewayRecord:
        assert self.inner is not None
        return await self.inner.refund(charge_ref=charge_ref, amount=amount,
                                       idempotency_key=idempotency_key)

    async def _hold_all(self, held: asyncio.Event) -> None:
        conns = []
        try:
            for _ in range(self._pool.get_max_size()):
                conns.append(await self._pool.acquire())
            held.set()
            await asyncio.sleep(self._hold_s)
        finally:
            for conn in conns:
                await self._pool.release(conn)


async def _retry_as_a_client(shop: ShopStack, user_id: int) -> None:
    """Pay the cart again, waiting as told while someone else holds the payment. The failed
    checkout gave its claim back, so the events role's reconciler may take the order first:
    the retry then waits for it, and finds the cart emptied once the order is paid."""
    while True:
        try:
            result = await shop.services.checkout.checkout(user_id)
        except CheckoutInProgress as busy:
            await asyncio.sleep(busy.retry_after_s)
            continue
        except EmptyCart:
            return
        assert result.outcome is CheckoutOutcome.PAID
        return


@pytest.mark.parametrize("stock", [1, 2])
async def test_a_checkout_retried_after_the_pool_pushed_back_pays_its_order_once(
    shop: ShopStack, stock: int
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=stock)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)
    timeout = shop.db.acquire_timeout_s
    assert timeout is not None  # the shop's pool pushes back rather than queue

    busy = _BusyPoolAfterCharge(shop.db.pool, hold_s=timeout + 0.5)
    previous = busy.inner = shop.services.payments.use_gateway(busy)
    try:
        with pytest.raises(Overloaded):
            await shop.services.checkout.checkout(user.id)
        assert busy.hog is not None
        await busy.hog  # the machine calms down; the client retries
        await _retry_as_a_client(shop, user.id)
    finally:
        shop.services.payments.use_gateway(previous)

    async with shop.db.connection() as conn:
        orders = await conn.fetch("SELECT id, status FROM orders WHERE user_id = $1", user.id)
        order_id = orders[0]["id"]
        stock_row = await conn.fetchrow(
            "SELECT on_hand, reserved, sold FROM inventory WHERE product_id = $1",
            catalogue.ids[0])
        payments = await conn.fetch(
            "SELECT attempt, status FROM payments WHERE order_id = $1 ORDER BY attempt",
            order_id)
    # One order, paid; its one unit sold; nothing left reserved.
    assert [(r["id"], r["status"]) for r in orders] == [(order_id, "paid")]
    assert tuple(stock_row) == (stock - 1, 0, 1)
    assert [(r["attempt"], r["status"]) for r in payments] == [(1, "captured")]
    # The gateway's books agree: one capture for this shopper, not one per attempt.
    assert shop.payment_gateway is not None
    ledger = shop.payment_gateway.simulator.ledger()
    assert sum(1 for c in ledger if c["order_id"] == str(order_id)) == 1
    assert (await shop.services.carts.get(user.id)).is_empty
