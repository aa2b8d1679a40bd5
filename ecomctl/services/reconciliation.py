"""The payment reconciler: settles orders whose charge outcome is unknown by asking the gateway.

An order is PaymentUnknown when every attempt timed out or failed in transit (the gateway may
have captured anyway), and stays PaymentPending if its checkout failed or died between
claiming it and settling it (a retried checkout of the same cart claims it again and
finishes it, which restarts the wait below). The reconciler looks each one up by its
idempotency key: a capture makes it Paid (stock committed), a decline or no charge at all
makes it Cancelled (stock released). When the gateway cannot tell (unreachable), the order
waits for the next round: nothing is guessed. An order settled as paid empties the shopper's
cart if it still holds exactly that order's items, as its checkout would have: otherwise the
next checkout of that cart buys them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecomctl.domain.models import Order, OrderStatus, PaymentAttempt, PaymentStatus
from ecomctl.errors import InfraError, InvalidTransition
from ecomctl.services.checkout import CartAccess, empty_paid_cart
from ecomctl.services.inventory import InventoryService
from ecomctl.services.order import OrderService
from ecomctl.services.payment import GatewayRecord, PaymentService
from ecomctl.services.ports.orders import UnitOfWorkFactory
from ecomctl.telemetry.spans import ServiceTracer


@dataclass(frozen=True)
class ReconcilePolicy:
    unknown_after_s: float = 1.0
    """PaymentUnknown orders this old are looked up (a little slack for in-flight requests)."""
    stuck_after_s: float = 60.0
    """PaymentPending orders this old lost their checkout (crash, kill): longer than any
    checkout's charge attempts can take."""
    batch: int = 50


@dataclass
class ReconcileReport:
    paid: int = 0
    cancelled: int = 0
    still_unknown: int = 0  # the gateway could not tell; retried next round

    @property
    def settled(self) -> int:
        return self.paid + self.cancelled


class PaymentReconciler:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        orders: OrderService,
        inventory: InventoryService,
        payments: PaymentService,
        carts: CartAccess,
        tracer: ServiceTracer,
        policy: ReconcilePolicy | None = None,
    ) -> None:
        self._units = units
        self._carts = carts
        self._orders = orders
        self._inventory = inventory
        self._payments = payments
        self._tracer = tracer
        self.policy = policy or ReconcilePolicy()

    async def any_due(self) -> bool:
        return bool(await self._due(limit=1))

    async def reconcile(self, *, now: bool = False) -> ReconcileReport:
        """One round over the unsettled orders; ``now`` skips the waiting periods (when no
        checkout can be in flight any more, e.g. after a simulation)."""
        report = ReconcileReport()
        for order in await self._due(self.policy.batch, now=now):
            with self._tracer.span("payment.reconcile", {"ecom.order.id": str(order.id),
                                                         "ecom.order.status": order.status.value}
                                   ) as span:
                try:
                    found = await self._payments.lookup(order)
                except InfraError:
                    report.still_unknown += 1
                    span.set_attribute("ecom.reconcile.outcome", "unknown")
                    continue
                try:
                    paid = await self._settle(order, found)
                except InvalidTransition:  # its checkout settled it meanwhile
                    span.set_attribute("ecom.reconcile.outcome", "already_settled")
                    continue
                span.set_attribute("ecom.reconcile.outcome", "paid" if paid else "cancelled")
                if paid:
                    await empty_paid_cart(self._carts, order, span, whole_cart=False)
                    report.paid += 1
                else:
                    report.cancelled += 1
        return report

    async def _due(self, limit: int, *, now: bool = False) -> list[Order]:
        policy = self.policy
        async with self._units(read_only=True) as uow:
            unknown = await uow.orders.unsettled(
                OrderStatus.PAYMENT_UNKNOWN, 0.0 if now else policy.unknown_after_s, limit
            )
            stuck = await uow.orders.unsettled(
                OrderStatus.PAYMENT_PENDING, 0.0 if now else policy.stuck_after_s,
                limit - len(unknown),
            ) if len(unknown) < limit else []
        return unknown + stuck

    async def _settle(self, order: Order, found: GatewayRecord | None) -> bool:
        captured = found is not None and found.status is PaymentStatus.CAPTURED
        async with self._units() as uow:
            if captured:
                assert found is not None
                await self._orders.settle(uow, order, OrderStatus.PAID,
                                          gateway_ref=found.gateway_ref, reconciled=True)
                await self._inventory.commit(uow, order.id)
            else:
                reason = "declined" if found is not None else "not_charged"
                await self._orders.settle(uow, order, OrderStatus.CANCELLED, reason=reason,
                                          reconciled=True)
                await self._inventory.release(uow, order.id)
            attempts = [] if found is None else [PaymentAttempt(
                order.id, 1, found.status, found.amount or order.total, found.gateway_ref,
                "settled by the reconciler",
            )]
            await self._payments.record(uow, order, attempts)
        return captured
