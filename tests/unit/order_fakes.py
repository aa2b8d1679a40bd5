"""In-memory implementations of the order path's ports (services/ports/orders), so the
business core (checkout, compensation, reconciliation, expiry) is tested without I/O.

A unit of work copies the store on entry and swaps the copy in on commit, so a failed unit
leaves nothing behind, as a rolled-back transaction does. Units run one at a time (an
asyncio lock), like serialisable transactions.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self
from uuid import UUID

from ecomctl.domain.events import DomainEvent
from ecomctl.domain.models import (
    Cart,
    CartLine,
    Order,
    OrderLine,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Product,
    Shipment,
    ShipmentStatus,
)
from ecomctl.errors import BackendUnavailable, Overloaded
from ecomctl.services.ports.orders import NewOrder


@dataclass
class Store:
    """What the database would hold."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    orders: dict[UUID, Order] = field(default_factory=dict)
    touched: dict[UUID, datetime] = field(default_factory=dict)
    stock: dict[int, list[int]] = field(default_factory=dict)  # product -> [on_hand, reserved]
    reservations: dict[UUID, dict[int, tuple[int, str]]] = field(default_factory=dict)
    payments: list[tuple[UUID, int, PaymentStatus, Decimal, str | None]] = field(
        default_factory=list)
    shipments: dict[UUID, Shipment] = field(default_factory=dict)
    outbox: list[DomainEvent] = field(default_factory=list)

    def event_types(self) -> list[str]:
        return [e.event_type for e in self.outbox]


class FakeOrders:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, new: NewOrder) -> Order:
        order = replace(new.order, created_at=self.s.now, expires_at=self.s.now + new.hold_for)
        assert order.id not in self.s.orders
        self.s.orders[order.id] = order
        self.s.touched[order.id] = self.s.now
        return order

    async def get(self, order_id: UUID) -> Order | None:
        return self.s.orders.get(order_id)

    async def move(self, order_id: UUID, sources: frozenset[OrderStatus], target: OrderStatus,
                   *, user_id: int | None = None, unexpired: bool = False) -> bool:
        order = self.s.orders.get(order_id)
        if order is None or order.status not in sources:
            return False
        if user_id is not None and order.user_id != user_id:
            return False
        if unexpired and order.expires_at is not None and order.expires_at <= self.s.now:
            return False
        self.s.orders[order_id] = replace(order, status=target)
        self.s.touched[order_id] = self.s.now
        return True

    async def lock_user_orders(self, user_id: int) -> None:
        pass  # units are serialised already

    async def open_orders(self, user_id: int) -> list[Order]:
        unsettled = (OrderStatus.PAYMENT_PENDING, OrderStatus.PAYMENT_UNKNOWN)
        return sorted((o for o in self.s.orders.values()
                       if o.user_id == user_id and (
                           o.status in unsettled
                           or (o.status is OrderStatus.PENDING
                               and o.expires_at is not None and o.expires_at > self.s.now))),
                      key=lambda o: o.created_at)

    async def list_for_user(self, user_id: int, limit: int, offset: int
                            ) -> tuple[list[Order], int]:
        mine = [o for o in self.s.orders.values() if o.user_id == user_id]
        return mine[offset:offset + limit], len(mine)

    async def expired_pending(self, limit: int) -> list[Order]:
        return [o for o in self.s.orders.values() if o.status is OrderStatus.PENDING
                and o.expires_at is not None and o.expires_at <= self.s.now][:limit]

    async def unsettled(self, status: OrderStatus, older_than_s: float, limit: int
                        ) -> list[Order]:
        cutoff = self.s.now - timedelta(seconds=older_than_s)
        return [o for o in self.s.orders.values()
                if o.status is status and self.s.touched[o.id] <= cutoff][:limit]


class FakeInventory:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def reserve(self, order_id: UUID, lines: Sequence[OrderLine]) -> list[int]:
        short = [ln.product_id for ln in lines
                 if self.s.stock[ln.product_id][0] - self.s.stock[ln.product_id][1]
                 < ln.quantity]
        if not short:
            for ln in lines:
                self.s.stock[ln.product_id][1] += ln.quantity
            self.s.reservations[order_id] = {ln.product_id: (ln.quantity, "reserved")
                                             for ln in lines}
        return short

    async def commit(self, order_id: UUID) -> int:
        return self._settle(order_id, sold=True)

    async def release(self, order_id: UUID) -> int:
        return self._settle(order_id, sold=False)

    async def stall(self, seconds: float) -> None:
        pass

    def _settle(self, order_id: UUID, *, sold: bool) -> int:
        held = self.s.reservations.get(order_id, {})
        moved = 0
        for product_id, (qty, status) in held.items():
            if status != "reserved":
                continue
            self.s.stock[product_id][1] -= qty
            if sold:
                self.s.stock[product_id][0] -= qty
            held[product_id] = (qty, "committed" if sold else "released")
            moved += 1
        return moved


class FakePayments:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add_attempts(self, attempts: Sequence[PaymentAttempt], idempotency_key: str,
                           currency: str) -> None:
        for attempt in attempts:
            base = sum(1 for p in self.s.payments if p[0] == attempt.order_id)
            captured = [p for p in self.s.payments
                        if p[0] == attempt.order_id and p[2] is PaymentStatus.CAPTURED]
            assert not (captured and attempt.status is PaymentStatus.CAPTURED), "2 captures"
            self.s.payments.append((attempt.order_id, base + 1, attempt.status,
                                    attempt.amount, attempt.gateway_ref))

    async def captured_amount(self, order_id: UUID) -> Decimal | None:
        return next((p[3] for p in self.s.payments
                     if p[0] == order_id and p[2] is PaymentStatus.CAPTURED), None)


