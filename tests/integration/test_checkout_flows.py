"""Checkout outcomes, compensation and the order state machine on the real stack."""

from __future__ import annotations

import asyncio

import pytest

from ecomctl.bootstrap import ShopStack
from ecomctl.domain.models import CheckoutOutcome, OrderStatus, PaymentStatus, ShipmentStatus
from ecomctl.errors import CheckoutInProgress, EmptyCart, InvalidTransition, NotFound, OutOfStock
from tests.shopdata import gateway_faults, make_catalogue, make_users


async def _stock(shop: ShopStack, product_id: int) -> tuple[int, int, int]:
    async with shop.db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT on_hand, reserved, sold FROM inventory WHERE product_id = $1", product_id
        )
    return row["on_hand"], row["reserved"], row["sold"]


async def _payments(shop: ShopStack, order_id: object) -> list[tuple[int, str]]:
    async with shop.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT attempt, status FROM payments WHERE order_id = $1 ORDER BY attempt", order_id
        )
    return [(r["attempt"], r["status"]) for r in rows]


async def test_paid_checkout_commits_stock_and_clears_the_cart(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 2, stock=10)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 3)
    await shop.services.carts.add_item(user.id, catalogue.ids[1], 1)

    result = await shop.services.checkout.checkout(user.id)

    assert result.outcome is CheckoutOutcome.PAID
    expected = catalogue.products[0].price * 3 + catalogue.products[1].price
    assert result.total == expected
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.PAID and order.total == expected
    assert await _stock(shop, catalogue.ids[0]) == (7, 0, 3)
    assert await _payments(shop, result.order_id) == [(1, "captured")]
    assert (await shop.services.carts.get(user.id)).is_empty


async def test_declined_payment_cancels_the_order_and_releases_stock(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=4)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 4)

    async with gateway_faults(shop, decline_rate=1.0):
        result = await shop.services.checkout.checkout(user.id)

    assert result.outcome is CheckoutOutcome.PAYMENT_DECLINED
    assert result.payment_status is PaymentStatus.DECLINED
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.CANCELLED
    assert await _stock(shop, catalogue.ids[0]) == (4, 0, 0)
    assert await _payments(shop, result.order_id) == [(1, "declined")]  # no retry of a decline
    assert not (await shop.services.carts.get(user.id)).is_empty  # the shopper may retry


async def test_lost_answers_leave_the_order_unknown_until_the_reconciler_cancels_it(
    shop: ShopStack,
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=2)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 2)

    async with gateway_faults(shop, timeout_rate=1.0, timeout_delay_s=1.0):
        result = await shop.services.checkout.checkout(user.id)

    # A timeout is ambiguous: retried with one key, then nothing is undone on a guess.
    assert result.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
    assert await _payments(shop, result.order_id) == [(1, "timeout"), (2, "timeout")]
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.PAYMENT_UNKNOWN
    assert await _stock(shop, catalogue.ids[0]) == (2, 2, 0)

    report = await shop.services.reconciler.reconcile(now=True)

    assert report.cancelled >= 1  # the gateway holds no charge for it
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.CANCELLED
    assert await _stock(shop, catalogue.ids[0]) == (2, 0, 0)
    # The stock released by the failed order can be bought again.
    retry = await shop.services.checkout.checkout(user.id)
    assert retry.outcome is CheckoutOutcome.PAID


async def test_a_capture_whose_answer_was_lost_is_reconciled_as_paid(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=3)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)

    async with gateway_faults(shop, timeout_rate=1.0, timeout_capture_rate=1.0,
                              replay_timeout_rate=1.0, timeout_delay_s=1.0):
        result = await shop.services.checkout.checkout(user.id)
        assert result.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
        assert await _stock(shop, catalogue.ids[0]) == (3, 1, 0)
        report = await shop.services.reconciler.reconcile(now=True)

    assert report.paid >= 1
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.PAID  # never Cancelled while the gateway holds money
    assert await _stock(shop, catalogue.ids[0]) == (2, 0, 1)
    assert await _payments(shop, result.order_id) == [
        (1, "timeout"), (2, "timeout"), (3, "captured")]
    # A second round finds nothing left to settle for it.
    again = await shop.services.reconciler.reconcile(now=True)
    assert again.still_unknown == 0
    # Its cart went with it: checking out again must not buy the same things twice.
    with pytest.raises(EmptyCart):
        await shop.services.checkout.checkout(user.id)
    assert await _stock(shop, catalogue.ids[0]) == (2, 0, 1)


