"""The gateway's API as shoppers use it: one table for every driver (the simulator's HTTP
client, its in-process client, which dispatches on these, and the Locust shoppers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """The gateway's path, ``{field}`` placeholders filled from a request's ``path_params``."""
    name: str
    """The request's name in Locust's statistics and the load run's endpoints (its id folded
    away, so one product page is one endpoint): ``GET /api/products/{id}``."""


LOGIN = Route("POST", "/api/users/login", "/api/users/login")
CATEGORY = Route("GET", "/api/products", "/api/products?category")
PRODUCT = Route("GET", "/api/products/{product_id}", "/api/products/{id}")
SEARCH = Route("GET", "/api/search", "/api/search")
RECOMMENDATIONS = Route("GET", "/api/recommendations", "/api/recommendations")
CART = Route("GET", "/api/cart", "/api/cart")
CART_ADD = Route("POST", "/api/cart/items", "/api/cart/items")
CART_REMOVE = Route("DELETE", "/api/cart/items/{product_id}", "/api/cart/items/{id}")
PLACE_ORDER = Route("POST", "/api/orders", "/api/orders")
CHECKOUT = Route("POST", "/api/checkout", "/api/checkout")

ROUTES: tuple[Route, ...] = (LOGIN, CATEGORY, PRODUCT, SEARCH, RECOMMENDATIONS, CART, CART_ADD,
                             CART_REMOVE, PLACE_ORDER, CHECKOUT)
