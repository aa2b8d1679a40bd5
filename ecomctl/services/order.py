"""Orders: placed from priced lines in one unit of work (order, items, stock reservation,
outbox event), moved through the state machine by guarded transitions, read back only by
their owner.

A Pending order holds its stock for ``OrderPolicy.hold_for``; the sweeper (``expire_due``)
cancels it after that with ``order.expired``. A customer has at most ``max_pending`` of them;
placing the same lines again returns the open order instead of reserving twice, and paying
them again resumes an order whose payment an earlier checkout left unsettled.

Paying is claimed (``PaymentLease``): the claimant (a checkout or the reconciler) holds the
order's payment for ``hold_s``, nobody else may claim it meanwhile (409
``checkout_in_progress`` with Retry-After), and only the holder may settle it (the UPDATE is
fenced by the holder's id). A claimant that died loses it when the lease lapses, and the next
attempt resumes the payment at once. After charges went unanswered the order is quiet for
``quiet_s``: a charge may still be in flight, so nobody calls or asks the gateway about it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

from ecomctl.domain.events import ORDER_EVENTS, DomainEvent, new_event
from ecomctl.domain.models import (
    ALLOWED_TRANSITIONS,
    Order,
    OrderLine,
    OrderStatus,
    Page,
    order_total,
)
from ecomctl.errors import (
    CheckoutInProgress,
    EmptyCart,
    InfraError,
    InvalidTransition,
    NotFound,
    OrderExpired,
    TooManyPendingOrders,
    ValidationFailed,
)
from ecomctl.services.inventory import InventoryService
from ecomctl.services.ports.orders import (
    NewOrder,
    PaymentClaim,
    Settlement,
    UnitOfWork,
    UnitOfWorkFactory,
)
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

UNSETTLED = frozenset({OrderStatus.PAYMENT_PENDING, OrderStatus.PAYMENT_UNKNOWN})
PAID_STATES = frozenset({OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.DELIVERED})

SETTLE_MARGIN_S = 3.0
"""What a lease allows beyond the gateway calls: a pool connection to settle (its acquire
timeout is 2 s) and the settling transaction itself."""


@dataclass(frozen=True)
class PaymentLease:
    """How long a claim on an order's payment lasts (see the module doc)."""

    hold_s: float = 10.0
    """A claim's life: longer than its holder's gateway calls and settling take, so a live
    holder keeps it and a dead one's lapses soon after."""
    quiet_s: float = 2.0
    """After unanswered charges: how long nobody may call or ask the gateway about the order
    (a charge may still be on its way). The gateway call's own timeout."""

    def __post_init__(self) -> None:
        if not self.hold_s > 0 or self.quiet_s < 0:
            raise ValidationFailed("a payment lease must be positive, its quiet period >= 0")

    @classmethod
    def covering(cls, call_timeout_s: float, attempts: int, retry_delay_s: float
                 ) -> PaymentLease:
        """A lease covering ``attempts`` gateway calls of ``call_timeout_s`` each, with the
        payment service's growing retry delays between them, and settling after them."""
        calls_s = attempts * call_timeout_s + retry_delay_s * attempts * (attempts - 1) / 2
        return cls(hold_s=calls_s + SETTLE_MARGIN_S, quiet_s=call_timeout_s)


@dataclass(frozen=True)
class OrderPolicy:
    hold_for: timedelta = timedelta(minutes=15)
    """How long a Pending order keeps its stock reserved."""
    max_pending: int = 3
    """Open Pending orders per customer; one more is refused (409)."""
    payment_lease: PaymentLease = field(default_factory=PaymentLease)

    def __post_init__(self) -> None:
        if self.hold_for <= timedelta(0):
            raise ValidationFailed("the pending-order hold must be positive")
        if self.max_pending < 1:
            raise ValidationFailed("max pending orders must be at least 1")


@dataclass(frozen=True)
class OpenedOrder:
    order: Order
    resumed: bool = False
    """An earlier checkout started its payment and never settled it: finish that payment
    (``PaymentService.resume``), never charge it as a new one."""
    paid_before: bool = False
    """This revision of the cart was paid already (``order``): a request that read the cart
    before the winner of a race emptied it gets the winner's order, not a second one."""


class ClaimLost(InvalidTransition):
    """The order's payment is not this holder's to settle any more: someone settled it, or
    took it over after the lease lapsed. ``order_now`` is the order as it is now."""

    def __init__(self, order: Order, target: OrderStatus, order_now: Order | None) -> None:
        super().__init__((order_now or order).status.value, target.value)
        self.order_now = order_now


