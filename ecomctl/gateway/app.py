"""The API gateway: every route parses its input, calls one service, renders the result.

Authentication is a bearer session token (``POST /api/users/login``); every cart and order
route acts on the token's user only, so nobody can see another user's cart or orders.
"""

# No `from __future__ import annotations` here: FastAPI reads these annotations at runtime,
# including dependencies defined inside create_app().

import os
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.telemetry import TelemetryConfig

from ecomctl import __version__
from ecomctl.domain.models import CheckoutOutcome, User
from ecomctl.domain.search import SearchQuery
from ecomctl.errors import AuthenticationFailed
from ecomctl.gateway import schemas as s
from ecomctl.gateway.errors import install_error_handlers
from ecomctl.gateway.idempotency import HEADER, idempotent
from ecomctl.gateway.limits import BodySizeLimit
from ecomctl.gateway.push_back import RequestLimits
from ecomctl.services.shop import ShopServices

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

_CHECKOUT_STATUS = {
    CheckoutOutcome.PAID: 200,
    CheckoutOutcome.PAYMENT_UNKNOWN: 202,
    CheckoutOutcome.PAYMENT_DECLINED: 402,
}

Responses = dict[int | str, dict[str, Any]]


def _error(status: int, description: str) -> Responses:
    return {status: {"model": s.ErrorOut, "description": description}}


def _responses(*parts: Responses) -> Responses:
    return {status: spec for part in parts for status, spec in part.items()}


# Each operation lists the statuses it can answer, and only those: the fuzz test
# (tests/integration/test_http_fuzz.py) holds the server to this document.
_UNAVAILABLE = _error(503, "a backend is unavailable, or the server is overloaded "
                           "(Retry-After)")  # every operation (the app's default)
_INVALID = _error(422, "the request does not match this document, or breaks a rule it "
                       "states (the message says which)")
_UNAUTHENTICATED = _error(401, "missing, invalid or expired session (WWW-Authenticate: Bearer)")
_NOT_FOUND = _error(404, "no such product, category or order (or not yours)")
_TOO_LARGE = _error(413, "request body over 64 KiB")
_AUTHENTICATED = _responses(_UNAUTHENTICATED, _INVALID)
# Login and register are limited per client address and wait for a password-hash slot.
_PUSH_BACK = _error(429, "too many requests from this address (Retry-After says when to "
                         "try again)")

_CART_FULL = _error(409, "the line or the cart is at its limit")
_ORDER_CONFLICT = _error(409, "empty cart, not enough stock, too many Pending orders, an order "
                              "not Pending (or expired), this Idempotency-Key still running, "
                              "or another request paying this cart or order "
                              "(checkout_in_progress, Retry-After)")

_SESSION = HTTPBearer(
    scheme_name="session", auto_error=False,
    description="The token POST /api/users/login answers, as `Authorization: Bearer <token>`.",
)

# OpenAPI links: where an answer's ids lead next (and what stateful fuzzing chains).
_ORDER_LINKS = {
    "GetOrder": {"operationId": "get_order", "parameters": {"order_id": "$response.body#/id"}},
    "CancelOrder": {"operationId": "cancel_order",
                    "parameters": {"order_id": "$response.body#/id"}},
    "PayOrder": {"operationId": "checkout", "requestBody": {"order_id": "$response.body#/id"}},
}
_CHECKOUT_LINKS = {
    "GetOrder": {"operationId": "get_order",
                 "parameters": {"order_id": "$response.body#/order_id"}},
}


def _cart_line_links(product_id: str) -> dict[str, Any]:
    return {
        "SetQuantity": {"operationId": "set_quantity", "parameters": {"product_id": product_id}},
        "RemoveItem": {"operationId": "remove_item", "parameters": {"product_id": product_id}},
        # What a cart with something in it is for (both act on the whole cart).
        "PlaceOrder": {"operationId": "place_order"},
        "Checkout": {"operationId": "checkout"},
    }


def _price(text: str | None) -> Decimal | None:
    """A query's price, already held to s.PRICE by the parameter's pattern."""
    return None if text is None else Decimal(text)


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                 "auto_configure": False}


