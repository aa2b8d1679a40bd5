"""Checkout: cart -> prices re-read -> order claimed for payment -> charge -> settle.

The order is claimed before the gateway is called (PaymentPending with a lease held by this
checkout, ``services.order``): of concurrent checkouts of one order exactly one charges it,
the others get 409 ``checkout_in_progress`` with Retry-After, and only the holder may settle
it. Settling is one write (a single statement: the move fenced by the holder, the stock,
the attempts and the events to the outbox, atomic by itself):

- captured: Paid, reserved stock committed as sold, attempts recorded, ``order.paid`` and
  ``payment.captured`` to the outbox (the shipment service reacts through Kafka);
- declined: Cancelled, stock released (compensation), ``payment.failed``;
- no answer (timeout, transport or gateway error): PaymentUnknown, stock still held. The
  gateway may have captured before the answer was lost, so nothing is undone until the
  reconciler (``services.reconciliation``) has asked the gateway, after a quiet period in
  which a charge still on its way may land.

A cart is paid once, whoever asks and however often: the cart's revision goes with its
order, and under a per-shopper lock a checkout of a revision that has an unsettled order
claims that order (or is refused while another request holds it), and one of a revision
already paid answers with that paid order. Browsers and plain forms send no
Idempotency-Key; a double-click races two requests for one cart, through any number of
processes, and buys it once.

The cart is cleared only when the order is paid, so a declined shopper can try again.
Paying a Pending order by its id (or the reconciler settling one as paid) empties the cart
only if it still holds exactly that order's items: otherwise a later cart checkout would buy
them twice, while a cart the shopper has changed since is theirs.

A checkout can fail transiently after its order committed (no pool connection free to settle
it: ``Overloaded``, a 503 the client retries). It gives its claim back, and the retry of the
same cart resumes the order (``OrderService.open_for``) instead of reserving and charging
again: it takes what the gateway decided under the order's key, or charges under that same
key (``PaymentService.resume``). A checkout that died keeps its claim until the lease lapses;
the next attempt resumes it then. Once an order is paid, a cart that cannot be cleared does
not fail the checkout, since a 503 would make the client pay the cart again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID

from opentelemetry.trace import Span

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
from ecomctl.errors import CheckoutInProgress, EmptyCart, InfraError, NotFound, PaymentReversed
from ecomctl.services.order import PAID_STATES, UNSETTLED, ClaimLost, OpenedOrder, OrderService
from ecomctl.services.payment import PaymentService
from ecomctl.services.ports.orders import StockOutcome, UnitOfWorkFactory
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer


class CartAccess(Protocol):
    async def get(self, user_id: int) -> Cart: ...
    async def clear(self, user_id: int) -> None: ...
    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool: ...


class PriceSource(Protocol):
    async def get_many(self, product_ids: Sequence[int]) -> Mapping[int, Product]: ...


class CheckoutService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        carts: CartAccess,
        products: PriceSource,
        orders: OrderService,
        payments: PaymentService,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._units = units
        self._carts = carts
        self._products = products
        self._orders = orders
        self._payments = payments
        self._tracer = tracer

    async def place_order(self, user_id: int) -> Order:
        """The user's cart as a Pending order with its stock reserved (priced now), or the
        open Pending order that already holds these items."""
        lines, revision = await self._priced_cart(user_id)
        return await self._orders.place(user_id, lines, revision)

    async def checkout(self, user_id: int, order_id: UUID | None = None) -> CheckoutResult:
        """Pay the user's cart (or one of their Pending orders) end to end."""
        with self._tracer.span("checkout.complete", {"ecom.user.id": user_id}) as span:
            holder = uuid.uuid4()  # this checkout, as the holder of the payment's claim
            opened = await self._claim(user_id, order_id, holder)
            order = opened.order
            span.set_attribute("ecom.order.id", str(order.id))
            span.set_attribute("ecom.order.total", str(order.total))
            span.set_attribute("ecom.order.resumed", opened.resumed)
            if opened.paid_before:
                # A request that lost the race for this cart: the winner's order, as paid.
                result = paid_before(order)
                await empty_paid_cart(self._carts, order, span, whole_cart=False)
            else:
                try:
                    attempts = await (self._payments.resume(order) if opened.resumed
                                      else self._payments.charge(order))
                    result = await self.settle(order, attempts, holder)
                except Exception:
                    # Its gateway calls are over: the client's retry may resume at once (a
                    # claim someone else holds by now is theirs: the release is fenced).
                    # Not on cancellation: a call cut short may still be on its way.
                    await self._orders.release(order.id, holder)
                    raise
                if result.succeeded:
                    await empty_paid_cart(self._carts, order, span,
                                          whole_cart=order_id is None)
            span.set_attribute("ecom.checkout.outcome", result.outcome.value)
            if self._metrics is not None:
                self._metrics.checkouts.add(1, {"ecom.outcome": result.outcome.value})
            return result

    async def _claim(self, user_id: int, order_id: UUID | None, holder: UUID) -> OpenedOrder:
        if order_id is not None:
            return await self._orders.claim(user_id, order_id, holder)
        lines, revision = await self._priced_cart(user_id)
        async with self._units() as uow:
            return await self._orders.open_for(uow, user_id, lines,
                                               OrderStatus.PAYMENT_PENDING,
                                               cart_revision=revision, holder=holder)

    async def settle(
        self, order: Order, attempts: Sequence[PaymentAttempt], holder: UUID
    ) -> CheckoutResult:
        """Record what the gateway answered and move the order on (see the module doc), as
        the holder of its payment's claim."""
        final = attempts[-1]
        target = {
            PaymentStatus.CAPTURED: OrderStatus.PAID,
            PaymentStatus.DECLINED: OrderStatus.CANCELLED,
        }.get(final.status, OrderStatus.PAYMENT_UNKNOWN)
        # Sold on payment, released (compensation) on a decline, held while unknown.
        stocks: dict[OrderStatus, StockOutcome] = {OrderStatus.PAID: "committed",
                                                   OrderStatus.CANCELLED: "released"}
        stock = stocks.get(target)
        settlement = self._payments.settlement(
            order, attempts, stock, settled=target is not OrderStatus.PAYMENT_UNKNOWN)
        event: dict[str, object] = (
            {"gateway_ref": final.gateway_ref} if target is OrderStatus.PAID
            else {"reason": final.status.value})
        try:
            # The move, the stock, the attempts and the events: one statement, atomic by
            # itself (if the claim was lost, it wrote nothing).
            async with self._units(single_write=True) as uow:
                await self._orders.settle(uow, order, target, holder, settlement, **event)
        except ClaimLost as lost:
            return await self._claim_lost(order, attempts, lost)
        return checkout_result(order, final)

    async def _claim_lost(
        self, order: Order, attempts: Sequence[PaymentAttempt], lost: ClaimLost
    ) -> CheckoutResult:
        """This checkout's lease lapsed while its gateway calls ran (a stalled process), and
        someone else settled the order or holds it now: tell the shopper how it stands."""
        current = lost.order_now
        if current is None:
            raise NotFound("order", order.id)
        if current.status in PAID_STATES:
            return paid_before(current)
        if current.status in UNSETTLED:
            raise CheckoutInProgress(order.id, self._orders.policy.payment_lease.hold_s)
        if current.status is OrderStatus.CANCELLED and attempts[-1].status is (
                PaymentStatus.CAPTURED):
            # Given up as never charged, and captured after all: the money goes back.
            async with self._units() as uow:
                await self._orders.follow_up(uow, order.id, after_s=0.0)  # locks the row
                if await uow.payments.captured_amount(order.id) is None:
                    await self._payments.record(uow, order, attempts)
            raise PaymentReversed(order.id)
        raise lost

    async def _priced_cart(self, user_id: int) -> tuple[list[OrderLine], str | None]:
        cart = await self._carts.get(user_id)
        if cart.is_empty:
            raise EmptyCart("the cart is empty")
        ids = [line.product_id for line in cart.lines]
        products = await self._products.get_many(ids)
        missing = [pid for pid in ids if pid not in products or not products[pid].active]
        if missing:
            raise NotFound("product", missing[0])
        return [
            OrderLine(line.product_id, line.quantity, products[line.product_id].price)
            for line in cart.lines
        ], cart.revision


