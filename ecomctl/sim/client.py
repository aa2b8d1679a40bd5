"""What a virtual shopper can do, against the services directly or through the gateway.

Both clients raise the same ``StepFailed`` carrying a short cause (``out_of_stock``,
``backend_unavailable:redis``, ``http_503``...), so journeys and reports do not care which
path they took.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID, uuid4

from ecomctl.backoff import jittered
from ecomctl.errors import (
    BackendUnavailable,
    DomainError,
    InfraError,
    Overloaded,
    error_code,
)

_LOGIN = "/api/users/login"
_LOGIN_RETRIES = 10
_MAX_RETRY_AFTER_S = 10
# A checkout is retried (same Idempotency-Key) when its answer was lost or refused for now,
# after the Retry-After the server asked for (else half a second more each time): a first
# attempt may still be waiting on the gateway, or hold the payment's claim.
_CHECKOUT_TRIES = 5
_RETRYABLE_CHECKOUT = frozenset({"http_unreachable", "idempotency_conflict",
                                 "checkout_in_progress", "backend_unavailable", "overloaded",
                                 "http_503"})


def _retry_after(response: Any) -> int | None:
    """The seconds a response asks to wait, if short enough to wait for (a lock-out of
    minutes is not); None otherwise."""
    value = response.headers.get("retry-after", "")
    if not value.isdigit():
        return None
    return int(value) if int(value) <= _MAX_RETRY_AFTER_S else None


class StepFailed(Exception):
    def __init__(self, cause: str, detail: str = "", retry_after_s: int | None = None
                 ) -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class CheckoutOutcome:
    order_id: UUID | None
    outcome: str  # paid, payment_declined, payment_unknown
    total: Decimal


class ShopClient(Protocol):
    async def login(self, email: str, password: str) -> None: ...
    async def view_category(self, slug: str) -> list[int]: ...
    async def view_product(self, product_id: int) -> None: ...
    async def search(self, text: str) -> list[int]: ...
    async def recommendations(self, product_id: int) -> list[int]: ...
    async def add_to_cart(self, product_id: int, quantity: int) -> None: ...
    async def view_cart(self) -> int: ...
    async def clear_cart(self) -> None: ...
    async def checkout(self) -> CheckoutOutcome: ...
    async def place_order(self) -> UUID: ...
    async def pay_order(self, order_id: UUID) -> CheckoutOutcome: ...
    async def close(self) -> None: ...


def cause_of(exc: BaseException) -> str:
    """A short, stable name for why a step failed (the report groups errors by it)."""
    if isinstance(exc, StepFailed):
        return exc.cause
    if isinstance(exc, BackendUnavailable):
        return f"backend_unavailable:{exc.backend}"
    if isinstance(exc, DomainError | InfraError):
        return error_code(exc)
    return f"unexpected:{type(exc).__name__}"


class InProcessClient:
    """Calls the services of an in-process stack, as the gateway's handlers would."""

    def __init__(self, services: Any) -> None:
        from ecomctl.services.shop import ShopServices

        self._s: ShopServices = services
        self._user_id: int | None = None

    @property
    def user_id(self) -> int:
        if self._user_id is None:
            raise StepFailed("not_logged_in")
        return self._user_id

    async def login(self, email: str, password: str) -> None:
        for pushed_back in range(_LOGIN_RETRIES + 1):
            try:
                _, user = await self._s.users.login(email, password)
                break
            except Overloaded as exc:
                # The password-hash queue is full (every shopper logs in at the start): wait
                # as the gateway's 503 Retry-After would say, as the HTTP client does.
                if pushed_back == _LOGIN_RETRIES or exc.retry_after_s > _MAX_RETRY_AFTER_S:
                    raise
                await asyncio.sleep(exc.retry_after_s + random.random())
        self._user_id = user.id

    async def view_category(self, slug: str) -> list[int]:
        page = await self._s.products.list_by_category(slug, 1, 20)
        return [p.id for p in page.items]

    async def view_product(self, product_id: int) -> None:
        await self._s.products.get(product_id)

    async def search(self, text: str) -> list[int]:
        from ecomctl.domain.search import SearchQuery

        page = await self._s.search.query(SearchQuery(text, page_size=10))
        return [hit.product_id for hit in page.items]

    async def recommendations(self, product_id: int) -> list[int]:
        return await self._s.recommendations.for_products([product_id], 5)

    async def add_to_cart(self, product_id: int, quantity: int) -> None:
        await self._s.carts.add_item(self.user_id, product_id, quantity)

    async def view_cart(self) -> int:
        return len((await self._s.carts.get(self.user_id)).lines)

    async def clear_cart(self) -> None:
        await self._s.carts.clear(self.user_id)

    async def checkout(self) -> CheckoutOutcome:
        result = await self._s.checkout.checkout(self.user_id)
        return CheckoutOutcome(result.order_id, result.outcome.value, result.total)

    async def place_order(self) -> UUID:
        return (await self._s.checkout.place_order(self.user_id)).id

    async def pay_order(self, order_id: UUID) -> CheckoutOutcome:
        result = await self._s.checkout.checkout(self.user_id, order_id)
        return CheckoutOutcome(result.order_id, result.outcome.value, result.total)

    async def close(self) -> None:
        return None


