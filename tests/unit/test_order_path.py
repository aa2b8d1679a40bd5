"""The order path's business core on in-memory ports (tests/unit/order_fakes): checkout,
compensation, the payment state machine, reconciliation, expiry, the pending cap and reuse.
The same behaviour on the real backends is in tests/integration/test_checkout_*.py."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from uuid import uuid4

import pytest

from ecomctl.domain.models import CheckoutOutcome, OrderStatus, PaymentStatus
from ecomctl.errors import (
    BackendUnavailable,
    CheckoutInProgress,
    InvalidTransition,
    NotFound,
    OrderExpired,
    OutOfStock,
    Overloaded,
    TooManyPendingOrders,
)
from tests.unit.order_fakes import stock_of
from tests.unit.order_shop import LEASE, OTHER, USER, Shop


async def test_a_paid_checkout_commits_stock_records_and_publishes() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 2), (2, 1))
    result = await shop.checkout.checkout(USER)
    assert result.outcome is CheckoutOutcome.PAID and result.total == Decimal("22.50")
    assert shop.status(result.order_id) is OrderStatus.PAID
    assert stock_of(shop.state) == {1: (3, 0), 2: (4, 0)}
    assert [p[2] for p in shop.state.payments] == [PaymentStatus.CAPTURED]
    assert shop.state.event_types() == ["order.placed", "order.paid", "payment.captured"]
    assert (await shop.carts.get(USER)).is_empty
    # Two units: the order placed (a transaction), then its settlement written as one
    # statement (no transaction needed: its events travel with it).
    assert (shop.db.opened, shop.db.single_writes) == (2, 1)


async def test_a_decline_is_compensated_and_the_cart_kept() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.DECLINED, False)]
    result = await shop.checkout.checkout(USER)
    assert result.outcome is CheckoutOutcome.PAYMENT_DECLINED
    assert shop.status(result.order_id) is OrderStatus.CANCELLED
    assert stock_of(shop.state)[1] == (5, 0)
    assert shop.state.event_types()[-2:] == ["order.cancelled", "payment.failed"]
    assert not (await shop.carts.get(USER)).is_empty


async def test_out_of_stock_leaves_nothing_behind() -> None:
    shop = Shop(stock=1)
    shop.carts.put(USER, (1, 2))
    with pytest.raises(OutOfStock):
        await shop.checkout.checkout(USER)
    assert shop.state.orders == {} and shop.state.outbox == []
    assert shop.gateway.calls == 0


@pytest.mark.parametrize("captured", [True, False])
async def test_a_lost_answer_is_never_cancelled_on_a_guess(captured: bool) -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.TIMEOUT, captured), (PaymentStatus.TIMEOUT, False)]
    result = await shop.checkout.checkout(USER)
    assert result.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
    assert shop.status(result.order_id) is OrderStatus.PAYMENT_UNKNOWN
    assert stock_of(shop.state)[1] == (5, 1)  # still held
    assert "payment.failed" not in shop.state.event_types()

    # Not yet due (the reconciler waits a moment for requests still in flight)...
    assert (await shop.reconciler.reconcile()).settled == 0
    shop.later(seconds=2)
    report = await shop.reconciler.reconcile()

    if captured:
        assert (report.paid, report.cancelled) == (1, 0)
        assert shop.status(result.order_id) is OrderStatus.PAID
        assert stock_of(shop.state)[1] == (4, 0)
        assert [p[2] for p in shop.state.payments][-1] is PaymentStatus.CAPTURED
        # Paid: its cart is emptied, or the next checkout would buy it again.
        assert (await shop.carts.get(USER)).is_empty
    else:
        assert (report.paid, report.cancelled) == (0, 1)
        assert shop.status(result.order_id) is OrderStatus.CANCELLED
        assert stock_of(shop.state)[1] == (5, 0)
        assert (await shop.carts.get(USER)).items == {1: 1}  # the shopper may try again
    # The books agree: a capture at the gateway if and only if the order is paid.
    assert bool(shop.gateway.captures) is (shop.status(result.order_id) is OrderStatus.PAID)


async def test_the_reconciler_keeps_a_cart_changed_since_and_settles_without_redis() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.TIMEOUT, True), (PaymentStatus.TIMEOUT, False)]
    first = await shop.checkout.checkout(USER)
    shop.carts.put(USER, (1, 1), (2, 1))  # the shopper added something meanwhile
    assert (await shop.reconciler.reconcile(now=True)).paid == 1
    assert (await shop.carts.get(USER)).items == {1: 1, 2: 1}

    shop.carts.put(OTHER, (1, 1))
    shop.gateway.script = [(PaymentStatus.TIMEOUT, True), (PaymentStatus.TIMEOUT, False)]
    second = await shop.checkout.checkout(OTHER)
    shop.carts.unreachable = True  # Redis down: the order is settled all the same
    assert (await shop.reconciler.reconcile(now=True)).paid == 1
    assert shop.status(first.order_id) is shop.status(second.order_id) is OrderStatus.PAID


async def test_paying_a_placed_order_empties_a_cart_holding_exactly_its_items() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 2))
    order = await shop.checkout.place_order(USER)
    assert (await shop.checkout.checkout(USER, order.id)).outcome is CheckoutOutcome.PAID
    assert (await shop.carts.get(USER)).is_empty

    shop.carts.put(USER, (2, 1))
    order = await shop.checkout.place_order(USER)
    shop.carts.put(USER, (2, 3))  # another intent now: not this order's cart any more
    assert (await shop.checkout.checkout(USER, order.id)).outcome is CheckoutOutcome.PAID
    assert (await shop.carts.get(USER)).items == {2: 3}


async def test_an_unreachable_gateway_leaves_the_order_for_the_next_round() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.GATEWAY_ERROR, False)] * 2
    result = await shop.checkout.checkout(USER)
    shop.gateway.reachable = False
    report = await shop.reconciler.reconcile(now=True)
    assert (report.settled, report.still_unknown) == (0, 1)
    assert shop.status(result.order_id) is OrderStatus.PAYMENT_UNKNOWN
    shop.gateway.reachable = True
    assert (await shop.reconciler.reconcile(now=True)).cancelled == 1


async def test_a_checkout_that_died_after_claiming_is_reconciled_once_its_lease_lapsed(
) -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    order = await shop.checkout.place_order(USER)
    await shop.orders.claim(USER, order.id, uuid4())  # ...and the process dies
    with pytest.raises(CheckoutInProgress) as refused:
        await shop.checkout.checkout(USER, order.id)  # the shopper's retry, too early
    assert refused.value.lease_left_s == math.ceil(LEASE.hold_s)
    assert (await shop.reconciler.reconcile()).settled == 0
    shop.later(seconds=LEASE.hold_s)  # not the reconciler's minute of old: the lease
    assert (await shop.reconciler.reconcile()).cancelled == 1
    assert stock_of(shop.state)[1] == (5, 0)


async def test_concurrent_checkouts_of_one_order_charge_once() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    order = await shop.checkout.place_order(USER)
    results = await asyncio.gather(
        *(shop.checkout.checkout(USER, order.id) for _ in range(8)), return_exceptions=True
    )
    paid = [r for r in results if not isinstance(r, BaseException)]
    assert len(paid) == 1 and paid[0].outcome is CheckoutOutcome.PAID
    assert all(isinstance(r, InvalidTransition | CheckoutInProgress)
               for r in results if r not in paid)
    assert shop.gateway.calls == 1


async def test_placing_the_same_cart_again_reuses_the_open_order() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    first = await shop.checkout.place_order(USER)
    again = await shop.checkout.place_order(USER)
    assert again.id == first.id and stock_of(shop.state)[1] == (5, 1)
    # Paying the cart pays that order rather than reserving a second time.
    result = await shop.checkout.checkout(USER)
    assert result.order_id == first.id and stock_of(shop.state)[1] == (4, 0)


async def test_pending_orders_are_capped_per_customer() -> None:
    shop = Shop(max_pending=2)
    for quantity in (1, 2):
        shop.carts.put(USER, (1, quantity))
        await shop.checkout.place_order(USER)
    shop.carts.put(USER, (1, 3))
    with pytest.raises(TooManyPendingOrders):
        await shop.checkout.place_order(USER)
    shop.carts.put(OTHER, (1, 1))
    await shop.checkout.place_order(OTHER)  # the cap is per customer
    # Paying the cart directly is not a new Pending order: allowed at the cap.
    shop.carts.put(USER, (2, 1))
    assert (await shop.checkout.checkout(USER)).succeeded


async def test_expired_orders_release_their_stock_and_cannot_be_paid() -> None:
    shop = Shop(stock=2)
    shop.carts.put(USER, (1, 2))
    order = await shop.checkout.place_order(USER)
    assert stock_of(shop.state)[1] == (2, 2)
    shop.later(minutes=16)
    with pytest.raises(OrderExpired):
        await shop.checkout.checkout(USER, order.id)
    assert await shop.orders.expire_due() == 1
    assert shop.status(order.id) is OrderStatus.CANCELLED
    assert stock_of(shop.state)[1] == (2, 0)
    assert shop.state.event_types()[-1] == "order.expired"
    assert await shop.orders.expire_due() == 0  # once


async def test_only_the_owner_cancels_and_only_a_pending_order() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    order = await shop.checkout.place_order(USER)
    with pytest.raises(NotFound):
        await shop.orders.cancel(OTHER, order.id)
    cancelled = await shop.orders.cancel(USER, order.id)
    assert cancelled.status is OrderStatus.CANCELLED and stock_of(shop.state)[1] == (5, 0)
    with pytest.raises(InvalidTransition):
        await shop.orders.cancel(USER, order.id)


async def _units_of_a_clean_checkout() -> int:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    await shop.checkout.checkout(USER)
    return shop.db.opened


@pytest.mark.parametrize("stock", [1, 2])
async def test_a_checkout_retried_after_a_busy_pool_pays_one_order_once(stock: int) -> None:
    """The pool's acquire timeout (Overloaded, a 503 the client retries) may hit any unit of
    work of a checkout, also after the order and its reservation committed. The retry of the
    same cart must finish that order: not be refused for the stock it holds (stock=1), nor
    buy the cart a second time (stock=2)."""
    units = await _units_of_a_clean_checkout()
    assert units == 2  # the order with its reservation, then the settlement
    for refused in range(1, units + 1):
        shop = Shop(stock=stock)
        shop.carts.put(USER, (1, 1))
        shop.db.refuse = {refused}
        with pytest.raises(Overloaded):
            await shop.checkout.checkout(USER)

        result = await shop.checkout.checkout(USER)  # the client's retry

        assert result.outcome is CheckoutOutcome.PAID, refused
        assert [o.status for o in shop.state.orders.values()] == [OrderStatus.PAID], refused
        assert stock_of(shop.state)[1] == (stock - 1, 0), refused
        assert list(shop.gateway.captures) == [f"order-{result.order_id}"], refused
        assert [p[2] for p in shop.state.payments] == [PaymentStatus.CAPTURED], refused
        assert shop.state.event_types().count("order.paid") == 1
        assert (await shop.carts.get(USER)).is_empty


async def test_a_retry_takes_the_outcome_the_gateway_decided_without_charging_again() -> None:
    shop = Shop(stock=1)
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.DECLINED, False)]
    shop.db.refuse = {2}  # the decline is never recorded
    with pytest.raises(Overloaded):
        await shop.checkout.checkout(USER)
    assert stock_of(shop.state)[1] == (1, 1)

    result = await shop.checkout.checkout(USER)

    assert result.outcome is CheckoutOutcome.PAYMENT_DECLINED
    assert (shop.gateway.calls, shop.gateway.lookups) == (1, 1)  # looked up, not re-charged
    assert shop.status(result.order_id) is OrderStatus.CANCELLED
    assert stock_of(shop.state)[1] == (1, 0)
    assert not (await shop.carts.get(USER)).is_empty  # the shopper may try again
    again = await shop.checkout.checkout(USER)
    assert again.succeeded and again.order_id != result.order_id


@pytest.mark.parametrize("captured", [True, False])
async def test_retrying_the_cart_of_an_unknown_payment_finishes_that_order(
    captured: bool,
) -> None:
    shop = Shop(stock=1)
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.TIMEOUT, captured), (PaymentStatus.TIMEOUT, False)]
    first = await shop.checkout.checkout(USER)
    assert first.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
    # Quiet for one gateway timeout: a charge may still be on its way.
    with pytest.raises(CheckoutInProgress):
        await shop.checkout.checkout(USER)
    shop.later(seconds=LEASE.quiet_s)

    retry = await shop.checkout.checkout(USER)

    assert retry.outcome is CheckoutOutcome.PAID and retry.order_id == first.order_id
    # A capture the gateway already holds is taken as it is; otherwise the same key charges.
    assert shop.gateway.calls == (2 if captured else 3)
    assert list(shop.gateway.captures) == [f"order-{first.order_id}"]
    assert stock_of(shop.state)[1] == (0, 0)
    assert [p[2] for p in shop.state.payments].count(PaymentStatus.CAPTURED) == 1
    assert (await shop.reconciler.reconcile(now=True)).settled == 0


async def test_a_retry_waits_for_the_gateway_rather_than_guess() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.db.refuse = {2}
    with pytest.raises(Overloaded):
        await shop.checkout.checkout(USER)
    shop.later(seconds=50)
    shop.gateway.reachable = False
    with pytest.raises(BackendUnavailable):
        await shop.checkout.checkout(USER)
    (order,) = shop.state.orders.values()
    assert order.status is OrderStatus.PAYMENT_PENDING and stock_of(shop.state)[1] == (5, 1)
    assert shop.gateway.calls == 1
    # Both failed checkouts gave their claim back: the next attempt (here the reconciler's)
    # need not wait for the lease.
    shop.gateway.reachable = True
    assert (await shop.reconciler.reconcile()).paid == 1
    assert stock_of(shop.state)[1] == (4, 0)


async def test_a_paid_checkout_stays_paid_when_the_cart_cannot_be_cleared() -> None:
    """Answering 503 for a paid order would make the client pay the cart again."""
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.carts.unreachable = True
    result = await shop.checkout.checkout(USER)
    assert result.outcome is CheckoutOutcome.PAID
    assert shop.status(result.order_id) is OrderStatus.PAID
