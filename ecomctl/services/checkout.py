"""Checkout: cart -> prices re-read -> order with stock reserved -> payment -> settle.

Settling is one transaction: on capture the order becomes Paid, reserved stock is committed
as sold, attempts are recorded and ``order.paid`` goes to the outbox (the shipment service
reacts to it through Kafka); on failure the order is Cancelled and the stock released
(compensation). The cart is cleared only when the order is paid, so a declined shopper can
try again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from ecomctl.adapters.postgres.database import Database
from ecomctl.domain.models import (
    Cart,
    CheckoutOutcome,
    CheckoutResult,
    Order,
    OrderLine,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Product,
)
from ecomctl.errors import EmptyCart, InvalidTransition, NotFound
from ecomctl.services.inventory import InventoryService
from ecomctl.services.order import OrderService
from ecomctl.services.payment import PaymentService
from ecomctl.telemetry.spans import ServiceTracer


class CartAccess(Protocol):
    async def get(self, user_id: int) -> Cart: ...
    async def clear(self, user_id: int) -> None: ...


class PriceSource(Protocol):
    async def get_many(self, product_ids: Sequence[int]) -> Mapping[int, Product]: ...


class CheckoutService:
    def __init__(
        self,
        db: Database,
        carts: CartAccess,
        products: PriceSource,
        orders: OrderService,
        inventory: InventoryService,
        payments: PaymentService,
        tracer: ServiceTracer,
    ) -> None:
        self._db = db
        self._carts = carts
        self._products = products
        self._orders = orders
        self._inventory = inventory
        self._payments = payments
        self._tracer = tracer

    async def place_order(self, user_id: int) -> Order:
        """The user's cart as a Pending order with its stock reserved (priced now)."""
        cart = await self._carts.get(user_id)
        if cart.is_empty:
            raise EmptyCart("the cart is empty")
        ids = [line.product_id for line in cart.lines]
        products = await self._products.get_many(ids)
        missing = [pid for pid in ids if pid not in products or not products[pid].active]
        if missing:
            raise NotFound("product", missing[0])
        lines = [
            OrderLine(line.product_id, line.quantity, products[line.product_id].price)
            for line in cart.lines
        ]
        return await self._orders.place(user_id, lines)

    async def checkout(self, user_id: int, order_id: UUID | None = None) -> CheckoutResult:
        """Pay the user's cart (or one of their Pending orders) end to end."""
        with self._tracer.span("checkout.complete", {"ecom.user.id": user_id}) as span:
            if order_id is None:
                order = await self.place_order(user_id)
            else:
                order = await self._orders.get(user_id, order_id)
                if order.status is not OrderStatus.PENDING:
                    raise InvalidTransition(order.status.value, OrderStatus.PAID.value)
            span.set_attribute("ecom.order.id", str(order.id))
            span.set_attribute("ecom.order.total", str(order.total))
            attempts = await self._payments.charge(order)
            final = attempts[-1]
            captured = final.status is PaymentStatus.CAPTURED
            await self._settle(order, attempts, captured)
            if captured and order_id is None:
                await self._carts.clear(user_id)
            result = _result(order, final, captured)
            span.set_attribute("ecom.checkout.outcome", result.outcome.value)
            return result

    async def _settle(
        self, order: Order, attempts: Sequence[PaymentAttempt], captured: bool
    ) -> None:
        async with self._db.transaction() as conn:
            # The status change locks the order row first, so a second, concurrent checkout of
            # the same order waits here and then fails its transition cleanly (409).
            if captured:
                await self._orders.change_status(
                    conn, order.id, OrderStatus.PAID, gateway_ref=attempts[-1].gateway_ref
                )
                await self._inventory.commit(conn, order.id)
            else:
                await self._orders.change_status(
                    conn, order.id, OrderStatus.CANCELLED, reason=attempts[-1].status.value
                )
                await self._inventory.release(conn, order.id)
            await self._payments.record(conn, order, attempts)


def _result(order: Order, final: PaymentAttempt, captured: bool) -> CheckoutResult:
    if captured:
        outcome, message = CheckoutOutcome.PAID, "order paid"
    elif final.status is PaymentStatus.DECLINED:
        outcome, message = CheckoutOutcome.PAYMENT_DECLINED, "payment declined; order cancelled"
    else:
        outcome = CheckoutOutcome.PAYMENT_FAILED
        message = f"payment {final.status.value}; order cancelled, stock released"
    return CheckoutResult(order.id, outcome, order.total, final.status, message, order.lines)
