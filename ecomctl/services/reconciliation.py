"""The payment reconciler: settles orders whose charge outcome is unknown by asking the gateway,
and refunds a capture that landed on an order cancelled meanwhile.

An order is PaymentUnknown when every attempt timed out or failed in transit (the gateway may
have captured anyway), and stays PaymentPending if its checkout failed or died between
claiming it and settling it. The reconciler takes such an order only once its payment's lease
has lapsed (``services.order``): a live checkout holds it, a dead one's lease lapses within
seconds, and after unanswered charges the lease is a quiet period, so the lookup comes after
a charge still on its way had its time to land. It claims the order through the same guarded
claim a retried checkout uses, so the two never act on one order at once, and settles it as
the claim's holder: a capture makes it Paid (stock committed), a decline makes it Cancelled
(stock released); no charge at all is asked once more right before cancelling. When the
gateway cannot tell (unreachable), the order waits for the next round: nothing is guessed.
An order settled as paid empties the shopper's cart if it still holds exactly that order's
items, as its checkout would have: otherwise the next checkout of that cart buys them again.

Follow-ups: an order cancelled as never charged is looked up once more ``recheck_after_s``
later, and a capture found then (or one a late checkout reported) is refunded, so a capture
on a cancelled order never stands: recorded with its refund, both with their events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ecomctl.domain.models import Order, OrderStatus, PaymentAttempt, PaymentStatus
from ecomctl.errors import InfraError
from ecomctl.services.checkout import CartAccess, empty_paid_cart
from ecomctl.services.order import ClaimLost, OrderService
from ecomctl.services.payment import GatewayRecord, PaymentService
from ecomctl.services.ports.orders import UnitOfWorkFactory
from ecomctl.telemetry.spans import ServiceTracer


@dataclass(frozen=True)
class ReconcilePolicy:
    recheck_after_s: float = 30.0
    """An order cancelled as never charged is looked up again this much later: a charge
    request that was still on its way may have been captured since (it is then refunded)."""
    retry_in_s: float = 10.0
    """A follow-up the gateway could not answer is tried again this much later."""
    batch: int = 50


@dataclass
class ReconcileReport:
    paid: int = 0
    cancelled: int = 0
    still_unknown: int = 0  # the gateway could not tell; retried next round
    refunded: int = 0  # captures on cancelled orders given back

    @property
    def settled(self) -> int:
        return self.paid + self.cancelled


class PaymentReconciler:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        orders: OrderService,
        payments: PaymentService,
        carts: CartAccess,
        tracer: ServiceTracer,
        policy: ReconcilePolicy | None = None,
    ) -> None:
        self._units = units
        self._carts = carts
        self._orders = orders
        self._payments = payments
        self._tracer = tracer
        self.policy = policy or ReconcilePolicy()

    async def any_due(self) -> bool:
        async with self._units(read_only=True) as uow:
            return bool(await uow.orders.unsettled(1)) or await uow.orders.any_follow_up_due()

    async def reconcile(self, *, now: bool = False) -> ReconcileReport:
        """One round over the unsettled orders and the follow-ups due; ``now`` takes them
        all whatever their leases and waits (when no checkout can be in flight any more,
        e.g. after a simulation)."""
        report = ReconcileReport()
        holder = uuid.uuid4()  # this round, as the holder of the claims it takes
        async with self._units(read_only=True) as uow:
            due = await uow.orders.unsettled(self.policy.batch, force=now)
        for order in due:
            await self._reconcile(order, holder, report, force=now)
        async with self._units() as uow:
            follow_ups = await uow.orders.follow_up_due(self.policy.batch,
                                                        self.policy.retry_in_s, force=now)
        for order in follow_ups:
            await self._follow_up(order, report)
        return report

    async def _reconcile(self, order: Order, holder: uuid.UUID, report: ReconcileReport,
                         *, force: bool) -> None:
        with self._tracer.span("payment.reconcile", {"ecom.order.id": str(order.id),
                                                     "ecom.order.status": order.status.value}
                               ) as span:
            if not await self._orders.claim_for_reconciliation(order, holder, force=force):
                span.set_attribute("ecom.reconcile.outcome", "claimed_elsewhere")
                return
            try:
                found = await self._payments.lookup(order)
                if found is None:  # never charged so far: asked once more before cancelling
                    found = await self._payments.lookup(order)
            except InfraError:
                await self._orders.release(order.id, holder)
                report.still_unknown += 1
                span.set_attribute("ecom.reconcile.outcome", "unknown")
                return
            try:
                paid = await self._settle(order, found, holder)
            except ClaimLost:  # its lease lapsed meanwhile and a checkout settled it
                span.set_attribute("ecom.reconcile.outcome", "already_settled")
                return
            span.set_attribute("ecom.reconcile.outcome", "paid" if paid else "cancelled")
            if paid:
                await empty_paid_cart(self._carts, order, span, whole_cart=False)
                report.paid += 1
            else:
                report.cancelled += 1

    async def _settle(self, order: Order, found: GatewayRecord | None, holder: uuid.UUID
                      ) -> bool:
        captured = found is not None and found.status is PaymentStatus.CAPTURED
        settlement = self._payments.settlement(order, _attempts(order, found),
                                               "committed" if captured else "released")
        async with self._units() as uow:
            if captured:
                assert found is not None
                await self._orders.settle(uow, order, OrderStatus.PAID, holder, settlement,
                                          gateway_ref=found.gateway_ref, reconciled=True)
            else:
                reason = "declined" if found is not None else "not_charged"
                await self._orders.settle(uow, order, OrderStatus.CANCELLED, holder,
                                          settlement, reason=reason, reconciled=True)
                if found is None:
                    await self._orders.follow_up(uow, order.id,
                                                 after_s=self.policy.recheck_after_s)
        return captured

    async def _follow_up(self, order: Order, report: ReconcileReport) -> None:
        """Ask the gateway about a settled order once more; a capture on an order that is not
        paid is refunded. A gateway that cannot answer is asked again later."""
        with self._tracer.span("payment.follow_up", {"ecom.order.id": str(order.id),
                                                     "ecom.order.status": order.status.value}
                               ) as span:
            try:
                found = await self._payments.lookup(order)
                captured = found is not None and found.status is PaymentStatus.CAPTURED
                refund = None
                if captured and order.status is OrderStatus.CANCELLED:
                    assert found is not None
                    refund = await self._payments.refund(order, found)
            except InfraError:
                span.set_attribute("ecom.follow_up.outcome", "unknown")
                return  # follow_up_due put it off by retry_in_s
            async with self._units() as uow:
                await self._orders.follow_up(uow, order.id, after_s=None)  # locks the row
                if refund is not None:
                    if await uow.payments.captured_amount(order.id) is None:
                        await self._payments.record(uow, order, _attempts(order, found))
                    if await uow.payments.refunded_amount(order.id) is None:
                        await self._payments.record_refund(uow, order, refund)
            span.set_attribute("ecom.follow_up.outcome",
                               "refunded" if refund is not None else "nothing_captured")
            if refund is not None:
                report.refunded += 1


def _attempts(order: Order, found: GatewayRecord | None) -> list[PaymentAttempt]:
    """What the gateway holds for the order, as the attempt the reconciler records."""
    if found is None:
        return []
    return [PaymentAttempt(order.id, 1, found.status, found.amount or order.total,
                           found.gateway_ref, "settled by the reconciler")]
