"""In-memory implementations of the order path's ports (services/ports/orders), so the
business core (checkout, compensation, reconciliation, expiry) is tested without I/O.

A unit of work copies the store on entry and swaps the copy in on commit, so a failed unit
leaves nothing behind, as a rolled-back transaction does. Units run one at a time (an
asyncio lock), like serialisable transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
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
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Product,
    Shipment,
    ShipmentStatus,
)
from ecomctl.errors import BackendUnavailable, Overloaded
from ecomctl.services.ports.orders import NewOrder, PaymentClaim, Placement, Settlement

UNSETTLED = (OrderStatus.PAYMENT_PENDING, OrderStatus.PAYMENT_UNKNOWN)


@dataclass
class Lease:
    """An order's payment claim: its holder, until when, how many claims it had."""

    holder: UUID | None = None
    until: datetime | None = None
    claims: int = 0


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
    leases: dict[UUID, Lease] = field(default_factory=dict)
    follow_ups: dict[UUID, datetime] = field(default_factory=dict)

    def event_types(self) -> list[str]:
        return [e.event_type for e in self.outbox]


class FakeOrders:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def get(self, order_id: UUID) -> Order | None:
        return self.s.orders.get(order_id)

    async def move(self, order_id: UUID, sources: frozenset[OrderStatus], target: OrderStatus,
                   *, user_id: int | None = None, unexpired: bool = False,
                   holder: UUID | None = None, quiet_s: float = 0.0,
                   settlement: Settlement | None = None) -> bool:
        order = self.s.orders.get(order_id)
        if order is None or order.status not in sources:
            return False
        if user_id is not None and order.user_id != user_id:
            return False
        if unexpired and order.expires_at is not None and order.expires_at <= self.s.now:
            return False
        lease = self.s.leases.setdefault(order_id, Lease())
        if holder is not None and lease.holder != holder:
            return False
        self.s.orders[order_id] = replace(order, status=target)
        self.s.touched[order_id] = self.s.now
        lease.holder, lease.until = None, self._in(quiet_s) if quiet_s else None
        if settlement is not None:  # in the same write, as the adapter's one statement
            if settlement.stock is not None:
                FakeInventory(self.s).settle(order_id, sold=settlement.stock == "committed")
            FakePayments(self.s).append(settlement.attempts)
            self.s.outbox.extend(settlement.events)
        return True

    async def claim_payment(self, order_id: UUID, sources: frozenset[OrderStatus],
                            holder: UUID, lease_s: float, *, user_id: int | None = None,
                            force: bool = False, keep_status: bool = False
                            ) -> PaymentClaim:
        order = self.s.orders.get(order_id)
        if order is None:
            return PaymentClaim(False)
        lease = self.s.leases.setdefault(order_id, Lease())
        if order.status is OrderStatus.PENDING:
            free = order.expires_at is None or order.expires_at > self.s.now
        else:
            free = force or lease.until is None or lease.until <= self.s.now
        if order.status not in sources or not free or (
                user_id is not None and order.user_id != user_id):
            left = (lease.until - self.s.now).total_seconds() if lease.until else 0.0
            return PaymentClaim(False, order.status, lease_left_s=max(0.0, left),
                                user_id=order.user_id)
        status = order.status if keep_status else OrderStatus.PAYMENT_PENDING
        self.s.orders[order_id] = replace(order, status=status, expires_at=None)
        self.s.touched[order_id] = self.s.now
        lease.holder, lease.until, lease.claims = holder, self._in(lease_s), lease.claims + 1
        return PaymentClaim(True, status, resumed=lease.claims > 1)

    async def release_payment(self, order_id: UUID, holder: UUID) -> None:
        lease = self.s.leases.get(order_id)
        if lease and lease.holder == holder and self.s.orders[order_id].status in UNSETTLED:
            lease.holder, lease.until = None, self.s.now

    async def lock_user_orders(self, user_id: int) -> None:
        pass  # units are serialised already

    async def open_orders(self, user_id: int, cart_revision: str | None = None
                          ) -> list[Order]:
        return sorted((o for o in self.s.orders.values()
                       if o.user_id == user_id and (
                           o.status in UNSETTLED
                           or (o.status is OrderStatus.PENDING
                               and o.expires_at is not None and o.expires_at > self.s.now)
                           or (cart_revision is not None and o.cart_revision == cart_revision
                               and o.status is not OrderStatus.CANCELLED))),
                      key=lambda o: o.created_at)

    async def list_for_user(self, user_id: int, limit: int, offset: int
                            ) -> tuple[list[Order], int]:
        mine = [o for o in self.s.orders.values() if o.user_id == user_id]
        return mine[offset:offset + limit], len(mine)

    async def expired_pending(self, limit: int) -> list[Order]:
        return [o for o in self.s.orders.values() if o.status is OrderStatus.PENDING
                and o.expires_at is not None and o.expires_at <= self.s.now][:limit]

    async def unsettled(self, limit: int, *, force: bool = False) -> list[Order]:
        def lapsed(order: Order) -> bool:
            until = self.s.leases.get(order.id, Lease()).until
            return force or until is None or until <= self.s.now

        return [o for o in self.s.orders.values() if o.status in UNSETTLED and lapsed(o)][:limit]

    async def follow_up_due(self, limit: int, retry_in_s: float, *, force: bool = False
                            ) -> list[Order]:
        due = [oid for oid, at in self.s.follow_ups.items() if force or at <= self.s.now]
        for oid in due[:limit]:
            self.s.follow_ups[oid] = self._in(retry_in_s)
        return [self.s.orders[oid] for oid in due[:limit]]

    async def any_follow_up_due(self) -> bool:
        return any(at <= self.s.now for at in self.s.follow_ups.values())

    async def follow_up(self, order_id: UUID, after_s: float | None) -> None:
        if after_s is None:
            self.s.follow_ups.pop(order_id, None)
        else:
            self.s.follow_ups[order_id] = self._in(after_s)

    def _in(self, seconds: float) -> datetime:
        return self.s.now + timedelta(seconds=seconds)


