"""One charge per cart, whatever the client does (issue 17), on the in-memory ports: racing
checkouts of one cart, a payment's lease when its holder dies, the reconciler racing a
retried checkout, and captures on cancelled orders refunded. Over HTTP on the real stack:
tests/integration/test_checkout_races.py."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from uuid import UUID

import pytest

from ecomctl.domain.models import CheckoutOutcome, OrderStatus, PaymentStatus
from ecomctl.errors import CheckoutInProgress, PaymentReversed
from ecomctl.services.payment import idempotency_key, refund_key
from tests.unit.order_fakes import stock_of
from tests.unit.order_shop import LEASE, USER, Shop


async def _held(shop: Shop) -> None:
    """Until a gateway call is waiting at its gate."""
    await asyncio.wait_for(shop.gateway.waiting.wait(), 5)
    shop.gateway.waiting.clear()


async def test_racing_checkouts_of_one_cart_make_one_order_and_one_charge() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.charge_gate = asyncio.Event()
    winner = asyncio.create_task(shop.checkout.checkout(USER))
    await _held(shop)  # the winner is at the gateway, holding the payment's claim

    losers = await asyncio.gather(*(shop.checkout.checkout(USER) for _ in range(7)),
                                  return_exceptions=True)

    assert all(isinstance(r, CheckoutInProgress) and r.retry_after_s == 1
               and 1 <= r.lease_left_s <= LEASE.hold_s for r in losers), losers
    shop.gateway.charge_gate.set()
    paid = await winner
    assert paid.outcome is CheckoutOutcome.PAID
    assert (len(shop.state.orders), shop.gateway.calls) == (1, 1)


async def test_a_cart_already_paid_is_answered_with_its_order_not_bought_again() -> None:
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.carts.unreachable = True  # the winner cannot empty the cart: it still holds it
    first = await shop.checkout.checkout(USER)
    shop.carts.unreachable = False

    again = await shop.checkout.checkout(USER)  # the double-click that lost the race

    assert (again.order_id, again.outcome) == (first.order_id, CheckoutOutcome.PAID)
    assert (len(shop.state.orders), shop.gateway.calls) == (1, 1)
    assert (await shop.carts.get(USER)).is_empty  # emptied now, as the winner meant to
    # A changed cart is a new purchase, even of the same items.
    shop.carts.put(USER, (1, 1))
    third = await shop.checkout.checkout(USER)
    assert third.order_id != first.order_id and shop.gateway.calls == 2


async def test_when_the_holder_dies_the_next_attempt_resumes_once_its_lease_lapses() -> None:
    shop = Shop(stock=1)
    shop.carts.put(USER, (1, 1))
    shop.gateway.charge_gate = asyncio.Event()
    dying = asyncio.create_task(shop.checkout.checkout(USER))
    await _held(shop)
    dying.cancel()  # the process is killed mid-call: its claim is not given back
    with pytest.raises(asyncio.CancelledError):
        await dying
    shop.gateway.charge_gate = None

    with pytest.raises(CheckoutInProgress) as early:
        await shop.checkout.checkout(USER)
    assert early.value.lease_left_s == LEASE.hold_s
    assert (shop.gateway.calls, shop.gateway.lookups) == (1, 0)  # nobody asked meanwhile
    shop.later(seconds=LEASE.hold_s)  # within the lease, not the reconciler's minute
    resumed = await shop.checkout.checkout(USER)

    assert resumed.outcome is CheckoutOutcome.PAID
    assert (shop.gateway.calls, shop.gateway.lookups) == (2, 1)  # looked up, then charged
    assert shop.gateway.most_in_flight == 1  # one call at a time for the order
    assert len(shop.state.orders) == 1 and stock_of(shop.state)[1] == (0, 0)


async def _unknown_payment(shop: Shop) -> UUID:
    """An order whose charges went unanswered (nothing captured), past its quiet period."""
    shop.carts.put(USER, (1, 1))
    shop.gateway.script = [(PaymentStatus.TIMEOUT, False)] * 2
    result = await shop.checkout.checkout(USER)
    assert result.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
    shop.later(seconds=LEASE.quiet_s)
    return result.order_id


async def test_a_retry_is_refused_while_the_reconciler_asks_the_gateway() -> None:
    shop = Shop()
    order_id = await _unknown_payment(shop)
    shop.gateway.lookup_gate = asyncio.Event()
    reconciling = asyncio.create_task(shop.reconciler.reconcile())
    await _held(shop)  # the reconciler holds the claim, its lookup blocked

    with pytest.raises(CheckoutInProgress):
        await shop.checkout.checkout(USER)  # the shopper retries meanwhile
    shop.gateway.lookup_gate.set()
    report = await reconciling

    assert report.cancelled == 1 and shop.status(order_id) is OrderStatus.CANCELLED
    assert shop.gateway.lookups == 2  # asked again right before cancelling
    assert shop.gateway.calls == 2 and not shop.gateway.captures  # the retry never charged
    again = await shop.checkout.checkout(USER)  # the cart was kept: a new order pays
    assert again.succeeded and again.order_id != order_id
    assert list(shop.gateway.captures) == [idempotency_key(again.order_id)]


async def test_the_reconciler_keeps_off_a_payment_a_retry_holds() -> None:
    shop = Shop()
    order_id = await _unknown_payment(shop)
    shop.gateway.lookup_gate = asyncio.Event()
    retry = asyncio.create_task(shop.checkout.checkout(USER))
    await _held(shop)  # the retry resumes: it holds the claim, its lookup blocked

    report = await shop.reconciler.reconcile()
    assert report.settled == 0
    shop.gateway.lookup_gate.set()
    paid = await retry

    assert paid.order_id == order_id and shop.status(order_id) is OrderStatus.PAID
    assert list(shop.gateway.captures) == [idempotency_key(order_id)]
    assert (await shop.reconciler.reconcile()).settled == 0


async def test_a_capture_landing_after_the_order_was_cancelled_is_refunded() -> None:
    """A checkout stalls past its lease with its charge in flight; the reconciler finds no
    charge and cancels; then the charge lands. The capture must not stand."""
    shop = Shop()
    shop.carts.put(USER, (1, 1))
    shop.gateway.charge_gate = asyncio.Event()
    stalled = asyncio.create_task(shop.checkout.checkout(USER))
    await _held(shop)
    shop.later(seconds=LEASE.hold_s)
    report = await shop.reconciler.reconcile()
    (order_id,) = shop.state.orders
    assert report.cancelled == 1 and shop.status(order_id) is OrderStatus.CANCELLED

    shop.gateway.charge_gate.set()  # captured after all
    with pytest.raises(PaymentReversed):
        await stalled
    assert (await shop.reconciler.reconcile()).refunded == 1

    # The capture the gateway holds (as its lookup shows it) is given back, whole.
    assert shop.gateway.refunds == {refund_key(order_id): ("ch_lookup", Decimal("10.00"))}
    statuses = [p[2] for p in shop.state.payments if p[0] == order_id]
    assert statuses == [PaymentStatus.CAPTURED, PaymentStatus.REFUNDED]
    assert shop.state.event_types()[-2:] == ["payment.captured", "payment.refunded"]
    assert stock_of(shop.state)[1] == (5, 0) and shop.status(order_id) is OrderStatus.CANCELLED
    assert (await shop.reconciler.reconcile(now=True)).refunded == 0  # once


async def test_a_cancelled_payment_is_looked_up_again_and_a_late_capture_refunded() -> None:
    shop = Shop()
    order_id = await _unknown_payment(shop)
    assert (await shop.reconciler.reconcile()).cancelled == 1
    # The charge that was on its way lands at the gateway after the lookups.
    shop.gateway.captures[idempotency_key(order_id)] = Decimal("10.00")
    assert (await shop.reconciler.reconcile()).refunded == 0  # not yet due
    shop.later(seconds=shop.reconciler.policy.recheck_after_s)
    shop.gateway.reachable = False
    assert (await shop.reconciler.reconcile()).refunded == 0  # cannot tell: tried again later
    shop.gateway.reachable = True
    shop.later(seconds=shop.reconciler.policy.retry_in_s)

    assert (await shop.reconciler.reconcile()).refunded == 1

    assert list(shop.gateway.refunds) == [refund_key(order_id)]
    assert [p[2] for p in shop.state.payments if p[0] == order_id] == [
        PaymentStatus.TIMEOUT, PaymentStatus.TIMEOUT, PaymentStatus.CAPTURED,
        PaymentStatus.REFUNDED]
    assert not shop.state.follow_ups