async def test_gateway_errors_leave_the_order_to_the_reconciler(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=1)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)
    async with gateway_faults(shop, error_rate=1.0):
        result = await shop.services.checkout.checkout(user.id)
    assert result.outcome is CheckoutOutcome.PAYMENT_UNKNOWN
    assert result.payment_status is PaymentStatus.GATEWAY_ERROR
    await shop.services.reconciler.reconcile(now=True)
    assert (await shop.services.orders.get(user.id, result.order_id)).status is (
        OrderStatus.CANCELLED)
    assert await _stock(shop, catalogue.ids[0]) == (1, 0, 0)


async def test_pending_order_then_payment_and_illegal_second_payment(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=3)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)

    pending = await shop.services.checkout.place_order(user.id)
    assert pending.status is OrderStatus.PENDING
    assert await _stock(shop, catalogue.ids[0]) == (3, 1, 0)

    paid = await shop.services.checkout.checkout(user.id, pending.id)
    assert paid.outcome is CheckoutOutcome.PAID and paid.order_id == pending.id
    with pytest.raises(InvalidTransition):
        await shop.services.checkout.checkout(user.id, pending.id)
    assert await _payments(shop, pending.id) == [(1, "captured")]


async def test_orders_are_private_and_listed_newest_first(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=10)
    alice, bob = await make_users(shop, 2)
    first = second = None
    for attempt in range(2):
        await shop.services.carts.add_item(alice.id, catalogue.ids[0], 1)
        result = await shop.services.checkout.checkout(alice.id)
        first, second = (result, second) if attempt == 0 else (first, result)
    assert first is not None and second is not None

    with pytest.raises(NotFound):
        await shop.services.orders.get(bob.id, first.order_id)
    page = await shop.services.orders.list_for_user(alice.id)
    assert [o.id for o in page.items] == [second.order_id, first.order_id]
    assert page.total == 2
    assert (await shop.services.orders.list_for_user(bob.id)).total == 0


async def test_empty_cart_and_out_of_stock_are_refused(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=1)
    (user,) = await make_users(shop, 1)
    with pytest.raises(EmptyCart):
        await shop.services.checkout.checkout(user.id)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 2)
    with pytest.raises(OutOfStock):
        await shop.services.checkout.checkout(user.id)
    assert await _stock(shop, catalogue.ids[0]) == (1, 0, 0)


async def test_carrier_moves_paid_orders_to_shipped_then_delivered(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=1)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)
    result = await shop.services.checkout.checkout(user.id)
    await shop.drain(30)
    shipment = await shop.services.shipments.for_order(result.order_id)
    assert shipment is not None and shipment.status is ShipmentStatus.CREATED

    await shop.services.shipments.advance_due(ShipmentStatus.CREATED, older_than_s=0, limit=100_000)
    assert (await shop.services.orders.get(user.id, result.order_id)).status is (
        OrderStatus.SHIPPED
    )
    await shop.services.shipments.advance_due(
        ShipmentStatus.IN_TRANSIT, older_than_s=0, limit=100_000
    )
    order = await shop.services.orders.get(user.id, result.order_id)
    assert order.status is OrderStatus.DELIVERED
    shipment = await shop.services.shipments.for_order(result.order_id)
    assert shipment is not None and shipment.status is ShipmentStatus.DELIVERED


async def test_two_concurrent_payments_of_one_order_capture_once(shop: ShopStack) -> None:
    catalogue = await make_catalogue(shop, 1, stock=3)
    (user,) = await make_users(shop, 1)
    await shop.services.carts.add_item(user.id, catalogue.ids[0], 1)
    pending = await shop.services.checkout.place_order(user.id)

    results = await asyncio.gather(
        shop.services.checkout.checkout(user.id, pending.id),
        shop.services.checkout.checkout(user.id, pending.id),
        return_exceptions=True,
    )
    paid = [r for r in results if not isinstance(r, BaseException) and r.succeeded]
    # The loser is refused while the winner holds the payment (checkout_in_progress), or
    # after it paid (invalid_transition): never a second charge.
    refused = [r for r in results if isinstance(r, InvalidTransition | CheckoutInProgress)]
    assert (len(paid), len(refused)) == (1, 1), results
    assert await _payments(shop, pending.id) == [(1, "captured")]
    assert await _stock(shop, catalogue.ids[0]) == (2, 0, 1)