class FakeInventory:
    def __init__(self, store: Store) -> None:
        self.s = store

    async def reserve(self, new: NewOrder) -> Placement:
        lines = new.order.lines
        short = tuple(ln.product_id for ln in lines
                      if self.s.stock[ln.product_id][0] - self.s.stock[ln.product_id][1]
                      < ln.quantity)
        if short:
            return Placement(None, short)
        for ln in lines:
            self.s.stock[ln.product_id][1] += ln.quantity
        order = replace(new.order, created_at=self.s.now, expires_at=self.s.now + new.hold_for)
        assert order.id not in self.s.orders
        self.s.orders[order.id] = order
        self.s.touched[order.id] = self.s.now
        if new.holder is not None:
            self.s.leases[order.id] = Lease(new.holder, self.s.now
                                            + timedelta(seconds=new.lease_s), 1)
        self.s.reservations[order.id] = {ln.product_id: (ln.quantity, "reserved")
                                         for ln in lines}
        self.s.outbox.extend(new.events)
        return Placement(order)

    async def commit(self, order_id: UUID) -> int:
        return self.settle(order_id, sold=True)

    async def release(self, order_id: UUID) -> int:
        return self.settle(order_id, sold=False)

    async def stall(self, seconds: float) -> None:
        pass

    def settle(self, order_id: UUID, *, sold: bool) -> int:
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
        self.append(attempts)

    def append(self, attempts: Sequence[PaymentAttempt]) -> None:
        for attempt in attempts:
            base = sum(1 for p in self.s.payments if p[0] == attempt.order_id)
            captured = [p for p in self.s.payments
                        if p[0] == attempt.order_id and p[2] is PaymentStatus.CAPTURED]
            assert not (captured and attempt.status is PaymentStatus.CAPTURED), "2 captures"
            refunded = [p for p in self.s.payments
                        if p[0] == attempt.order_id and p[2] is PaymentStatus.REFUNDED]
            assert not (refunded and attempt.status is PaymentStatus.REFUNDED), "2 refunds"
            self.s.payments.append((attempt.order_id, base + 1, attempt.status,
                                    attempt.amount, attempt.gateway_ref))

    async def captured_amount(self, order_id: UUID) -> Decimal | None:
        return self._amount(order_id, PaymentStatus.CAPTURED)

    async def refunded_amount(self, order_id: UUID) -> Decimal | None:
        return self._amount(order_id, PaymentStatus.REFUNDED)

    def _amount(self, order_id: UUID, status: PaymentStatus) -> Decimal | None:
        return next((p[3] for p in self.s.payments if p[0] == order_id and p[2] is status),
                    None)


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
    def __init__(self, db: FakeDatabase, *, read_only: bool = False,
                 single_write: bool = False) -> None:
        self._db = db
        self._read_only = read_only
        self._single_write = single_write
        self.events: list[DomainEvent] = []

    def add_event(self, event: DomainEvent) -> None:
        assert not self._read_only, "a read-only unit cannot publish events"
        assert not self._single_write, "a single-write unit's events go with its write"
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
        self.single_writes = 0  # units asked for without a transaction (single_write)

    def __call__(self, *, read_only: bool = False, single_write: bool = False
                 ) -> FakeUnitOfWork:
        self.single_writes += single_write
        return FakeUnitOfWork(self, read_only=read_only, single_write=single_write)


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
        self.refunds: dict[str, tuple[str, Decimal]] = {}  # refund key -> (charge, amount)
        self.script: list[tuple[PaymentStatus, bool]] = []  # (what the caller hears, captured)
        self.calls = 0
        self.lookups = 0
        self.reachable = True
        # Set to hold charges or lookups until the test lets them go (``release``).
        self.charge_gate: asyncio.Event | None = None
        self.lookup_gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()  # a call is held at a gate
        self.in_flight = 0
        self.most_in_flight = 0  # calls (charges and lookups) at once, at most

    async def charge(self, *, order_id: UUID, amount: Decimal, currency: str,
                     idempotency_key: str) -> Answer:
        self.calls += 1
        heard, captured = (self.script.pop(0) if self.script
                           else (PaymentStatus.CAPTURED, True))
        async with self._call(self.charge_gate):
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
        async with self._call(self.lookup_gate):
            amount = self.captures.get(idempotency_key)
        if amount is not None:
            return Answer(PaymentStatus.CAPTURED, "ch_lookup", amount=amount)
        if idempotency_key in self.declines:
            return Answer(PaymentStatus.DECLINED, "ch_lookup")
        return None

    async def refund(self, *, charge_ref: str, amount: Decimal, idempotency_key: str
                     ) -> Answer:
        if not self.reachable:
            raise BackendUnavailable("payment-gateway", "unreachable")
        self.refunds.setdefault(idempotency_key, (charge_ref, amount))
        return Answer(PaymentStatus.REFUNDED, f"re_{idempotency_key}", amount=amount)

    @contextlib.asynccontextmanager
    async def _call(self, gate: asyncio.Event | None) -> AsyncIterator[None]:
        """One call at the gateway: held at ``gate`` (if set) before it is decided."""
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if gate is not None:
                self.waiting.set()
                await gate.wait()
            yield
        finally:
            self.in_flight -= 1


class FakeCarts:
    def __init__(self) -> None:
        self.carts: dict[int, Cart] = {}
        self.unreachable = False  # clearing fails, as with Redis down

    def put(self, user_id: int, *lines: tuple[int, int]) -> None:
        """The cart as the shopper leaves it: a new revision, as every change makes."""
        self.carts[user_id] = Cart(user_id, tuple(CartLine(p, q) for p, q in lines),
                                   revision=uuid.uuid4().hex)

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
