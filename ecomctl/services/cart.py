"""The cart service: per-user carts in Redis, product ids and quantities only.

Prices are deliberately not stored: checkout re-reads them, so a cart can never hold a stale
price. Limits (units per line, lines per cart) are enforced atomically by the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from opentelemetry.trace import Span

from ecomctl.domain.models import MAX_LINE_QUANTITY, Cart, Product, check_quantity
from ecomctl.errors import NotFound, ValidationFailed
from ecomctl.telemetry.spans import ServiceTracer

ProductLookup = Callable[[int], Awaitable[Product]]


class CartRepository(Protocol):
    """What the service needs from the store (ecomctl.adapters.redis_store.CartStore)."""

    async def get(self, user_id: int) -> Cart: ...
    async def add(self, user_id: int, product_id: int, qty: int) -> Cart: ...
    async def set_quantity(
        self, user_id: int, product_id: int, qty: int, *, create: bool = True
    ) -> Cart: ...
    async def remove(self, user_id: int, product_id: int) -> Cart: ...
    async def clear(self, user_id: int) -> None: ...
    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool: ...


def _lines(span: Span, cart: Cart) -> Cart:
    span.set_attribute("ecom.cart.lines", len(cart.lines))
    return cart


class CartService:
    def __init__(
        self, store: CartRepository, product_lookup: ProductLookup, tracer: ServiceTracer
    ) -> None:
        self._store = store
        self._product = product_lookup
        self._tracer = tracer

    async def get(self, user_id: int) -> Cart:
        with self._tracer.span("cart.get", {"ecom.user.id": user_id}) as span:
            return _lines(span, await self._store.get(user_id))

    async def add_item(self, user_id: int, product_id: int, quantity: int) -> Cart:
        """Add units of a product (merging with the existing line). ValidationFailed for a bad
        quantity or a full line/cart, NotFound for an unknown or inactive product; nothing is
        written in either case."""
        with self._tracer.span(
            "cart.add_item", {"ecom.user.id": user_id, "ecom.product.id": product_id}
        ) as span:
            check_quantity(quantity)
            await self._sellable(product_id)
            return _lines(span, await self._store.add(user_id, product_id, quantity))

    async def set_quantity(
        self, user_id: int, product_id: int, quantity: int, *, create: bool = True
    ) -> Cart:
        """Set a line to 0..MAX_LINE_QUANTITY units; 0 removes it (without a product lookup, so
        a product that has since disappeared can still be removed). ``create=False`` changes
        only a line already in the cart, NotInCart otherwise (HTTP PATCH: a line removed
        before stays removed)."""
        with self._tracer.span(
            "cart.set_quantity", {"ecom.user.id": user_id, "ecom.product.id": product_id}
        ) as span:
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise ValidationFailed("quantity must be an integer")
            if not 0 <= quantity <= MAX_LINE_QUANTITY:
                raise ValidationFailed(f"quantity must be between 0 and {MAX_LINE_QUANTITY}")
            if quantity != 0:
                await self._sellable(product_id)
            return _lines(span, await self._store.set_quantity(user_id, product_id, quantity,
                                                               create=create))

    async def remove_item(self, user_id: int, product_id: int) -> Cart:
        with self._tracer.span(
            "cart.remove_item", {"ecom.user.id": user_id, "ecom.product.id": product_id}
        ) as span:
            return _lines(span, await self._store.remove(user_id, product_id))

    async def clear(self, user_id: int) -> None:
        with self._tracer.span("cart.clear", {"ecom.user.id": user_id}):
            await self._store.clear(user_id)

    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool:
        """Empty the cart if it still holds exactly ``items`` (product id -> quantity): the
        cart an order was paid for, when the payment was settled outside the checkout that
        would have cleared it. A cart the shopper has changed since is theirs to keep."""
        with self._tracer.span("cart.clear_if_holds", {"ecom.user.id": user_id}) as span:
            cleared = await self._store.clear_if_holds(user_id, items)
            span.set_attribute("ecom.cart.cleared", cleared)
            return cleared

    async def _sellable(self, product_id: int) -> None:
        if isinstance(product_id, bool) or not isinstance(product_id, int) or product_id <= 0:
            raise ValidationFailed("product id must be a positive integer")
        product = await self._product(product_id)
        if not product.active:  # delisted products cannot be put in a cart
            raise NotFound("product", product_id)
