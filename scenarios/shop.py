"""Shared pieces of the shop's locustfiles: the shopper base class and the journeys.

``ShopUser`` (a ``FastHttpUser``) logs in with one of the demo accounts ``ecomctl seed``
wrote (``$ECOMCTL_SHOPPERS_FILE``, default ``$ECOMCTL_HOME/shoppers.json``), and sends a
fresh W3C ``traceparent`` with every request, so the gateway's server span of each load
request starts a trace of its own that belongs to it. When the process traces
(``otel_hook``: an OTLP endpoint or ``ECOMCTL_LOAD_SPAN_DIR``), that ``traceparent`` is the
request's own CLIENT span (service ``loadgen``) and the trace starts at the client; without
it, a random one (random trace and span id, sampled).

Journeys are the tasks, weighted like the OpenTelemetry Demo's load generator (browse 10 +
index 1, recommendations 3, view cart 3 + add to cart 2, checkout 1 + multi-item checkout 1;
plus search, which that demo lacks), the same weights as ``ecomctl checkout simulate``:

- browse: a category page, then one to three of its products;
- search: a full-text query, then the first hit;
- recommendations: a product, then what was bought with it;
- cart: add a product, view the cart (emptied again past eight lines);
- checkout: add one to three products, ``POST /api/checkout``. A 402 (payment declined or
  failed) or a 409 (out of stock) is a business outcome, not a failed request; each is counted.

Each journey's latency (and each request's) goes to ``hdr_hook``; a failed request ends its
journey, which then counts as failed. What shoppers pick from (product ids, category slugs,
search words) is discovered once per process with a few searches, so the files run against
any seeded gateway. Environment: ``ECOMCTL_LOAD_THINK_TIME=MIN,MAX`` seconds between journeys
(default ``0.5,2``), ``ECOMCTL_LOAD_PACING_S`` (constant arrival rate, see ``shapes.py``),
``ECOMCTL_LOAD_ACCOUNT_OFFSET`` (first demo account to use; workers take disjoint ranges).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import random
import re
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gevent.lock
import hdr_hook
import otel_hook
import shapes
from locust import FastHttpUser, TaskSet
from locust.exception import StopUser

from ecomctl.load.profiles import ACCOUNT_OFFSET_ENV, SHOPPERS_FILE_ENV, THINK_TIME_ENV
from ecomctl.seed.credentials import Shopper, load_credentials
from ecomctl.seed.vocabulary import DEPARTMENTS
from ecomctl.sim.journeys import DEFAULT_WEIGHTS, MAX_BROWSING_CART_LINES

# The same journey mix and cart rule as `ecomctl checkout simulate` (one definition; that
# module imports no asyncio client, so it is safe under gevent). Journeys off by default
# there (the simulator's double-click `pay-order`) are not part of the mix.
MIXED_WEIGHTS: dict[str, int] = {name: w for name, w in DEFAULT_WEIGHTS.items() if w}
LOGIN_ATTEMPTS = 3
LOGIN_PATH = "/api/users/login"
# A login refused with a short Retry-After (rate limit, full hash queue) is tried again after
# it, this many times; a long one (an account locked for minutes) is not waited for.
LOGIN_PUSH_BACK_RETRIES = 10
MAX_RETRY_AFTER_S = 10
# A checkout refused while another session of the account pays the same cart is asked again.
CHECKOUT_IN_PROGRESS_RETRIES = 3
# Workers take accounts from disjoint ranges (one sixteenth of the file each), so two users
# of one run never share a cart.
ACCOUNT_RANGES = 16

log = logging.getLogger("ecomctl.shop")
_WORD = re.compile(r"[A-Za-z]{4,}")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as FastHttpUser: no proxy


# -- what shoppers pick from ------------------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    product_ids: tuple[int, ...]
    categories: tuple[str, ...]
    words: tuple[str, ...]


_catalogue: dict[str, Catalogue] = {}
_catalogue_lock = gevent.lock.Semaphore()


def catalogue(host: str) -> Catalogue:
    """Products, categories and search words of the shop at ``host`` (discovered once)."""
    with _catalogue_lock:
        if host not in _catalogue:
            _catalogue[host] = _discover(host)
    return _catalogue[host]


def _discover(host: str) -> Catalogue:
    """A search for the first product type of each department: around a thousand products
    (the requests are not part of the measured load)."""
    ids: set[int] = set()
    categories: set[str] = set()
    words: set[str] = set()
    for department in DEPARTMENTS:
        query = urllib.parse.urlencode({"q": department.types[0].name, "page_size": 100})
        try:
            with _DIRECT.open(f"{host.rstrip('/')}/api/search?{query}",
                              timeout=10) as response:
                page = json.load(response)
        except (OSError, ValueError) as exc:
            log.warning("catalogue discovery: %s", exc)
            continue
        for item in page.get("items", []):
            ids.add(int(item["product_id"]))
            categories.add(str(item["category"]))
            words.update(w.lower() for w in _WORD.findall(str(item["name"])))
    return Catalogue(tuple(sorted(ids)), tuple(sorted(categories)), tuple(sorted(words)))


# -- demo accounts ------------------------------------------------------------------------------


_shoppers: list[tuple[Shopper, ...]] = []
_next_account = itertools.count()


def next_shopper(worker_index: int) -> Shopper:
    if not _shoppers:
        _shoppers.append(load_credentials(os.environ.get(SHOPPERS_FILE_ENV) or None).shoppers)
    shoppers = _shoppers[0]
    if not shoppers:
        raise StopUser("the credentials file lists no shoppers")
    offset = int(os.environ.get(ACCOUNT_OFFSET_ENV) or 0)
    stride = max(1, len(shoppers) // ACCOUNT_RANGES)
    return shoppers[(offset + worker_index * stride + next(_next_account)) % len(shoppers)]


def new_traceparent() -> str:
    """A W3C trace context for one request: version 00, random ids, sampled."""
    trace_id = random.getrandbits(128) or 1
    span_id = random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def _think_time() -> tuple[float, float]:
    raw = os.environ.get(THINK_TIME_ENV, "").strip()
    if not raw:
        return 0.5, 2.0
    low, _, high = raw.partition(",")
    return float(low), float(high or low)


# -- the shopper ------------------------------------------------------------------------------


class _Abort(Exception):
    """A request of the journey failed: the rest of the journey cannot go on."""

    def __init__(self, retry_after_s: int | None = None) -> None:
        super().__init__()
        self.retry_after_s = retry_after_s
        """A short wait the server asked for (429/503 with Retry-After), if any."""


class ShopUser(FastHttpUser):
    """A logged-in demo shopper; subclasses set ``tasks = journeys(...)``."""

    abstract = True
    think_time_s = _think_time()

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rng = random.Random()
        self.token: str | None = None
        self.account: Shopper | None = None
        self.journey_name: str | None = None
        self.journey_failed = False
        self.lateness_ms = 0.0
        self.retry_after_s: int | None = None
        """The last response's Retry-After, if short enough to wait for."""
        pacing = shapes.pacing_of(environment)
        self.schedule = shapes.ArrivalSchedule(pacing) if pacing else None
        if self.schedule is not None:
            hdr_hook.measure_from_intended_start()
        self.shop = Catalogue((), (), ())

    def wait_time(self) -> float:
        if self.schedule is not None:
            return self.schedule.delay(time.perf_counter())
        return self.rng.uniform(*self.think_time_s)

    def on_start(self) -> None:
        self.shop = catalogue(self.host or "")
        if not self.shop.product_ids:
            log.error("no products found through %s/api/search: is the shop seeded?", self.host)
            raise StopUser()
        self.login()

    def login(self, *, again: bool = False) -> None:
        """Log in as this user's account (a new one the first time, or when it fails).
        ``again`` (the session was lost mid-journey): failing ends the journey, not the user,
        whose next request tries again."""
        failed_before = self.journey_failed  # a pushed-back attempt is not the journey's
        runner = self.environment.runner
        worker_index = int(getattr(runner, "worker_index", 0) or 0)
        for _ in range(LOGIN_ATTEMPTS):
            shopper = self.account or next_shopper(worker_index)
            pushed_back = 0
            while True:
                try:
                    _, body = self.call("POST", LOGIN_PATH, LOGIN_PATH, body={
                        "email": shopper.email, "password": shopper.password,
                    })
                except _Abort as refused:
                    if refused.retry_after_s is not None and pushed_back < LOGIN_PUSH_BACK_RETRIES:
                        pushed_back += 1
                        time.sleep(refused.retry_after_s + self.rng.random())  # gevent-patched
                        continue
                    self.account = None
                    break
                self.token, self.account = str(body["token"]), shopper
                self.journey_failed = failed_before
                return
        if again:
            self.journey_failed = True
            raise _Abort()
        log.error("no demo account could log in (is %s from this shop's seed?)",
                  os.environ.get(SHOPPERS_FILE_ENV) or "the default shoppers.json")
        raise StopUser()

    # -- requests -------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: Mapping[str, Any] | None = None,
        outcomes: tuple[int, ...] = (),
        relogin: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request with trace context and the session; returns (status, JSON body).
        Statuses in ``outcomes`` are business results, not failures; any other non-2xx
        fails the request (with its cause) and aborts the journey. A 401 on a request made
        with a session (expired, or lost by its store) logs in again and retries the
        request once, as a real client does; the 401 still counts as a failed request."""
        span = otel_hook.client_span(method, name, self.host or "", path)
        headers = {"traceparent": span.traceparent if span else new_traceparent(),
                   **(extra_headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        # Only a journey's first request starts late; the ones after it follow at once.
        context: dict[str, Any] = {"journey": self.journey_name,
                                   "lateness_ms": self.lateness_ms}
        if span is not None:
            context[otel_hook.SPAN_KEY] = span  # ended by otel_hook's request listener
        self.lateness_ms = 0.0
        try:
            with self.client.request(method, path, name=name, json=body, headers=headers,
                                     context=context, catch_response=True) as response:
                status = response.status_code or 0
                payload = _json(response)
                retry_after = str(response.headers.get("retry-after") or "")
                self.retry_after_s = (int(retry_after) if retry_after.isdigit()
                                      and int(retry_after) <= MAX_RETRY_AFTER_S else None)
                if 200 <= status < 300 or status in outcomes:
                    response.success()
                    return status, payload
                response.failure(_cause(status, payload, response))
        finally:
            if span is not None:
                span.cancel()  # a no-op unless the user was stopped mid-request
        if status == 401 and relogin and self.token and path != LOGIN_PATH:
            self.login(again=True)
            return self.call(method, path, name, body=body, outcomes=outcomes, relogin=False,
                             extra_headers=extra_headers)
        self.journey_failed = True
        raise _Abort(self.retry_after_s if status in (429, 503) else None)

    def run_journey(self, name: str, steps: Callable[[ShopUser], None]) -> None:
        started = time.perf_counter()
        intended = self.schedule.start(started) if self.schedule else started
        self.lateness_ms = (started - intended) * 1000
        self.journey_name, self.journey_failed = name, False
        try:
            steps(self)
        except _Abort:
            pass
        finally:
            self.journey_name = None
        # (A journey cut short by the end of the test raises GreenletExit: not recorded.)
        hdr_hook.record_journey(name, (time.perf_counter() - intended) * 1_000_000,
                                self.journey_failed)

    # -- steps shared by journeys ---------------------------------------------------------------

    def view_product(self, product_id: int) -> None:
        self.call("GET", f"/api/products/{product_id}", "/api/products/{id}")

    def add_to_cart(self, product_id: int, quantity: int) -> None:
        self.call("POST", "/api/cart/items", "/api/cart/items",
                  body={"product_id": product_id, "quantity": quantity})

    def view_cart(self) -> list[int]:
        _, cart = self.call("GET", "/api/cart", "/api/cart")
        return [int(line["product_id"]) for line in cart.get("lines", [])]

    def clear_cart(self, product_ids: list[int]) -> None:
        for product_id in product_ids:
            self.call("DELETE", f"/api/cart/items/{product_id}", "/api/cart/items/{id}")


def _json(response: Any) -> Any:
    try:
        return response.json() if response.content else {}
    except ValueError:
        return {}


def _cause(status: int, payload: Any, response: Any) -> str:
    if status == 0:
        error = getattr(response, "error", None)
        return f"network {type(error).__name__ if error else 'error'}"
    code = payload.get("error") if isinstance(payload, dict) else None
    return f"{status} {code}" if code else f"{status}"


# -- journeys -----------------------------------------------------------------------------------

Journey = Callable[[ShopUser], None]


def _journey(name: str) -> Callable[[Journey], Journey]:
    def wrap(steps: Journey) -> Journey:
        @functools.wraps(steps)
        def run(user: ShopUser) -> None:
            user.run_journey(name, steps)

        return run

    return wrap


@_journey("browse")
def browse(user: ShopUser) -> None:
    category = user.rng.choice(user.shop.categories)
    query = urllib.parse.urlencode({"category": category, "page_size": 20})
    _, page = user.call("GET", f"/api/products?{query}", "/api/products?category")
    listed = [int(item["id"]) for item in page.get("items", [])]
    for product_id in user.rng.sample(listed, min(len(listed), user.rng.randint(1, 3))):
        user.view_product(product_id)


@_journey("search")
def search(user: ShopUser) -> None:
    query = urllib.parse.urlencode({"q": user.rng.choice(user.shop.words)})
    _, page = user.call("GET", f"/api/search?{query}", "/api/search")
    hits = page.get("items", [])
    if hits:
        user.view_product(int(hits[0]["product_id"]))


@_journey("recommendations")
def recommendations(user: ShopUser) -> None:
    product_id = user.rng.choice(user.shop.product_ids)
    user.view_product(product_id)
    user.call("GET", f"/api/recommendations?product_id={product_id}", "/api/recommendations")


@_journey("cart")
def cart(user: ShopUser) -> None:
    user.add_to_cart(user.rng.choice(user.shop.product_ids), user.rng.randint(1, 2))
    lines = user.view_cart()
    if len(lines) > MAX_BROWSING_CART_LINES:
        user.clear_cart(lines)  # a shopper who only browses eventually empties the basket


@_journey("checkout")
def checkout(user: ShopUser) -> None:
    for product_id in user.rng.sample(user.shop.product_ids, user.rng.randint(1, 3)):
        user.add_to_cart(product_id, user.rng.randint(1, 2))
    # One Idempotency-Key per checkout intent (kept by the retry after a re-login): a
    # repeated request cannot order or charge twice. 202: the gateway's answer was lost.
    key = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(CHECKOUT_IN_PROGRESS_RETRIES):
        status, result = user.call("POST", "/api/checkout", "/api/checkout",
                                   outcomes=(402, 409), extra_headers=key)
        code = result.get("error") if isinstance(result, dict) else None
        if code != "checkout_in_progress" or user.retry_after_s is None:
            break
        # Another shopper session of this account is paying the cart: wait as asked, then
        # ask again (its answer, or the empty cart once it is paid).
        time.sleep(user.retry_after_s + user.rng.random())  # gevent-patched
    if status == 409:
        # Sold out meanwhile (409 out_of_stock): the shop answered correctly, so it is a
        # business outcome like a declined card, not a failed request; the shopper gives up
        # on what cannot be bought.
        code = result.get("error") if isinstance(result, dict) else None
        hdr_hook.record_outcome("checkout", str(code or status))
        user.clear_cart(user.view_cart())
        return
    outcome = result.get("outcome") if isinstance(result, dict) else None
    hdr_hook.record_outcome("checkout", str(outcome or ("paid" if status == 200 else status)))


JOURNEYS: dict[str, Journey] = {
    "browse": browse,
    "search": search,
    "recommendations": recommendations,
    "cart": cart,
    "checkout": checkout,
}


def journeys(**weights: int) -> list[TaskSet | Callable[..., Any]]:
    """Locust ``tasks`` for the named journeys and weights, e.g. ``journeys(browse=1)``
    (each journey repeated ``weight`` times: what Locust makes of a ``{task: weight}``)."""
    unknown = set(weights) - set(JOURNEYS)
    if unknown:
        raise ValueError(f"unknown journeys {sorted(unknown)}: expected {sorted(JOURNEYS)}")
    tasks: list[TaskSet | Callable[..., Any]] = [
        JOURNEYS[name] for name, weight in weights.items() for _ in range(weight)
    ]
    return tasks