def order_event(event_type: str, order: Order, **extra: object) -> DomainEvent:
    return new_event(
        event_type, ORDER_EVENTS, "order", order.id,
        order_id=order.id, user_id=order.user_id, total=order.total, currency=order.currency,
        lines=[
            {"product_id": line.product_id, "quantity": line.quantity,
             "unit_price": line.unit_price}
            for line in order.lines
        ],
        **extra,
    )


def _sources(target: OrderStatus) -> frozenset[OrderStatus]:
    return frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if target in targets)


class OrderService:
    def __init__(
        self,
        units: UnitOfWorkFactory,
        inventory: InventoryService,
        tracer: ServiceTracer,
        metrics: ShopMetrics | None = None,
        currency: str = "USD",
        policy: OrderPolicy | None = None,
    ) -> None:
        self._units = units
        self._inventory = inventory
        self._tracer = tracer
        self._metrics = metrics
        self._currency = currency
        self.policy = policy or OrderPolicy()

    async def place(self, user_id: int, lines: Sequence[OrderLine],
                    cart_revision: str | None = None) -> Order:
        """A Pending order with its stock reserved; the open one if these lines have one."""
        async with self._units() as uow:
            return (await self.open_for(uow, user_id, lines, OrderStatus.PENDING,
                                        cart_revision=cart_revision)).order

    async def open_for(
        self, uow: UnitOfWork, user_id: int, lines: Sequence[OrderLine], status: OrderStatus,
        *, cart_revision: str | None = None, holder: UUID | None = None,
    ) -> OpenedOrder:
        """In ``uow``: the user's open order for exactly these lines, or a new order in
        ``status`` with its stock reserved and ``order.placed`` in the outbox. Only new
        Pending orders count against the cap. ``cart_revision``: the cart they come from.

        To be paid now (``status`` PaymentPending), the order is claimed for ``holder``.
        Open means Pending or, when the order is to be paid now, unsettled: a checkout of
        these lines failed after its order committed (no pool connection to settle it, the
        answer lost, the process gone). That order still holds its stock and the gateway may
        hold its money, so it is claimed again (``resumed``) once its lease has lapsed, and
        until then the request is refused with CheckoutInProgress. A cart revision that was
        paid already is answered with its order (``paid_before``), never bought again."""
        if not lines:
            raise ValidationFailed("an order needs at least one line")
        if len({line.product_id for line in lines}) != len(lines):
            raise ValidationFailed("each product may appear once per order")
        paying = status is OrderStatus.PAYMENT_PENDING
        if paying and holder is None:
            raise ValueError("an order paid now needs the holder of its payment's claim")
        ordered = tuple(sorted(lines, key=lambda line: line.product_id))
        with self._tracer.span(
            "order.create", {"ecom.user.id": user_id, "ecom.order.lines": len(ordered)}
        ) as span:
            await uow.orders.lock_user_orders(user_id)
            open_orders = await uow.orders.open_orders(user_id, cart_revision)
            bought = next((o for o in open_orders if cart_revision is not None
                           and o.cart_revision == cart_revision and o.status in PAID_STATES),
                          None)
            if bought is not None:
                span.set_attribute("ecom.order.id", str(bought.id))
                span.set_attribute("ecom.order.paid_before", True)
                if not paying:
                    raise EmptyCart(f"this cart was just paid as order {bought.id}")
                return OpenedOrder(bought, paid_before=True)
            pending = [o for o in open_orders if o.status is OrderStatus.PENDING]
            same = [o for o in open_orders if o.status not in PAID_STATES
                    and _same_items(o.lines, ordered)]
            # Unsettled first: they may hold money. Placing (Pending) never takes one over.
            reusable = next((o for o in same if o.status in UNSETTLED), None)
            if reusable is None or not paying:
                reusable = next((o for o in same if o.status is OrderStatus.PENDING), None)
            if reusable is not None:
                span.set_attribute("ecom.order.id", str(reusable.id))
                span.set_attribute("ecom.order.reused", True)
                if not paying:  # placing again: the same Pending order
                    return OpenedOrder(reusable)
                assert holder is not None
                claim = await uow.orders.claim_payment(
                    reusable.id, frozenset({reusable.status}), holder,
                    self.policy.payment_lease.hold_s,
                )
                if not claim.claimed:
                    if claim.status in PAID_STATES and cart_revision is not None and (
                            reusable.cart_revision == cart_revision):
                        # Its holder settled it since we read it: this cart was just paid.
                        span.set_attribute("ecom.order.paid_before", True)
                        return OpenedOrder(reusable.with_status(claim.status),
                                           paid_before=True)
                    raise _refused(reusable.id, claim)
                span.set_attribute("ecom.order.resumed", claim.resumed)
                return OpenedOrder(reusable.with_status(status), resumed=claim.resumed)
            if not paying and len(pending) >= self.policy.max_pending:
                raise TooManyPendingOrders(self.policy.max_pending)
            order = Order(uuid.uuid4(), user_id, status, ordered, order_total(ordered),
                          self._currency, created_at=_now(), cart_revision=cart_revision)
            span.set_attribute("ecom.order.id", str(order.id))
            span.set_attribute("ecom.order.total", str(order.total))
            # Stock, order, items and order.placed: one statement.
            order = await self._inventory.reserve(uow, NewOrder(
                order, self.policy.hold_for, holder,
                self.policy.payment_lease.hold_s if paying else 0.0,
                events=(order_event("order.placed", order),),
            ))
        self._count("placed")
        return OpenedOrder(order)

    async def claim(self, user_id: int, order_id: UUID, holder: UUID) -> OpenedOrder:
        """The owner's order claimed for payment by ``holder``: a Pending one while its hold
        lasts, an unsettled one (its checkout failed or died) once its lease has lapsed
        (``resumed``). Of concurrent claims exactly one wins; the others get a 409
        (CheckoutInProgress while the winner pays, InvalidTransition or OrderExpired)."""
        with self._tracer.span("order.claim", {"ecom.order.id": str(order_id),
                                               "ecom.user.id": user_id}) as span:
            async with self._units() as uow:
                claim = await uow.orders.claim_payment(
                    order_id, UNSETTLED | {OrderStatus.PENDING}, holder,
                    self.policy.payment_lease.hold_s, user_id=user_id,
                )
                order = await uow.orders.get(order_id) if claim.claimed else None
            if order is None:
                if claim.status is None or claim.user_id != user_id:
                    raise NotFound("order", order_id)
                raise _refused(order_id, claim)
            span.set_attribute("ecom.order.resumed", claim.resumed)
            return OpenedOrder(order, resumed=claim.resumed)

    async def claim_for_reconciliation(self, order: Order, holder: UUID, *, force: bool
                                       ) -> bool:
        """The reconciler's claim on an unsettled order whose lease has lapsed (``force``:
        whatever its lease, when no checkout can be running); False if someone has it."""
        async with self._units() as uow:
            claim = await uow.orders.claim_payment(
                order.id, UNSETTLED, holder, self.policy.payment_lease.hold_s, force=force,
                keep_status=True,  # it asks the gateway, it does not charge
            )
        return claim.claimed

    async def release(self, order_id: UUID, holder: UUID) -> None:
        """``holder`` stopped paying without settling (it failed): the next attempt may
        resume at once instead of waiting for the lease. Best effort: if the database
        cannot be reached either, the lease simply lapses."""
        try:
            async with self._units() as uow:
                await uow.orders.release_payment(order_id, holder)
        except InfraError:
            pass

    async def follow_up(self, uow: UnitOfWork, order_id: UUID, *, after_s: float | None
                        ) -> None:
        """In ``uow``: have the reconciler ask the gateway about this settled order's payment
        in ``after_s`` (None: nothing left to ask). Locks the order's row until ``uow``
        ends, so the reconciler's own follow-up waits for it."""
        await uow.orders.follow_up(order_id, after_s)

    async def settle(
        self, uow: UnitOfWork, order: Order, target: OrderStatus, holder: UUID,
        settlement: Settlement, **event: object,
    ) -> Order:
        """An unsettled order (PaymentPending/PaymentUnknown) whose payment ``holder`` holds
        to ``target``, with its ``settlement`` (stock, attempts, payment events), in ``uow``
        and in one statement; ClaimLost if it is not ``holder``'s any more. Unknown (charges
        unanswered) starts the quiet period."""
        quiet_s = self.policy.payment_lease.quiet_s if (
            target is OrderStatus.PAYMENT_UNKNOWN) else 0.0
        return await self._move(uow, order, UNSETTLED & _sources(target), target, event=event,
                                holder=holder, quiet_s=quiet_s, settlement=settlement)

    async def transition(
        self, uow: UnitOfWork, order_id: UUID, target: OrderStatus, **event: object
    ) -> Order:
        """Any allowed move to ``target`` (the carrier's Shipped/Delivered), in ``uow``."""
        order = await uow.orders.get(order_id)
        if order is None:
            raise NotFound("order", order_id)
        return await self._move(uow, order, _sources(target), target, event=event)

    async def cancel(self, user_id: int, order_id: UUID) -> Order:
        """The owner cancels a Pending order: its stock is released at once."""
        with self._tracer.span("order.cancel", {"ecom.order.id": str(order_id),
                                                "ecom.user.id": user_id}):
            async with self._units() as uow:
                order = await uow.orders.get(order_id)
                if order is None or order.user_id != user_id:
                    raise NotFound("order", order_id)
                cancelled = await self._move(
                    uow, order, frozenset({OrderStatus.PENDING}), OrderStatus.CANCELLED,
                    event={"reason": "cancelled_by_customer"},
                )
                await self._inventory.release(uow, order_id)
        return cancelled

    async def expire_due(self, limit: int = 100) -> int:
        """The sweeper: cancel up to ``limit`` Pending orders past their hold, release their
        stock and emit ``order.expired``; how many it cancelled. Safe to run in several
        processes at once (SKIP LOCKED). One order per transaction: each locks only its own
        products, in product order as a reservation does. (Many orders in one transaction
        locked product rows order by order, not in one global order, and could deadlock
        with a checkout reserving the same products.)"""
        done = 0
        while done < limit:
            async with self._units() as uow:
                expired = await uow.orders.expired_pending(1)
                if not expired:
                    break
                order = expired[0]
                with self._tracer.span("order.expire", {"ecom.order.id": str(order.id)}):
                    await self._move(uow, order, frozenset({OrderStatus.PENDING}),
                                     OrderStatus.CANCELLED, event_type="order.expired",
                                     event={"reason": "expired"})
                    await self._inventory.release(uow, order.id)
            done += 1
        return done

    async def any_expired(self) -> bool:
        """A cheap check, so the sweeper's idle polling writes nothing."""
        async with self._units(read_only=True) as uow:
            return bool(await uow.orders.expired_pending(1))

    async def get(self, user_id: int, order_id: UUID) -> Order:
        """An order of this user; someone else's order is reported as not found."""
        with self._tracer.span("order.get", {"ecom.order.id": str(order_id),
                                             "ecom.user.id": user_id}):
            async with self._units(read_only=True) as uow:
                order = await uow.orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise NotFound("order", order_id)
        return order

    async def list_for_user(self, user_id: int, page: int = 1, page_size: int = 20) -> Page[Order]:
        if page < 1 or not 1 <= page_size <= 100:
            raise ValidationFailed("page must be >= 1 and page_size between 1 and 100")
        with self._tracer.span("order.list", {"ecom.user.id": user_id, "ecom.page": page}):
            async with self._units(read_only=True) as uow:
                orders, total = await uow.orders.list_for_user(
                    user_id, page_size, (page - 1) * page_size
                )
        return Page(orders, page, page_size, total)

    async def _move(
        self, uow: UnitOfWork, order: Order, sources: frozenset[OrderStatus],
        target: OrderStatus, *, event_type: str | None = None,
        event: Mapping[str, object] | None = None, holder: UUID | None = None,
        quiet_s: float = 0.0, settlement: Settlement | None = None,
    ) -> Order:
        with self._tracer.span(f"order.{target.value}", {"ecom.order.id": str(order.id)}):
            moved = order.with_status(target)
            moved_event = order_event(event_type or f"order.{target.value}", moved,
                                      **(event or {}))
            if settlement is not None:  # the order's event goes first, with the settlement's
                settlement = replace(settlement, events=(moved_event, *settlement.events))
            if not await uow.orders.move(order.id, sources, target, holder=holder,
                                         quiet_s=quiet_s, settlement=settlement):
                current = await uow.orders.get(order.id)
                if holder is not None:
                    raise ClaimLost(order, target, current)
                raise InvalidTransition(
                    current.status.value if current else order.status.value, target.value
                )
            if settlement is None:
                uow.add_event(moved_event)
        self._count((event_type or target.value).removeprefix("order."))
        return moved

    def _count(self, outcome: str) -> None:
        if self._metrics:
            self._metrics.orders.add(1, {"ecom.outcome": outcome})


def _refused(order_id: UUID, claim: PaymentClaim) -> Exception:
    """Why a claim on an existing order's payment failed, as the client should hear it."""
    if claim.status in UNSETTLED:
        return CheckoutInProgress(order_id, claim.lease_left_s)
    if claim.status is OrderStatus.PENDING:
        return OrderExpired(order_id)
    if claim.status is None:
        return NotFound("order", order_id)
    return InvalidTransition(claim.status.value, OrderStatus.PAYMENT_PENDING.value)


def _same_items(a: Sequence[OrderLine], b: Sequence[OrderLine]) -> bool:
    """Same products and quantities (prices may have moved since: the open order keeps its)."""
    return [(x.product_id, x.quantity) for x in a] == [(y.product_id, y.quantity) for y in b]


def _now() -> datetime:
    return datetime.now(UTC)