async def empty_paid_cart(
    carts: CartAccess, order: Order, span: Span, *, whole_cart: bool
) -> None:
    """After ``order`` was paid: the cart it was paid from is emptied (``whole_cart``), any
    other way only a cart holding exactly its items. Never raises: the order is paid, and a
    503 would make the client pay it again."""
    try:
        if whole_cart:
            await carts.clear(order.user_id)
        else:
            span.set_attribute("ecom.cart.cleared",
                               await carts.clear_if_holds(order.user_id, order.items))
    except InfraError as exc:
        span.set_attribute("ecom.cart.cleared", False)
        span.add_event("cart not cleared", {"exception.message": str(exc)})


def paid_before(order: Order) -> CheckoutResult:
    """The answer to a request for an order some other request paid."""
    return CheckoutResult(order.id, CheckoutOutcome.PAID, order.total, PaymentStatus.CAPTURED,
                          "order paid (by an earlier request for this cart or order)",
                          order.lines)


def checkout_result(order: Order, final: PaymentAttempt) -> CheckoutResult:
    if final.status is PaymentStatus.CAPTURED:
        outcome, message = CheckoutOutcome.PAID, "order paid"
    elif final.status is PaymentStatus.DECLINED:
        outcome, message = CheckoutOutcome.PAYMENT_DECLINED, "payment declined; order cancelled"
    else:
        outcome = CheckoutOutcome.PAYMENT_UNKNOWN
        message = (f"payment {final.status.value}: the gateway's answer was lost; the order "
                   "keeps its stock until the gateway confirms whether it was charged")
    return CheckoutResult(order.id, outcome, order.total, final.status, message, order.lines)
