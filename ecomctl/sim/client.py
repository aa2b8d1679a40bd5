"""The asyncio driver of the shared journeys (``ecomctl.journeys``): a virtual shopper that
carries out their instructions against the services directly or through the gateway.

Both clients fail a step the same way (``StepFailed`` with a short cause such as
``http_503``, or in process the service's own exception), so journeys and reports do not
care which path they took.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar
from uuid import UUID

from ecomctl.errors import Overloaded
from ecomctl.journeys import routes, steps
from ecomctl.journeys.protocol import Request, Response, Step, StepFailed, Together, Wait
from ecomctl.journeys.routes import Route
from ecomctl.journeys.session import Session

T = TypeVar("T")


class ShopClient(Protocol):
    session: Session

    async def run(self, journey: Step[T]) -> T: ...
    async def login(self, email: str, password: str) -> None: ...
    async def clear_cart(self) -> None: ...
    async def close(self) -> None: ...


class AsyncShopper:
    """Runs a journey's instructions on the event loop; subclasses send a request."""

    def __init__(self) -> None:
        self.session = Session()

    async def send(self, request: Request) -> Response:
        raise NotImplementedError

    async def run(self, journey: Step[T]) -> T:
        answer: Any = None
        while True:
            try:
                instruction = journey.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(instruction, Request):
                answer = await self.send(instruction)
            elif isinstance(instruction, Wait):
                await asyncio.sleep(instruction.seconds)
                answer = None
            elif isinstance(instruction, Together):
                answer = tuple(await asyncio.gather(*map(self.send, instruction.requests)))
            else:
                raise TypeError(f"not an instruction: {instruction!r}")

    async def login(self, email: str, password: str) -> None:
        await self.run(self.session.login(email, password))

    async def clear_cart(self) -> None:
        await self.run(steps.clear_cart(self.session))

    async def close(self) -> None:
        return None


class InProcessClient(AsyncShopper):
    """Calls the services of an in-process stack, as the gateway's handlers would."""

    def __init__(self, services: Any) -> None:
        from ecomctl.services.shop import ShopServices

        super().__init__()
        self._s: ShopServices = services
        self._user_id: int | None = None
        self._handlers: Mapping[Route, Callable[[Request], Awaitable[Any]]] = {
            routes.LOGIN: self._login, routes.CATEGORY: self._category,
            routes.PRODUCT: self._product, routes.SEARCH: self._search,
            routes.RECOMMENDATIONS: self._recommendations, routes.CART: self._cart,
            routes.CART_ADD: self._add, routes.CART_REMOVE: self._remove,
            routes.PLACE_ORDER: self._place_order, routes.CHECKOUT: self._checkout,
        }

    @property
    def user_id(self) -> int:
        if self._user_id is None:
            raise StepFailed("not_logged_in")
        return self._user_id

    async def send(self, request: Request) -> Response:
        try:
            return Response(200, await self._handlers[request.route](request))
        except Overloaded as exc:  # as the gateway's 503 Retry-After would say
            return Response(503, {"error": "overloaded"},
                            {"retry-after": str(exc.retry_after_s)}, exc)
        except Exception as exc:  # the journey raises it as it is: its cause is its own
            return Response(0, None, {}, exc)

    async def _login(self, r: Request) -> Any:
        assert r.json is not None
        token, user = await self._s.users.login(r.json["email"], r.json["password"])
        self._user_id = user.id
        return {"token": token}

    async def _category(self, r: Request) -> Any:
        page = await self._s.products.list_by_category(str(r.query["category"]), 1,
                                                       int(r.query["page_size"]))
        return {"items": [{"id": p.id} for p in page.items]}

    async def _product(self, r: Request) -> Any:
        await self._s.products.get(int(r.path_params["product_id"]))

    async def _search(self, r: Request) -> Any:
        from ecomctl.domain.search import SearchQuery

        page = await self._s.search.query(SearchQuery(str(r.query["q"]),
                                                      page_size=int(r.query["page_size"])))
        return {"items": [{"product_id": hit.product_id} for hit in page.items]}

    async def _recommendations(self, r: Request) -> Any:
        ids = await self._s.recommendations.for_products([int(r.query["product_id"])],
                                                         int(r.query["limit"]))
        return {"product_ids": ids}

    async def _cart(self, _: Request) -> Any:
        cart = await self._s.carts.get(self.user_id)
        return {"lines": [{"product_id": line.product_id} for line in cart.lines]}

    async def _add(self, r: Request) -> Any:
        assert r.json is not None
        await self._s.carts.add_item(self.user_id, r.json["product_id"], r.json["quantity"])

    async def _remove(self, r: Request) -> Any:
        await self._s.carts.remove_item(self.user_id, int(r.path_params["product_id"]))

    async def _place_order(self, _: Request) -> Any:
        return {"id": str((await self._s.checkout.place_order(self.user_id)).id)}

    async def _checkout(self, r: Request) -> Any:
        order_id = (r.json or {}).get("order_id")
        result = await self._s.checkout.checkout(self.user_id,
                                                 UUID(order_id) if order_id else None)
        return {"order_id": result.order_id, "outcome": result.outcome.value,
                "total": result.total}


class HttpClient(AsyncShopper):
    """A shopper talking to the gateway over HTTP (traceparent injected by the httpx
    instrumentation, so server spans join the journey's trace)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        import httpx

        super().__init__()
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def send(self, request: Request) -> Response:
        import httpx

        try:
            response = await self._http.request(request.method, request.path,
                                                headers=dict(request.headers),
                                                json=request.json)
        except httpx.HTTPError as exc:
            return Response(0, error=StepFailed("http_unreachable", type(exc).__name__))
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return Response(response.status_code, body,
                        {"retry-after": response.headers.get("retry-after", "")})

    async def close(self) -> None:
        await self._http.aclose()
