"""Orders: placed from priced lines in one unit of work (order, items, stock reservation,
outbox event), moved through the state machine by guarded transitions, read back only by
their owner.

A Pending order holds its stock for ``OrderPolicy.hold_for``; the sweeper (``expire_due``)
cancels it after that with ``order.expired``. A customer has at most ``max_pending`` of them;
placing the same lines again returns the open order instead of reserving twice, and paying
them again resumes an order whose payment an earlier checkout left unsettled.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    InvalidTransition,
    NotFound,
    OrderExpired,
    TooManyPendingOrders,
    ValidationFailed,
)
from ecomctl.services.inventory import InventoryService
from ecomctl.services.ports.orders import NewOrder, UnitOfWork, UnitOfWorkFactory
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

UNSETTLED = frozenset({OrderStatus.PAYMENT_PENDING, OrderStatus.PAYMENT_UNKNOWN})


@dataclass(frozen=True)
class OrderPolicy:
    hold_for: timedelta = timedelta(minutes=15)
    """How long a Pending order keeps its stock reserved."""
    max_pending: int = 3
    """Open Pending orders per customer; one more is refused (409)."""

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

    async def place(self, user_id: int, lines: Sequence[OrderLine]) -> Order:
        """A Pending order with its stock reserved; the open one if these lines have one."""
        async with self._units() as uow:
            return (await self.open_for(uow, user_id, lines, OrderStatus.PENDING)).order

    async def open_for(
        self, uow: UnitOfWork, user_id: int, lines: Sequence[OrderLine], status: OrderStatus
    ) -> OpenedOrder:
        """In ``uow``: the user's open order for exactly these lines, or a new order in
        ``status`` with its stock reserved and ``order.placed`` in the outbox. Only new
        Pending orders count against the cap.

        Open means Pending (moved to ``status``) or, when the order is to be paid now
        (``status`` PaymentPending), unsettled: a checkout of these lines failed after its
        order committed (no pool connection to settle it, the answer lost, the process gone).
        That order still holds its stock and the gateway may hold its money, so it is claimed
        again (``resumed``) rather than the cart reserved and charged twice; the claim also
        restarts the reconciler's wait, so the reconciler stays off the resumed payment."""
        if not lines:
            raise ValidationFailed("an order needs at least one line")
        if len({line.product_id for line in lines}) != len(lines):
            raise ValidationFailed("each product may appear once per order")
        ordered = tuple(sorted(lines, key=lambda line: line.product_id))
        with self._tracer.span(
            "order.create", {"ecom.user.id": user_id, "ecom.order.lines": len(ordered)}
        ) as span:
            await uow.orders.lock_user_orders(user_id)
            open_orders = await uow.orders.open_orders(user_id)
            pending = [o for o in open_orders if o.status is OrderStatus.PENDING]
            same = [o for o in open_orders if _same_items(o.lines, ordered)]
            # Unsettled first: they may hold money. Placing (Pending) never takes one over.
            reusable = next((o for o in same if o.status in UNSETTLED), None)
            if reusable is None or status is OrderStatus.PENDING:
                reusable = next((o for o in same if o.status is OrderStatus.PENDING), None)
            if reusable is not None:
                resumed = reusable.status in UNSETTLED
                span.set_attribute("ecom.order.id", str(reusable.id))
                span.set_attribute("ecom.order.reused", True)
                span.set_attribute("ecom.order.resumed", resumed)
                if status is OrderStatus.PENDING:  # placing again: the same Pending order
                    return OpenedOrder(reusable)
                if not await uow.orders.move(reusable.id, frozenset({reusable.status}), status,
                                             unexpired=not resumed):
                    current = await uow.orders.get(reusable.id)  # expired or just settled
                    raise InvalidTransition((current or reusable).status.value, status.value)
                return OpenedOrder(reusable.with_status(status), resumed=resumed)
            if status is OrderStatus.PENDING and len(pending) >= self.policy.max_pending:
                raise TooManyPendingOrders(self.policy.max_pending)
            order = Order(uuid.uuid4(), user_id, status, ordered, order_total(ordered),
                          self._currency, created_at=_now())
            span.set_attribute("ecom.order.id", str(order.id))
            span.set_attribute("ecom.order.total", str(order.total))
            order = await uow.orders.add(NewOrder(order, self.policy.hold_for))
            await self._inventory.reserve(uow, order.id, ordered)
            uow.add_event(order_event("order.placed", order))
        self._count("placed")
        return OpenedOrder(order)

    async def claim(self, user_id: int, order_id: UUID) -> Order:
        """Pending -> PaymentPending for the owner's unexpired order: of concurrent claims
        exactly one wins, the others get a 409 (InvalidTransition or OrderExpired)."""
        with self._tracer.span("order.claim", {"ecom.order.id": str(order_id),
                                               "ecom.user.id": user_id}):
            async with self._units() as uow:
                claimed = await uow.orders.move(
                    order_id, frozenset({OrderStatus.PENDING}), OrderStatus.PAYMENT_PENDING,
                    user_id=user_id, unexpired=True,
                )
                order = await uow.orders.get(order_id)
            if order is None or order.user_id != user_id:
                raise NotFound("order", order_id)
            if not claimed:
                if order.status is OrderStatus.PENDING:
                    raise OrderExpired(order_id)
                raise InvalidTransition(order.status.value, OrderStatus.PAYMENT_PENDING.value)
            return order

    async def settle(
        self, uow: UnitOfWork, order: Order, target: OrderStatus, **event: object
    ) -> Order:
        """An unsettled order (PaymentPending/PaymentUnknown) to ``target``, in ``uow``;
        InvalidTransition if someone settled it first."""
        return await self._move(uow, order, UNSETTLED & _sources(target), target, event=event)

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
        """The sweeper: cancel Pending orders past their hold, release their stock and emit
        ``order.expired``. Safe to run in several processes at once (SKIP LOCKED)."""
        async with self._units() as uow:
            expired = await uow.orders.expired_pending(limit)
            for order in expired:
                with self._tracer.span("order.expire", {"ecom.order.id": str(order.id)}):
                    await self._move(uow, order, frozenset({OrderStatus.PENDING}),
                                     OrderStatus.CANCELLED, event_type="order.expired",
                                     event={"reason": "expired"})
                    await self._inventory.release(uow, order.id)
        return len(expired)

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
        event: Mapping[str, object] | None = None,
    ) -> Order:
        with self._tracer.span(f"order.{target.value}", {"ecom.order.id": str(order.id)}):
            if not await uow.orders.move(order.id, sources, target):
                current = await uow.orders.get(order.id)
                raise InvalidTransition(
                    current.status.value if current else order.status.value, target.value
                )
            moved = order.with_status(target)
            uow.add_event(
                order_event(event_type or f"order.{target.value}", moved, **(event or {}))
            )
        self._count((event_type or target.value).removeprefix("order."))
        return moved

    def _count(self, outcome: str) -> None:
        if self._metrics:
            self._metrics.orders.add(1, {"ecom.outcome": outcome})


def _same_items(a: Sequence[OrderLine], b: Sequence[OrderLine]) -> bool:
    """Same products and quantities (prices may have moved since: the open order keeps its)."""
    return [(x.product_id, x.quantity) for x in a] == [(y.product_id, y.quantity) for y in b]


def _now() -> datetime:
    return datetime.now(UTC)
