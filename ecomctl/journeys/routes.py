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
    repeatable: bool = True
    """Sending it twice does what sending it once does (a read, a removal, a login: one more
    session; an order placed again is the open order), so an answer that does not say the
    request was refused untouched (a 503 ``backend_unavailable``) still lets it be sent
    again. Adding to the cart is not: twice adds twice."""


LOGIN = Route("POST", "/api/users/login", "/api/users/login")
CATEGORY = Route("GET", "/api/products", "/api/products?category")
PRODUCT = Route("GET", "/api/products/{product_id}", "/api/products/{id}")
SEARCH = Route("GET", "/api/search", "/api/search")
RECOMMENDATIONS = Route("GET", "/api/recommendations", "/api/recommendations")
CART = Route("GET", "/api/cart", "/api/cart")
CART_ADD = Route("POST", "/api/cart/items", "/api/cart/items", repeatable=False)
CART_REMOVE = Route("DELETE", "/api/cart/items/{product_id}", "/api/cart/items/{id}")
PLACE_ORDER = Route("POST", "/api/orders", "/api/orders")
# Repeatable only with its Idempotency-Key (the shopper's checkout sends one).
CHECKOUT = Route("POST", "/api/checkout", "/api/checkout", repeatable=False)

ROUTES: tuple[Route, ...] = (LOGIN, CATEGORY, PRODUCT, SEARCH, RECOMMENDATIONS, CART, CART_ADD,
                             CART_REMOVE, PLACE_ORDER, CHECKOUT)


def retried_name(name: str, status: int) -> str:
    """The name an attempt that was pushed back and then sent again is recorded under (Locust's
    statistics, the load run's endpoints), apart from the endpoint's own answers:
    ``/api/users/login (retried after 503)``."""
    return f"{name} (retried after {status})"