def create_app(
    shop: ShopServices,
    readiness: ReadinessCheck,
    limits: RequestLimits | None = None,
    telemetry: TelemetryConfig = NO_TELEMETRY,
) -> FastAPI:
    """The gateway; ``telemetry`` is FastAPI's own request telemetry (its one tracing
    middleware: ``Telemetry.gateway_telemetry``), off unless given."""
    limits = limits or RequestLimits(None)
    app = FastAPI(
        telemetry=telemetry,
        title="ecomctl shop gateway",
        version=__version__,
        description="The HTTP API of ecomctl's traced e-commerce stack.",
        responses=_UNAVAILABLE,
        # operationIds are the handlers' names (get_order), which the links below refer to.
        generate_unique_id_function=lambda route: route.name,
    )
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app)

    async def bearer(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_SESSION)],
    ) -> str:
        if credentials is None:
            raise AuthenticationFailed("missing bearer token")
        return credentials.credentials

    async def current_user(token: Annotated[str, Depends(bearer)]) -> User:
        return await shop.users.authenticate(token)

    CurrentUser = Annotated[User, Depends(current_user)]

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str | int]:
        # The pid tells which of several `serve --workers` processes answered.
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz", tags=["ops"], responses=_error(503, "a backend is down"))
    async def readyz() -> JSONResponse:
        checks = await readiness()
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    @app.post("/api/users/register", status_code=201, tags=["users"], responses=_responses(
        _error(409, "the email has an account already"), _TOO_LARGE, _INVALID, _PUSH_BACK,
    ))
    async def register(body: s.RegisterRequest, request: Request) -> s.UserOut:
        client = await limits.admit("register", request)
        return s.UserOut.of(await shop.users.register(body.email, body.password, body.full_name,
                                                      client=client))

    @app.post("/api/users/login", tags=["users"], responses=_responses(
        _error(401, "wrong email or password (the same answer either way)"), _TOO_LARGE,
        _INVALID, _PUSH_BACK,
    ))
    async def login(body: s.LoginRequest, request: Request) -> s.SessionOut:
        # Only failed logins drain the address's bucket (a success gives its token back).
        async with limits.failures_only("login", request) as client:
            token, user = await shop.users.login(body.email, body.password, client=client)
        return s.SessionOut(token=token, user=s.UserOut.of(user))

    @app.post("/api/users/logout", status_code=204, tags=["users"],
              responses=_UNAUTHENTICATED)
    async def logout(token: Annotated[str, Depends(bearer)]) -> Response:
        """End the session: a session that is not valid (any more) gets 401, as on every
        route that requires one."""
        await shop.users.authenticate(token)
        await shop.users.logout(token)
        return Response(status_code=204)

    @app.get("/api/users/me", tags=["users"], responses=_UNAUTHENTICATED)
    async def me(user: CurrentUser) -> s.UserOut:
        return s.UserOut.of(user)

    @app.get("/api/products/{product_id}", tags=["catalogue"],
             responses=_responses(_NOT_FOUND, _INVALID))
    async def product(product_id: s.ProductPathId) -> s.ProductOut:
        return s.ProductOut.of(await shop.products.get(product_id))

    @app.get("/api/products", tags=["catalogue"], responses=_responses(_NOT_FOUND, _INVALID, {
        200: {"links": {"GetProduct": {
            "operationId": "product", "parameters": {"product_id": "$response.body#/items/0/id"},
        }}},
    }))
    async def products(
        category: Annotated[str, Query(min_length=1, max_length=100, pattern=s.VISIBLE_TEXT)],
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.ProductPage:
        found = await shop.products.list_by_category(category, page, page_size)
        return s.ProductPage(items=[s.ProductOut.of(p) for p in found.items], page=found.page,
                             page_size=found.page_size, total=found.total)

    @app.get("/api/search", tags=["catalogue"], responses=_responses(_INVALID, {
        200: {"links": {"GetProduct": {
            "operationId": "product",
            "parameters": {"product_id": "$response.body#/items/0/product_id"},
        }}},
    }))
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=200, pattern=s.VISIBLE_TEXT)],
        category: Annotated[
            str | None, Query(min_length=1, max_length=100, pattern=s.VISIBLE_TEXT)
        ] = None,
        min_price: Annotated[str | None, Query(
            pattern=s.PRICE, description="Lowest price (a decimal string, e.g. 9.99)."
        )] = None,
        max_price: Annotated[str | None, Query(
            pattern=s.PRICE,
            description="Highest price; below min_price the request is refused (422)."
        )] = None,
        # Elasticsearch serves the first 10,000 hits: 100 pages of at most 100.
        page: Annotated[int, Query(ge=1, le=100)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.SearchPage:
        query = SearchQuery(q, category, _price(min_price), _price(max_price), page, page_size)
        found = await shop.search.query(query)
        return s.SearchPage(
            items=[s.SearchHitOut(product_id=h.product_id, name=h.name,
                                  category=h.category_slug, price=h.price, score=h.score)
                   for h in found.items],
            page=found.page, page_size=found.page_size, total=found.total,
        )

    @app.get("/api/cart", tags=["cart"], responses=_UNAUTHENTICATED)
    async def get_cart(user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.get(user.id))

    @app.post("/api/cart/items", status_code=201, tags=["cart"], responses=_responses(
        _AUTHENTICATED, _NOT_FOUND, _CART_FULL, _TOO_LARGE, {201: {"links": _cart_line_links(
            "$request.body#/product_id"
        )}},
    ))
    async def add_item(body: s.AddCartItemRequest, user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.add_item(user.id, body.product_id, body.quantity))

    @app.patch("/api/cart/items/{product_id}", tags=["cart"], responses=_responses(
        _AUTHENTICATED, _error(404, "no such product"),
        _error(409, "the product is not in your cart (add it with POST /api/cart/items)"),
        _TOO_LARGE,
    ))
    async def set_quantity(
        product_id: s.ProductPathId, body: s.SetQuantityRequest, user: CurrentUser
    ) -> s.CartOut:
        """Change a line already in the cart (0 removes it); POST /api/cart/items adds one."""
        return s.CartOut.of(await shop.carts.set_quantity(user.id, product_id, body.quantity,
                                                          create=False))

    @app.delete("/api/cart/items/{product_id}", tags=["cart"], responses=_responses(
        _AUTHENTICATED, _error(404, "an id past the largest there can be (2^63 - 1)")))
    async def remove_item(product_id: s.ProductPathId, user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.remove_item(user.id, product_id))

    IdempotencyKey = Annotated[str | None, Header(
        alias=HEADER, min_length=1, max_length=255, pattern=s.IDEMPOTENCY_KEY,
        description="One per intent (a UUID): a retry with the same key gets "
        "the first response replayed instead of a second order or charge (409 while the first "
        "still runs, 422 if reused with another body). Without it every request counts.",
    )]

    @app.post("/api/orders", status_code=201, tags=["orders"], response_model=s.OrderOut,
              responses=_responses(_AUTHENTICATED, _NOT_FOUND, _ORDER_CONFLICT,
                                   {201: {"links": _ORDER_LINKS}}))
    async def place_order(user: CurrentUser, key: IdempotencyKey = None) -> JSONResponse:
        async def handle() -> JSONResponse:
            order = await shop.checkout.place_order(user.id)
            return JSONResponse(s.OrderOut.of(order).model_dump(mode="json"), status_code=201)

        return await idempotent(shop.idempotency, user.id, key, "/api/orders", "", handle)

    @app.post("/api/orders/{order_id}/cancel", tags=["orders"], responses=_responses(
        _AUTHENTICATED, _NOT_FOUND, _error(409, "the order is not Pending"),
    ))
    async def cancel_order(order_id: UUID, user: CurrentUser) -> s.OrderOut:
        """Cancel one of your Pending orders: its reserved stock is released at once."""
        return s.OrderOut.of(await shop.orders.cancel(user.id, order_id))

    @app.get("/api/orders", tags=["orders"], responses=_responses(_AUTHENTICATED, {
        200: {"links": {  # the first order listed: the newest
            "GetOrder": {"operationId": "get_order",
                         "parameters": {"order_id": "$response.body#/items/0/id"}},
            "CancelOrder": {"operationId": "cancel_order",
                            "parameters": {"order_id": "$response.body#/items/0/id"}},
        }},
    }))
    async def list_orders(
        user: CurrentUser,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.OrderPage:
        found = await shop.orders.list_for_user(user.id, page, page_size)
        return s.OrderPage(items=[s.OrderOut.of(o) for o in found.items], page=found.page,
                           page_size=found.page_size, total=found.total)

    @app.get("/api/orders/{order_id}", tags=["orders"],
             responses=_responses(_AUTHENTICATED, _NOT_FOUND))
    async def get_order(order_id: UUID, user: CurrentUser) -> s.OrderOut:
        order = await shop.orders.get(user.id, order_id)
        return s.OrderOut.of(order, await shop.shipments.for_order(order.id))

    @app.post("/api/checkout", tags=["orders"], response_model=s.CheckoutOut,
              responses=_responses(_AUTHENTICATED, _NOT_FOUND, _ORDER_CONFLICT, _TOO_LARGE, {
                  200: {"links": _CHECKOUT_LINKS},
                  202: {"model": s.CheckoutOut, "links": _CHECKOUT_LINKS,
                        "description": "the gateway did not answer: the order keeps its stock "
                                       "until the reconciler learns whether it was charged"},
                  402: {"model": s.CheckoutOut, "links": _CHECKOUT_LINKS,
                        "description": "payment declined; order cancelled"},
              }))
    async def checkout(
        user: CurrentUser, key: IdempotencyKey = None, body: s.CheckoutRequest | None = None
    ) -> JSONResponse:
        async def handle() -> JSONResponse:
            result = await shop.checkout.checkout(user.id, body.order_id if body else None)
            out = s.CheckoutOut(order_id=result.order_id, outcome=result.outcome.value,
                                payment_status=result.payment_status.value,
                                total=result.total, message=result.message)
            # A declined payment is a completed request with a business outcome: 402 tells
            # clients (and load tests) apart from successes without parsing the body.
            return JSONResponse(out.model_dump(mode="json"),
                                status_code=_CHECKOUT_STATUS[result.outcome])

        # What the request asks for, not its bytes: no body and {} are the same request.
        target = str(body.order_id) if body and body.order_id else "cart"
        return await idempotent(shop.idempotency, user.id, key, "/api/checkout", target,
                                handle)

    @app.get("/api/recommendations", tags=["catalogue"], responses=_INVALID)
    async def recommendations(
        product_id: Annotated[list[int] | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
    ) -> s.RecommendationsOut:
        ids = [pid for pid in (product_id or []) if 1 <= pid <= s.MAX_ID]
        return s.RecommendationsOut(
            product_ids=await shop.recommendations.for_products(ids, limit)
        )

    return app
