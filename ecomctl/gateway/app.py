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

_ERRORS = {
    401: {"model": s.ErrorOut, "description": "missing or invalid session"},
    404: {"model": s.ErrorOut, "description": "not found"},
    409: {"model": s.ErrorOut, "description": "conflict (stock, state, email)"},
    422: {"model": s.ErrorOut, "description": "invalid input"},
    503: {"model": s.ErrorOut, "description": "a backend is unavailable"},
}


# Login and register are limited per client address and wait for a password-hash slot.
_PUSH_BACK: dict[int | str, dict[str, Any]] = {
    429: {"model": s.ErrorOut, "description": "too many requests from this address "
                                              "(Retry-After says when to try again)"},
    503: {"model": s.ErrorOut, "description": "overloaded or a backend is unavailable "
                                              "(Retry-After)"},
}


def create_app(
    shop: ShopServices, readiness: ReadinessCheck, limits: RequestLimits | None = None
) -> FastAPI:
    limits = limits or RequestLimits(None)
    app = FastAPI(
        title="ecomctl shop gateway",
        version=__version__,
        description="The HTTP API of ecomctl's traced e-commerce stack.",
        responses=_ERRORS,  # type: ignore[arg-type]
    )
    app.add_middleware(BodySizeLimit)
    install_error_handlers(app)

    async def bearer(authorization: Annotated[str | None, Header()] = None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("missing bearer token")
        return token.strip()

    async def current_user(token: Annotated[str, Depends(bearer)]) -> User:
        return await shop.users.authenticate(token)

    CurrentUser = Annotated[User, Depends(current_user)]

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str | int]:
        # The pid tells which of several `serve --workers` processes answered.
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks = await readiness()
        return JSONResponse({"ready": all(checks.values()), "checks": checks},
                            status_code=200 if all(checks.values()) else 503)

    @app.post("/api/users/register", status_code=201, tags=["users"], responses=_PUSH_BACK)
    async def register(body: s.RegisterRequest, request: Request) -> s.UserOut:
        client = await limits.admit("register", request)
        return s.UserOut.of(await shop.users.register(body.email, body.password, body.full_name,
                                                      client=client))

    @app.post("/api/users/login", tags=["users"], responses=_PUSH_BACK)
    async def login(body: s.LoginRequest, request: Request) -> s.SessionOut:
        client = await limits.admit("login", request)
        token, user = await shop.users.login(body.email, body.password, client=client)
        await limits.give_back("login", client)  # only failed logins drain the bucket
        return s.SessionOut(token=token, user=s.UserOut.of(user))

    @app.post("/api/users/logout", status_code=204, tags=["users"])
    async def logout(token: Annotated[str, Depends(bearer)]) -> Response:
        await shop.users.logout(token)
        return Response(status_code=204)

    @app.get("/api/users/me", tags=["users"])
    async def me(user: CurrentUser) -> s.UserOut:
        return s.UserOut.of(user)

    @app.get("/api/products/{product_id}", tags=["catalogue"])
    async def product(product_id: Annotated[int, s.PathId]) -> s.ProductOut:
        return s.ProductOut.of(await shop.products.get(product_id))

    @app.get("/api/products", tags=["catalogue"])
    async def products(
        category: Annotated[str, Query(min_length=1, max_length=100)],
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.ProductPage:
        found = await shop.products.list_by_category(category, page, page_size)
        return s.ProductPage(items=[s.ProductOut.of(p) for p in found.items], page=found.page,
                             page_size=found.page_size, total=found.total)

    @app.get("/api/search", tags=["catalogue"])
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=200)],
        category: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
        min_price: Annotated[Decimal | None, Query(ge=0, le=10**9, decimal_places=2)] = None,
        max_price: Annotated[Decimal | None, Query(ge=0, le=10**9, decimal_places=2)] = None,
        page: Annotated[int, Query(ge=1, le=500)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.SearchPage:
        query = SearchQuery(q, category, min_price, max_price, page, page_size)
        found = await shop.search.query(query)
        return s.SearchPage(
            items=[s.SearchHitOut(product_id=h.product_id, name=h.name,
                                  category=h.category_slug, price=h.price, score=h.score)
                   for h in found.items],
            page=found.page, page_size=found.page_size, total=found.total,
        )

    @app.get("/api/cart", tags=["cart"])
    async def get_cart(user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.get(user.id))

    @app.post("/api/cart/items", status_code=201, tags=["cart"])
    async def add_item(body: s.AddCartItemRequest, user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.add_item(user.id, body.product_id, body.quantity))

    @app.patch("/api/cart/items/{product_id}", tags=["cart"])
    async def set_quantity(
        product_id: Annotated[int, s.PathId], body: s.SetQuantityRequest, user: CurrentUser
    ) -> s.CartOut:
        return s.CartOut.of(await shop.carts.set_quantity(user.id, product_id, body.quantity))

    @app.delete("/api/cart/items/{product_id}", tags=["cart"])
    async def remove_item(product_id: Annotated[int, s.PathId], user: CurrentUser) -> s.CartOut:
        return s.CartOut.of(await shop.carts.remove_item(user.id, product_id))

    IdempotencyKey = Annotated[str | None, Header(
        alias=HEADER, description="One per intent (a UUID): a retry with the same key gets "
        "the first response replayed instead of a second order or charge (409 while the first "
        "still runs, 422 if reused with another body). Without it every request counts.",
    )]

    @app.post("/api/orders", status_code=201, tags=["orders"], response_model=s.OrderOut)
    async def place_order(user: CurrentUser, key: IdempotencyKey = None) -> JSONResponse:
        async def handle() -> JSONResponse:
            order = await shop.checkout.place_order(user.id)
            return JSONResponse(s.OrderOut.of(order).model_dump(mode="json"), status_code=201)

        return await idempotent(shop.idempotency, user.id, key, "/api/orders", "", handle)

    @app.post("/api/orders/{order_id}/cancel", tags=["orders"])
    async def cancel_order(order_id: UUID, user: CurrentUser) -> s.OrderOut:
        """Cancel one of your Pending orders: its reserved stock is released at once."""
        return s.OrderOut.of(await shop.orders.cancel(user.id, order_id))

    @app.get("/api/orders", tags=["orders"])
    async def list_orders(
        user: CurrentUser,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> s.OrderPage:
        found = await shop.orders.list_for_user(user.id, page, page_size)
        return s.OrderPage(items=[s.OrderOut.of(o) for o in found.items], page=found.page,
                           page_size=found.page_size, total=found.total)

    @app.get("/api/orders/{order_id}", tags=["orders"])
    async def get_order(order_id: UUID, user: CurrentUser) -> s.OrderOut:
        order = await shop.orders.get(user.id, order_id)
        return s.OrderOut.of(order, await shop.shipments.for_order(order.id))

    @app.post("/api/checkout", tags=["orders"], response_model=s.CheckoutOut, responses={
        202: {"model": s.CheckoutOut, "description": "the gateway did not answer: the order "
              "keeps its stock until the reconciler learns whether it was charged"},
        402: {"model": s.CheckoutOut, "description": "payment declined; order cancelled"},
    })
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

    @app.get("/api/recommendations", tags=["catalogue"])
    async def recommendations(
        product_id: Annotated[list[int] | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=20)] = 5,
    ) -> s.RecommendationsOut:
        ids = [pid for pid in (product_id or []) if 1 <= pid <= 2**62]
        return s.RecommendationsOut(
            product_ids=await shop.recommendations.for_products(ids, limit)
        )

    return app
