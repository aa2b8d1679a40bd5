"""A fake gateway that answers the shared journeys deterministically (its answers depend only
on the requests it has seen), and a recorder of what each driver sent. Used by
test_journey_drivers.py in the test process (asyncio driver) and in a subprocess (Locust's
gevent driver), so it imports neither asyncio nor locust."""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from ecomctl.journeys.shopper import CatalogueSample

CATALOGUE = CatalogueSample(product_ids=tuple(range(1, 21)), categories=("desks", "lamps"),
                            search_words=("lamp", "oak", "none"))
WEIGHTS = {"browse": 3, "search": 2, "recommendations": 2, "cart": 4, "checkout": 3,
           "pay-order": 2}
MISSING_PRODUCT = 13  # its page answers 404: the journey that views it fails


def journey_names(seed: int, count: int = 60) -> list[str]:
    rng = random.Random(seed)
    names = list(WEIGHTS)
    return rng.choices(names, weights=[WEIGHTS[n] for n in names], k=count)


class FakeShop:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.cart: list[int] = []
        self.checkouts = 0
        self.logins = 0
        self.session_lost = False
        self.payments: dict[str, int] = {}
        self._keys: dict[str, str] = {}

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: Any) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers) for one request."""
        key = headers.get("Idempotency-Key")
        self.sent.append({"method": method, "path": path, "json": body,
                          "auth": headers.get("Authorization"),
                          "key": self._keys.setdefault(key, f"k{len(self._keys)}")
                          if key else None})
        route, _, _ = path.partition("?")
        if route == "/api/users/login":
            self.logins += 1
            return 200, {"token": f"t{self.logins}"}, {}
        if len(self.sent) > 24 and method == "GET" and not self.session_lost:
            self.session_lost = True  # once, on the way: the shopper logs in again
            return 401, {"error": "authentication_failed"}, {}
        if route == "/api/products":
            return 200, {"items": [{"id": i} for i in (1, 2, MISSING_PRODUCT, 4, 5)]}, {}
        if route.startswith("/api/products/"):
            if route.endswith(f"/{MISSING_PRODUCT}"):
                return 404, {"error": "not_found"}, {}
            return 200, {}, {}
        if route == "/api/search":
            return 200, {"items": [] if "none" in path else [{"product_id": 7}]}, {}
        if route == "/api/recommendations":
            return 200, {"product_ids": [1, 2]}, {}
        if route == "/api/cart":
            return 200, {"lines": [{"product_id": p} for p in self.cart]}, {}
        if route == "/api/cart/items":
            if body["product_id"] not in self.cart:
                self.cart.append(body["product_id"])
            return 201, {}, {}
        if route.startswith("/api/cart/items/"):
            self.cart.remove(int(route.rsplit("/", 1)[1]))
            return 200, {}, {}
        if route == "/api/orders":
            self.cart.clear()
            return 201, {"id": str(uuid.UUID(int=len(self.sent)))}, {}
        if route == "/api/checkout":
            return self._checkout(body)
        return 404, {"error": "not_found"}, {}

    def _checkout(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if body and body.get("order_id"):  # a double-click: the first pays, the second waits
            seen = self.payments[body["order_id"]] = self.payments.get(body["order_id"], 0) + 1
            if seen > 1:
                return 409, {"error": "checkout_in_progress"}, {}
            return 200, _paid(body["order_id"], "paid"), {}
        self.checkouts += 1
        turn = self.checkouts % 4
        if turn == 1:  # refused for now: the journey asks again with the same key
            return 503, {"error": "overloaded"}, {"retry-after": "0"}
        if turn == 3:
            return 409, {"error": "out_of_stock"}, {}
        self.cart.clear()
        return (402, _paid(None, "payment_declined"), {}) if self.checkouts % 8 == 0 else (
            200, _paid(None, "paid"), {})

    def transcript(self) -> str:
        return json.dumps(self.sent, sort_keys=True)


def _paid(order_id: str | None, outcome: str) -> dict[str, Any]:
    return {"order_id": order_id or str(uuid.UUID(int=1)), "outcome": outcome,
            "total": "12.50"}


def tally(results: list[tuple[str, str | None, bool]]) -> dict[str, Any]:
    """What both sides report: per journey (count, failed), and the checkout outcomes."""
    journeys: dict[str, list[int]] = {}
    outcomes: dict[str, int] = {}
    for name, outcome, failed in results:
        counts = journeys.setdefault(name, [0, 0])
        counts[0] += 1
        counts[1] += failed
        if outcome is not None:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return {"journeys": journeys, "outcomes": outcomes}

