"""The order path's ports: repositories bound to one transaction, and the unit of work that
owns that transaction.

A service opens ``async with uow_factory() as uow:``, calls the repositories, and records
domain events with ``uow.add_event``; leaving the block commits (writing the events to the
outbox in the same transaction) or, on an exception, rolls everything back. The two writes
that end a checkout's transactions carry their events themselves (``NewOrder.events``,
``Settlement.events``): the outbox rows go in the same statement as the write, written only
if it is, so a checkout needs no statement of its own for them. PostgreSQL
implements these in ``ecomctl.adapters.postgres.unit_of_work``; the unit tests use in-memory
ones (``tests/unit/fakes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Literal, Protocol, Self
from uuid import UUID

from ecomctl.domain.events import DomainEvent
from ecomctl.domain.models import (
    Order,
    OrderStatus,
    PaymentAttempt,
    Shipment,
    ShipmentStatus,
)


@dataclass(frozen=True)
class NewOrder:
    """An order to insert, with the status it starts in (``pending``, or ``payment_pending``
    when the checkout pays it at once) and how long a Pending order holds its stock. A
    ``payment_pending`` one is claimed at once by ``holder`` for ``lease_s``. ``events`` go
    to the outbox with it (``order.placed``)."""

    order: Order
    hold_for: timedelta
    holder: UUID | None = None
    lease_s: float = 0.0
    events: tuple[DomainEvent, ...] = ()


@dataclass(frozen=True)
class Placement:
    """What ``InventoryRepository.reserve`` did: the order as stored (its creation time and
    hold by the store's clock), or, when ``short`` names products that lacked stock, nothing
    at all."""

    order: Order | None
    short: tuple[int, ...] = ()


StockOutcome = Literal["committed", "released"]
"""What settling does with an order's reserved stock: sold, or available again."""


@dataclass(frozen=True)
class Settlement:
    """What settling an order's payment writes with its move, in the same statement and only
    if the order moved: its reserved stock sold or released (``stock``; None: still held),
    the gateway's ``attempts`` (numbered after the order's earlier ones, under
    ``idempotency_key``) and ``events``."""

    stock: StockOutcome | None
    attempts: tuple[PaymentAttempt, ...]
    idempotency_key: str
    currency: str
    events: tuple[DomainEvent, ...] = ()


@dataclass(frozen=True)
class PaymentClaim:
    """What a claim on an order's payment found (``OrderRepository.claim_payment``)."""

    claimed: bool
    status: OrderStatus | None = None
    """The order's status before (claimed) or now (not claimed); None: no such order."""
    resumed: bool = False
    """Claimed, and claimed before: someone may have charged it already."""
    lease_left_s: float = 0.0
    """Not claimed: how long the live lease that stopped it has to run."""
    user_id: int | None = None


class OrderRepository(Protocol):
    async def get(self, order_id: UUID) -> Order | None: ...

    async def move(
        self, order_id: UUID, sources: frozenset[OrderStatus], target: OrderStatus,
        *, user_id: int | None = None, unexpired: bool = False, holder: UUID | None = None,
        quiet_s: float = 0.0, settlement: Settlement | None = None,
    ) -> bool:
        """Guarded transition: True if the order was in one of ``sources`` (and is the
        user's, and unexpired, and its payment held by ``holder``, when asked) and is now in
        ``target``. Of concurrent callers exactly one wins. The payment's claim ends; with
        ``quiet_s`` nobody may claim it again for that long. ``settlement`` is written with
        the move, only if it moved."""
        ...

    async def claim_payment(
        self, order_id: UUID, sources: frozenset[OrderStatus], holder: UUID, lease_s: float,
        *, user_id: int | None = None, force: bool = False, keep_status: bool = False,
    ) -> PaymentClaim:
        """The order (the user's, when given) from one of ``sources`` to PaymentPending (or
        left in its status: ``keep_status``), its payment held by ``holder`` for ``lease_s``:
        a Pending order only while unexpired, an unsettled one only once its lease has lapsed
        (``force``: whatever its lease). Of concurrent claimants exactly one wins."""
        ...

    async def release_payment(self, order_id: UUID, holder: UUID) -> None:
        """End ``holder``'s claim now (it stopped calling the gateway), if it still holds it."""
        ...

    async def lock_user_orders(self, user_id: int) -> None:
        """Serialise this user's order placements until the transaction ends (the pending
        cap and cart reuse read, then write)."""
        ...

    async def open_orders(self, user_id: int, cart_revision: str | None = None) -> list[Order]:
        """The user's unexpired Pending orders, those whose payment was started and never
        settled (payment_pending, payment_unknown), and any not cancelled that was bought
        from ``cart_revision``; oldest first."""
        ...

    async def list_for_user(
        self, user_id: int, limit: int, offset: int
    ) -> tuple[list[Order], int]: ...

    async def expired_pending(self, limit: int) -> list[Order]:
        """Pending orders past their hold, locked (skipping rows another sweeper holds)."""
        ...

    async def unsettled(self, limit: int, *, force: bool = False) -> list[Order]:
        """Unsettled orders (payment_pending, payment_unknown) whose lease has lapsed (all of
        them with ``force``), longest lapsed first; not claimed (``claim_payment`` does)."""
        ...

    async def follow_up_due(self, limit: int, retry_in_s: float, *, force: bool = False
                            ) -> list[Order]:
        """Orders whose payment is due to be followed up (``follow_up``), all of them with
        ``force``; each is put off by ``retry_in_s`` so that one process at a time has it."""
        ...

    async def any_follow_up_due(self) -> bool: ...

    async def follow_up(self, order_id: UUID, after_s: float | None) -> None:
        """Ask the gateway about this order's payment again in ``after_s`` (None: never)."""
        ...


class InventoryRepository(Protocol):
    async def reserve(self, new: NewOrder) -> Placement:
        """Reserve stock for every line of the new order and, only if every line got it,
        insert the order with its lines, reservations and events; otherwise write nothing
        and name the products that lacked stock. Of concurrent reservations of one product,
        never more than its stock succeeds."""
        ...

    async def commit(self, order_id: UUID) -> int:
        """The order's reserved units leave stock as sold; lines settled (0 if none left).
        (A checkout's settlement does it with the order's move: ``Settlement``.)"""
        ...

    async def release(self, order_id: UUID) -> int:
        """The order's reserved units become available again; lines settled."""
        ...

    async def stall(self, seconds: float) -> None:
        """Hold the transaction (and its row locks) this long: the db-slow fault."""
        ...


class PaymentRepository(Protocol):
    async def add_attempts(
        self, attempts: Sequence[PaymentAttempt], idempotency_key: str, currency: str
    ) -> None:
        """Append attempts, numbered after the order's earlier ones."""
        ...

    async def captured_amount(self, order_id: UUID) -> Decimal | None: ...

    async def refunded_amount(self, order_id: UUID) -> Decimal | None: ...


class ShipmentRepository(Protocol):
    async def add(self, order_id: UUID, tracking_number: str, carrier: str) -> Shipment | None:
        """The order's new shipment; None if it has one already (idempotent)."""
        ...

    async def for_order(self, order_id: UUID) -> Shipment | None: ...

    async def any_due(self, status: ShipmentStatus, older_than_s: float) -> bool: ...

    async def due(
        self, status: ShipmentStatus, older_than_s: float, limit: int
    ) -> list[Shipment]:
        """Shipments waiting that long, locked (skipping rows another carrier holds)."""
        ...

    async def set_status(self, shipment_id: int, status: ShipmentStatus) -> None: ...


class UnitOfWork(Protocol):
    """One business transaction over the order path's repositories."""

    @property
    def orders(self) -> OrderRepository: ...
    @property
    def inventory(self) -> InventoryRepository: ...
    @property
    def payments(self) -> PaymentRepository: ...
    @property
    def shipments(self) -> ShipmentRepository: ...

    def add_event(self, event: DomainEvent) -> None:
        """Publish ``event`` if and only if the transaction commits (transactional outbox)."""
        ...

    def savepoint(self) -> UnitOfWork:
        """A nested unit (a savepoint): its failure undoes only its own writes and events."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False, single_write: bool = False) -> UnitOfWork:
        """A new unit; ``read_only`` ones run without a transaction and take no events.

        ``single_write``: the unit writes with one statement at most (reads around it
        allowed), atomic on its own, so it needs no transaction either: no BEGIN and COMMIT
        round trips. Its events must travel with that write (``Settlement.events``);
        ``add_event`` is refused."""
        ...