class FakeShipments:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def add(self, order_id: UUID, tracking_number: str, carrier: str) -> Shipment | None:
        if order_id in self.s.shipments:
            return None
        shipment = Shipment(len(self.s.shipments) + 1, order_id, tracking_number, carrier,
                            ShipmentStatus.CREATED)
        self.s.shipments[order_id] = shipment
        return shipment

    async def for_order(self, order_id: UUID) -> Shipment | None:
        return self.s.shipments.get(order_id)

    async def any_due(self, status: ShipmentStatus, older_than_s: float) -> bool:
        return any(s.status is status for s in self.s.shipments.values())

    async def due(self, status: ShipmentStatus, older_than_s: float, limit: int
                  ) -> list[Shipment]:
        return [s for s in self.s.shipments.values() if s.status is status][:limit]

    async def set_status(self, shipment_id: int, status: ShipmentStatus) -> None:
        for order_id, shipment in self.s.shipments.items():
            if shipment.id == shipment_id:
                self.s.shipments[order_id] = replace(shipment, status=status)


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase, *, read_only: bool = False) -> None:
        self._db = db
        self._read_only = read_only
        self.events: list[DomainEvent] = []

    def add_event(self, event: DomainEvent) -> None:
        assert not self._read_only, "a read-only unit cannot publish events"
        self.events.append(event)

    def savepoint(self) -> FakeUnitOfWork:
        raise NotImplementedError("not needed by the tests")

    async def __aenter__(self) -> Self:
        self._db.opened += 1
        if self._db.opened in self._db.refuse:
            # What the shop's pool raises when no connection frees up within its timeout.
            raise Overloaded("postgres pool", "no connection free within 2s")
        await self._db.lock.acquire()
        self.working = copy.deepcopy(self._db.store)
        self.orders = FakeOrders(self.working)
        self.inventory = FakeInventory(self.working)
        self.payments = FakePayments(self.working)
        self.shipments = FakeShipments(self.working)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if exc is None and not self._read_only:
                self.working.outbox.extend(self.events)
                self._db.store = self.working
                self._db.commits += 1
        finally:
            self._db.lock.release()


class FakeDatabase:
    """A UnitOfWorkFactory over one in-memory store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = asyncio.Lock()
        self.commits = 0
        self.opened = 0  # units asked for, in order (1, 2, ...)
        self.refuse: set[int] = set()  # these units fail with Overloaded, as a busy pool's do

    def __call__(self, *, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only=read_only)


@dataclass(frozen=True)
class Answer:
    status: PaymentStatus
    gateway_ref: str | None = None
    error: str | None = None
    amount: Decimal | None = None


class FakeGateway:
    """A payment gateway whose answers the test scripts; it keeps its own books, like a real
    one: a charge is captured (or not) whatever the caller hears back."""

    def __init__(self) -> None:
        self.captures: dict[str, Decimal] = {}  # idempotency key -> amount
        self.declines: set[str] = set()  # idempotency keys of charges declined
        self.script: list[tuple[PaymentStatus, bool]] = []  # (what the caller hears, captured)
        self.calls = 0
        self.lookups = 0
        self.reachable = True

    async def charge(self, *, order_id: UUID, amount: Decimal, currency: str,
                     idempotency_key: str) -> Answer:
        self.calls += 1
        heard, captured = (self.script.pop(0) if self.script
                           else (PaymentStatus.CAPTURED, True))
        if captured or idempotency_key in self.captures:
            self.captures[idempotency_key] = amount
        elif heard is PaymentStatus.DECLINED:
            self.declines.add(idempotency_key)
        ref = f"ch_{self.calls}" if heard in (PaymentStatus.CAPTURED,
                                              PaymentStatus.DECLINED) else None
        return Answer(heard, ref)

    async def lookup(self, idempotency_key: str) -> Answer | None:
        if not self.reachable:
            raise BackendUnavailable("payment-gateway", "unreachable")
        self.lookups += 1
        amount = self.captures.get(idempotency_key)
        if amount is not None:
            return Answer(PaymentStatus.CAPTURED, "ch_lookup", amount=amount)
        if idempotency_key in self.declines:
            return Answer(PaymentStatus.DECLINED, "ch_lookup")
        return None


class FakeCarts:
    def __init__(self) -> None:
        self.carts: dict[int, Cart] = {}
        self.unreachable = False  # clearing fails, as with Redis down

    def put(self, user_id: int, *lines: tuple[int, int]) -> None:
        self.carts[user_id] = Cart(user_id, tuple(CartLine(p, q) for p, q in lines))

    async def get(self, user_id: int) -> Cart:
        return self.carts.get(user_id, Cart(user_id))

    async def clear(self, user_id: int) -> None:
        if self.unreachable:
            raise BackendUnavailable("redis", "connection refused")
        self.carts.pop(user_id, None)

    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool:
        if (await self.get(user_id)).items != items:
            return False
        await self.clear(user_id)
        return True


class FakePrices:
    def __init__(self, prices: dict[int, Decimal]) -> None:
        self.prices = prices

    async def get_many(self, product_ids: Sequence[int]) -> dict[int, Product]:
        return {pid: Product(pid, f"SKU{pid}", f"P{pid}", "", 1, "c", self.prices[pid], "USD",
                             True, 1) for pid in product_ids if pid in self.prices}


def stock_of(store: Store) -> dict[int, tuple[int, int]]:
    return {pid: (v[0], v[1]) for pid, v in store.stock.items()}
