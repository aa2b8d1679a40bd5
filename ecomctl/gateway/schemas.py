"""Request and response bodies. Money crosses the wire as decimal strings, never floats."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)

from ecomctl.domain.models import (
    MAX_LINE_QUANTITY,
    Cart,
    Order,
    OrderStatus,
    Product,
    Shipment,
    User,
)
from ecomctl.errors import NotFound

MAX_ID = 2**63 - 1
"""The largest id there can be: the columns' (PostgreSQL ``bigint``). The document states it
as the ids' maximum, but the API does not refuse a larger id as invalid: no row has one, so
it is a 404 like any id in range that no row has. (Clients and fuzzers that read the bound as
a double take 2^63 + 100 for valid: it rounds to the same double as 2^63 - 1.)"""
_DOCUMENTED_MAX = {"maximum": MAX_ID}


def _whole_number(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction: 3.0 is one (and is taken as
    # 3), "3" and true are not (StrictInt refuses them).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _no_row_past_bigint(value: int) -> int:
    # NotFound, not a ValueError: pydantic passes it on untouched, and the gateway answers
    # 404 before the id reaches a service (or a span attribute, which is an int64 in OTLP).
    if value > MAX_ID:
        raise NotFound("product", value)
    return value


# The bounds go before the validator, or pydantic leaves them out of the JSON Schema.
ProductId = Annotated[StrictInt, Field(ge=1, json_schema_extra=_DOCUMENTED_MAX),
                      BeforeValidator(_whole_number), AfterValidator(_no_row_past_bigint)]

# The patterns below say in the document what the services check, and pydantic enforces them,
# so a request the document allows is never refused and one it forbids never accepted. They
# use explicit character classes, not \s: Python's re (the fuzzers), pydantic's Rust regex
# and JSON Schema readers disagree on what \s holds, not on a list of code points.
_CONTROL = r"\x00-\x1f\x7f-\x9f"  # Unicode category Cc: C0, DEL, C1
_BLANK = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # what strip() removes, bar Cc
VISIBLE_TEXT = rf"^[^{_CONTROL}]*[^{_BLANK}{_CONTROL}][^{_CONTROL}]*$"
"""No control characters, and something left once surrounding blanks are stripped."""
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 atext
_A, _LDH = "[A-Za-z0-9]", "[A-Za-z0-9-]"
# A host name label: 1 to 63 letters, digits and hyphens, a letter or digit at either end, and
# not "--" in 3rd and 4th place (IDNA reserves that for xn-- labels).
_LABEL = (rf"(?:{_A}(?:{_LDH}?{_A})?"
          rf"|{_A}{_LDH}(?:{_LDH}{_A}|(?:{_A}{_LDH}|-{_A}){_LDH}{{0,58}}{_A}))")
EMAIL = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$"
"""What ``format: email`` allows, narrowed to the plain form: an ASCII dot-atom local part
(at most 64 characters: the format's limit, which services.user.normalize_email checks), "@",
and a host name of two labels or more. Every match is a valid email for JSON Schema format
checkers and for normalize_email, so the document and the server agree on each value."""
PRICE = r"^[0-9]{1,9}(?:\.[0-9]{1,2})?$"
"""A decimal amount of money, whole cents, below 10^9 (``19.99``)."""
IDEMPOTENCY_KEY = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"
"""Visible ASCII, inner spaces allowed (a UUID is the usual key)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Annotated[StrictStr, Field(
        min_length=3, max_length=254, pattern=EMAIL, json_schema_extra={"format": "email"},
        description="A plain ASCII address (name@example.com), at most 64 characters before "
                    "the @; stored lower-cased.",
    )]
    password: Annotated[StrictStr, Field(min_length=8, max_length=128)]
    full_name: Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=VISIBLE_TEXT)]


class LoginRequest(Strict):
    email: Annotated[StrictStr, Field(min_length=1, max_length=254)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class AddCartItemRequest(Strict):
    product_id: ProductId
    quantity: Annotated[
        StrictInt, Field(ge=1, le=MAX_LINE_QUANTITY), BeforeValidator(_whole_number)
    ] = 1


class SetQuantityRequest(Strict):
    quantity: Annotated[
        StrictInt, Field(ge=0, le=MAX_LINE_QUANTITY), BeforeValidator(_whole_number)
    ]


class CheckoutRequest(Strict):
    order_id: UUID | None = None


class UserOut(BaseModel):
    id: int
    email: str
    full_name: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, full_name=user.full_name)


class SessionOut(BaseModel):
    token: str
    token_type: str = "bearer"
    user: UserOut


class ProductOut(BaseModel):
    id: int
    sku: str
    name: str
    description: str
    category: str
    price: Decimal
    currency: str

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            id=product.id, sku=product.sku, name=product.name, description=product.description,
            category=product.category_slug, price=product.price, currency=product.currency,
        )


class ProductPage(BaseModel):
    items: list[ProductOut]
    page: int
    page_size: int
    total: int


class SearchHitOut(BaseModel):
    product_id: int
    name: str
    category: str
    price: Decimal
    score: float


class SearchPage(BaseModel):
    items: list[SearchHitOut]
    page: int
    page_size: int
    total: int


class CartLineOut(BaseModel):
    product_id: int
    quantity: int


class CartOut(BaseModel):
    lines: list[CartLineOut]

    @classmethod
    def of(cls, cart: Cart) -> CartOut:
        return cls(lines=[CartLineOut(product_id=ln.product_id, quantity=ln.quantity)
                          for ln in cart.lines])


class OrderLineOut(BaseModel):
    product_id: int
    quantity: int
    unit_price: Decimal


class OrderOut(BaseModel):
    id: UUID
    status: str
    total: Decimal
    currency: str
    lines: list[OrderLineOut]
    created_at: str
    expires_at: str | None = None  # a Pending order's stock is held until then
    shipment: ShipmentOut | None = None

    @classmethod
    def of(cls, order: Order, shipment: Shipment | None = None) -> OrderOut:
        pending = order.status is OrderStatus.PENDING
        return cls(
            id=order.id, status=order.status.value, total=order.total, currency=order.currency,
            lines=[OrderLineOut(product_id=ln.product_id, quantity=ln.quantity,
                                unit_price=ln.unit_price) for ln in order.lines],
            created_at=order.created_at.isoformat(),
            expires_at=order.expires_at.isoformat() if pending and order.expires_at else None,
            shipment=ShipmentOut.of(shipment) if shipment else None,
        )


class ShipmentOut(BaseModel):
    tracking_number: str
    carrier: str
    status: str

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentOut:
        return cls(tracking_number=shipment.tracking_number, carrier=shipment.carrier,
                   status=shipment.status.value)


class OrderPage(BaseModel):
    items: list[OrderOut]
    page: int
    page_size: int
    total: int


class CheckoutOut(BaseModel):
    order_id: UUID
    outcome: str
    payment_status: str
    total: Decimal
    message: str


class RecommendationsOut(BaseModel):
    product_ids: list[int]


class ErrorOut(BaseModel):
    error: str
    message: str


OrderOut.model_rebuild()


ProductPathId = Annotated[int, Path(ge=1, json_schema_extra=_DOCUMENTED_MAX),
                          AfterValidator(_no_row_past_bigint)]
