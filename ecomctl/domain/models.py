"""Entities and value objects of the shop."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

from ecomctl.domain.money import money
from ecomctl.errors import InvalidTransition, ValidationFailed

MAX_LINE_QUANTITY = 100
MAX_CART_LINES = 50
T = TypeVar("T")


def check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise ValidationFailed("quantity must be an integer")
    if not 1 <= quantity <= MAX_LINE_QUANTITY:
        raise ValidationFailed(f"quantity must be between 1 and {MAX_LINE_QUANTITY}")
    return quantity


@dataclass(frozen=True)
class User:
    id: int
    email: str
    full_name: str
    created_at: datetime


@dataclass(frozen=True)
class Category:
    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class Product:
    id: int
    sku: str
    name: str
    description: str
    category_id: int
    category_slug: str
    price: Decimal
    currency: str
    active: bool
    version: int


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    page: int
    page_size: int
    total: int


def quantities(lines: Iterable[CartLine | OrderLine]) -> dict[int, int]:
    """Product id -> quantity of cart or order lines: how a cart and an order are compared."""
    return {line.product_id: line.quantity for line in lines}


@dataclass(frozen=True)
class CartLine:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Cart:
    user_id: int
    lines: tuple[CartLine, ...] = ()
    revision: str | None = None
    """Changes with every change of the cart's content (random, never reused): an order
    records the revision it was bought from, so one revision of a cart is paid once."""

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def items(self) -> dict[int, int]:
        """Product id -> quantity."""
        return quantities(self.lines)


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAYMENT_PENDING = "payment_pending"  # claimed by one checkout, the gateway is being asked
    PAYMENT_UNKNOWN = "payment_unknown"  # the gateway's answer was lost: the reconciler decides
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAYMENT_PENDING, OrderStatus.CANCELLED}),
    OrderStatus.PAYMENT_PENDING: frozenset(
        {OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.PAYMENT_UNKNOWN}
    ),
    # Back to PaymentPending: a retried checkout of its cart finishes it (same payment key).
    OrderStatus.PAYMENT_UNKNOWN: frozenset(
        {OrderStatus.PAID, OrderStatus.CANCELLED, OrderStatus.PAYMENT_PENDING}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """The order state machine: Pending -> PaymentPending -> Paid -> Shipped -> Delivered;
    PaymentPending -> PaymentUnknown -> Paid or Cancelled (the reconciler), or back to
    PaymentPending (a retried checkout pays it under the same key); Pending (expired,
    cancelled by its owner), PaymentPending (declined) and Paid -> Cancelled. Anything else
    raises InvalidTransition."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current.value, target.value)
    return target


@dataclass(frozen=True)
class OrderLine:
    product_id: int
    quantity: int
    unit_price: Decimal

    @property
    def line_total(self) -> Decimal:
        return money(self.unit_price * self.quantity)


def order_total(lines: Sequence[OrderLine]) -> Decimal:
    return money(sum((line.line_total for line in lines), Decimal("0")))


@dataclass(frozen=True)
class Order:
    id: UUID
    user_id: int
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Decimal
    currency: str
    created_at: datetime
    expires_at: datetime | None = None  # a Pending order's stock is held until then
    cart_revision: str | None = None  # the cart revision it was bought from (Cart.revision)

    def with_status(self, status: OrderStatus) -> Order:
        return replace(self, status=status)

    @property
    def items(self) -> dict[int, int]:
        """Product id -> quantity: what a cart holding exactly this order looks like."""
        return quantities(self.lines)


class PaymentStatus(StrEnum):
    CAPTURED = "captured"
    DECLINED = "declined"
    TIMEOUT = "timeout"
    GATEWAY_ERROR = "gateway_error"
    REFUNDED = "refunded"  # a capture given back (an order cancelled while it was in flight)

    @property
    def is_final(self) -> bool:
        """Captured or declined: the gateway decided. A timeout or an error leaves the charge
        unknown (the gateway may have captured before the answer was lost)."""
        return self in (PaymentStatus.CAPTURED, PaymentStatus.DECLINED)


@dataclass(frozen=True)
class PaymentAttempt:
    order_id: UUID
    attempt: int
    status: PaymentStatus
    amount: Decimal
    gateway_ref: str | None = None
    error: str | None = None


class ShipmentStatus(StrEnum):
    CREATED = "created"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    RETURNED = "returned"


@dataclass(frozen=True)
class Shipment:
    id: int
    order_id: UUID
    tracking_number: str
    carrier: str
    status: ShipmentStatus


class CheckoutOutcome(StrEnum):
    PAID = "paid"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_UNKNOWN = "payment_unknown"  # no answer: the reconciler settles the order later


@dataclass(frozen=True)
class CheckoutResult:
    order_id: UUID
    outcome: CheckoutOutcome
    total: Decimal
    payment_status: PaymentStatus
    message: str
    lines: tuple[OrderLine, ...] = field(default=())

    @property
    def succeeded(self) -> bool:
        return self.outcome is CheckoutOutcome.PAID
