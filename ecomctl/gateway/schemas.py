"""Request and response bodies. Money crosses the wire as decimal strings, never floats."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ecomctl.domain.models import (
    MAX_LINE_QUANTITY,
    Cart,
    Order,
    OrderStatus,
    Product,
    Shipment,
    User,
)

ProductId = Annotated[StrictInt, Field(ge=1, le=2**62)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(Strict):
    email: Annotated[StrictStr, Field(min_length=3, max_length=254)]
    password: Annotated[StrictStr, Field(min_length=8, max_length=128)]
    full_name: Annotated[StrictStr, Field(min_length=1, max_length=200)]


class LoginRequest(Strict):
    email: Annotated[StrictStr, Field(min_length=1, max_length=254)]
    password: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class AddCartItemRequest(Strict):
    product_id: ProductId
    quantity: Annotated[StrictInt, Field(ge=1, le=MAX_LINE_QUANTITY)] = 1


class SetQuantityRequest(Strict):
    quantity: Annotated[StrictInt, Field(ge=0, le=MAX_LINE_QUANTITY)]


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


PathId = Path(ge=1, le=2**62)