class HttpClient:
    """A shopper talking to the gateway over HTTP (traceparent injected by the httpx
    instrumentation, so server spans join the journey's trace)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        import httpx

        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)
        self._headers: dict[str, str] = {}
        self._credentials: tuple[str, str] | None = None

    async def _call(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        import httpx

        relogged, pushed_back = False, 0
        while True:
            try:
                response = await self._http.request(
                    method, path, headers={**self._headers, **(headers or {})}, **kwargs
                )
            except httpx.HTTPError as exc:
                raise StepFailed("http_unreachable", type(exc).__name__) from exc
            if (response.status_code == 401 and not relogged and path != _LOGIN
                    and self._credentials is not None):
                # The session is gone (expired, or its store restarted): log in again and
                # retry the request once, as a real client does.
                relogged = True
                await self.login(*self._credentials)
                continue
            wait_s = _retry_after(response) if response.status_code in (429, 503) else None
            if path == _LOGIN and wait_s is not None and pushed_back < _LOGIN_RETRIES:
                # Rate-limited or overloaded for a moment: a login is safe to repeat.
                pushed_back += 1
                await asyncio.sleep(wait_s + random.random())  # jitter: not all at once
                continue
            break
        if response.status_code >= 400 and response.status_code != 402:
            try:
                code = response.json().get("error", "")
            except ValueError:
                code = ""
            raise StepFailed(code or f"http_{response.status_code}", path,
                             _retry_after(response))
        return response.json() if response.content else None

    async def login(self, email: str, password: str) -> None:
        self._credentials = (email, password)
        body = await self._call("POST", _LOGIN, json={"email": email, "password": password})
        self._headers = {"Authorization": f"Bearer {body['token']}"}

    async def view_category(self, slug: str) -> list[int]:
        body = await self._call("GET", "/api/products", params={"category": slug})
        return [item["id"] for item in body["items"]]

    async def view_product(self, product_id: int) -> None:
        await self._call("GET", f"/api/products/{product_id}")

    async def search(self, text: str) -> list[int]:
        body = await self._call("GET", "/api/search", params={"q": text, "page_size": 10})
        return [item["product_id"] for item in body["items"]]

    async def recommendations(self, product_id: int) -> list[int]:
        body = await self._call("GET", "/api/recommendations",
                                params={"product_id": product_id, "limit": 5})
        return list(body["product_ids"])

    async def add_to_cart(self, product_id: int, quantity: int) -> None:
        await self._call("POST", "/api/cart/items",
                         json={"product_id": product_id, "quantity": quantity})

    async def view_cart(self) -> int:
        return len((await self._call("GET", "/api/cart"))["lines"])

    async def clear_cart(self) -> None:
        for line in (await self._call("GET", "/api/cart"))["lines"]:
            await self._call("DELETE", f"/api/cart/items/{line['product_id']}")

    async def checkout(self) -> CheckoutOutcome:
        # One key per checkout intent: when the answer is lost (connection dropped, 503, the
        # first attempt still running), the retry cannot order or charge twice.
        key = {"Idempotency-Key": str(uuid4())}
        for attempt in range(1, _CHECKOUT_TRIES + 1):
            try:
                body = await self._call("POST", "/api/checkout", headers=key)
            except StepFailed as exc:
                if exc.cause not in _RETRYABLE_CHECKOUT or attempt == _CHECKOUT_TRIES:
                    raise
                await asyncio.sleep(exc.retry_after_s if exc.retry_after_s is not None
                                    else jittered(0.5 * attempt))
                continue
            break
        return CheckoutOutcome(UUID(body["order_id"]), body["outcome"], Decimal(body["total"]))

    async def place_order(self) -> UUID:
        return UUID((await self._call("POST", "/api/orders"))["id"])

    async def pay_order(self, order_id: UUID) -> CheckoutOutcome:
        # No Idempotency-Key on purpose: the double-click journey shows that the order's
        # claim alone lets one payment through.
        body = await self._call("POST", "/api/checkout", json={"order_id": str(order_id)})
        return CheckoutOutcome(UUID(body["order_id"]), body["outcome"], Decimal(body["total"]))

    async def close(self) -> None:
        await self._http.aclose()
