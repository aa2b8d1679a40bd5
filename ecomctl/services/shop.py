"""All services of the shop, as the composition root wires them (what entrypoints call)."""

from __future__ import annotations

from dataclasses import dataclass

from ecomctl.services.cart import CartService
from ecomctl.services.checkout import CheckoutService
from ecomctl.services.idempotency import IdempotencyService
from ecomctl.services.inventory import InventoryService
from ecomctl.services.order import OrderService
from ecomctl.services.payment import PaymentService
from ecomctl.services.product import ProductService
from ecomctl.services.recommendation import RecommendationService
from ecomctl.services.reconciliation import PaymentReconciler
from ecomctl.services.search import SearchService
from ecomctl.services.shipment import ShipmentService
from ecomctl.services.user import UserService


@dataclass(frozen=True)
class ShopServices:
    users: UserService
    products: ProductService
    carts: CartService
    inventory: InventoryService
    orders: OrderService
    payments: PaymentService
    checkout: CheckoutService
    shipments: ShipmentService
    recommendations: RecommendationService
    search: SearchService
    reconciler: PaymentReconciler
    idempotency: IdempotencyService
