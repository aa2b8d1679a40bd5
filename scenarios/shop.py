"""Shared pieces of the shop's locustfiles: the shopper base class, the gevent driver of the
journeys that ``ecomctl checkout simulate`` runs too (``ecomctl.journeys``).

``ShopUser`` (a ``FastHttpUser``) logs in with one of the demo accounts ``ecomctl seed``
wrote (``$ECOMCTL_SHOPPERS_FILE``, default ``$ECOMCTL_HOME/shoppers.json``), and sends a
fresh W3C ``traceparent`` with every request, so the gateway's server span of each load
request starts a trace of its own that belongs to it. When the process traces
(``otel_hook``: an OTLP endpoint or ``ECOMCTL_LOAD_SPAN_DIR``), that ``traceparent`` is the
request's own CLIENT span (service ``loadgen``) and the trace starts at the client; without
it, a random one (random trace and span id, sampled).

Journeys are the tasks, with the simulator's weights (``MIXED_WEIGHTS``; the double-click
``pay-order`` is off there too, ``journeys(**{"pay-order": 1})`` turns it on). What each
does, and when it retries or logs in again, is ``ecomctl/journeys/shopper.py``; this file
only carries it out. A 402 (payment declined) or a 409 (sold out) is a business outcome, not
a failed request; each is counted. A push-back the journeys wait out (429 or 503 with a short
``Retry-After``, sent again a few times at most) is not a failure either: that attempt is
recorded as ``<endpoint> (retried after 503)``, and the wait counts in the journey's time.

Each journey's latency (and each request's) goes to ``hdr_hook``; a journey that ends on a
failed step counts as failed. What shoppers pick from (product ids, category slugs, search
words) is discovered once per process with a few searches, so the files run against any
seeded gateway. Environment: ``ECOMCTL_LOAD_THINK_TIME=MIN,MAX`` seconds between journeys
(default ``0.5,2``), ``ECOMCTL_LOAD_PACING_S`` (constant arrival rate, see ``shapes.py``),
``ECOMCTL_LOAD_ACCOUNT_OFFSET`` (first demo account to use; workers take disjoint ranges).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import gevent  # type: ignore[import-untyped]  # no stubs in the lock (types-gevent)
import gevent.lock  # type: ignore[import-untyped]
import hdr_hook
import otel_hook
import shapes
from locust import FastHttpUser, TaskSet
from locust.exception import StopUser

from ecomctl.journeys import routes, steps
from ecomctl.journeys.protocol import (
    Request,
    Response,
    Step,
    StepFailed,
    Together,
    Wait,
    pushed_back,
)
from ecomctl.journeys.session import Session
from ecomctl.journeys.shopper import DEFAULT_WEIGHTS, JOURNEYS, CatalogueSample, JourneyOutcome
from ecomctl.load.profiles import ACCOUNT_OFFSET_ENV, SHOPPERS_FILE_ENV, THINK_TIME_ENV
from ecomctl.seed.credentials import Shopper, load_credentials
from ecomctl.seed.vocabulary import DEPARTMENTS

T = TypeVar("T")

MIXED_WEIGHTS: dict[str, int] = {name: w for name, w in DEFAULT_WEIGHTS.items() if w}
LOGIN_ATTEMPTS = 3
"""Demo accounts tried before a user gives up (one may be locked, or from another seed)."""
# Workers take accounts from disjoint ranges (one sixteenth of the file each), so two users
# of one run never share a cart.
ACCOUNT_RANGES = 16

log = logging.getLogger("ecomctl.shop")
_WORD = re.compile(r"[A-Za-z]{4,}")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # as FastHttpUser: no proxy


# -- what shoppers pick from ------------------------------------------------------------------


_catalogue: dict[str, CatalogueSample] = {}
_catalogue_lock = gevent.lock.Semaphore()


def catalogue(host: str) -> CatalogueSample:
    """Products, categories and search words of the shop at ``host`` (discovered once)."""
    with _catalogue_lock:
        if host not in _catalogue:
            _catalogue[host] = _discover(host)
    return _catalogue[host]


def _discover(host: str) -> CatalogueSample:
    """A search for the first product type of each department: around a thousand products
    (the requests are not part of the measured load)."""
    ids: set[int] = set()
    categories: set[str] = set()
    words: set[str] = set()
    for department in DEPARTMENTS:
        query = urllib.parse.urlencode({"q": department.types[0].name, "page_size": 100})
        try:
            with _DIRECT.open(f"{host.rstrip('/')}{routes.SEARCH.path}?{query}",
                              timeout=10) as response:
                page = json.load(response)
        except (OSError, ValueError) as exc:
            log.warning("catalogue discovery: %s", exc)
            continue
        for item in page.get("items", []):
            ids.add(int(item["product_id"]))
            categories.add(str(item["category"]))
            words.update(w.lower() for w in _WORD.findall(str(item["name"])))
    return CatalogueSample(tuple(sorted(ids)), tuple(sorted(categories)), tuple(sorted(words)))


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


class ShopUser(FastHttpUser):
    """A logged-in demo shopper; subclasses set ``tasks = journeys(...)``."""

    abstract = True
    think_time_s = _think_time()

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rng = random.Random()
        self.session = Session()
        self.account: Shopper | None = None
        self.journey_name: str | None = None
        self.lateness_ms = 0.0
        pacing = shapes.pacing_of(environment)
        self.schedule = shapes.ArrivalSchedule(pacing) if pacing else None
        if self.schedule is not None:
            hdr_hook.measure_from_intended_start()
        self.shop = CatalogueSample((), (), ())

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

    def login(self) -> None:
        """Log in as a demo account (another one when one cannot); none: the user stops. A
        session lost later is logged in again by the journeys' own steps."""
        runner = self.environment.runner
        worker_index = int(getattr(runner, "worker_index", 0) or 0)
        for _ in range(LOGIN_ATTEMPTS):
            shopper = next_shopper(worker_index)
            try:
                self.drive(self.session.login(shopper.email, shopper.password))
            except StepFailed:
                continue
            self.account = shopper
            return
        log.error("no demo account could log in (is %s from this shop's seed?)",
                  os.environ.get(SHOPPERS_FILE_ENV) or "the default shoppers.json")
        raise StopUser()

    # -- the driver -----------------------------------------------------------------------------

    def drive(self, journey: Step[T]) -> T:
        """Carry out a journey's instructions (time.sleep is gevent's here)."""
        answer: Any = None
        while True:
            try:
                instruction = journey.send(answer)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if isinstance(instruction, Request):
                answer = self.send(instruction)
            elif isinstance(instruction, Wait):
                time.sleep(instruction.seconds)
                answer = None
            elif isinstance(instruction, Together):
                sent = [gevent.spawn(self.send, r) for r in instruction.requests]
                gevent.joinall(sent, raise_error=True)
                answer = tuple(g.value for g in sent)
            else:
                raise TypeError(f"not an instruction: {instruction!r}")

    def send(self, request: Request) -> Response:
        """One request with trace context. Its business answers (402, 409) count as
        successes in Locust's statistics; so does an attempt the session will send again
        after a push-back (``pushed_back``, the journeys' one policy), under a name of its own
        (``/api/users/login (retried after 503)``), so that the endpoint's own figures are its
        final answers and no wait is in any request's time. Any other non-2xx is a failure,
        with its cause."""
        span = otel_hook.client_span(request.method, request.name, self.host or "",
                                     request.path)
        headers = {**(span.headers if span else {"traceparent": new_traceparent()}),
                   **request.headers}
        # Only a journey's first request starts late; the ones after it follow at once.
        context: dict[str, Any] = {"journey": self.journey_name,
                                   "lateness_ms": self.lateness_ms}
        if span is not None:
            context[otel_hook.SPAN_KEY] = span  # ended by otel_hook's request listener
        self.lateness_ms = 0.0
        try:
            with self.client.request(request.method, request.path, name=request.name,
                                     json=request.json, headers=headers, context=context,
                                     catch_response=True) as response:
                answer = _answer(response)
                if pushed_back(request, answer) is not None:
                    response.request_meta["name"] = routes.retried_name(request.name,
                                                                        answer.status)
                    response.success()
                elif answer.ok or answer.status in request.answers:
                    response.success()
                else:
                    response.failure(_cause(answer, response))
        finally:
            if span is not None:
                span.cancel()  # a no-op unless the user was stopped mid-request
        return answer

    def run_journey(self, name: str, body: Callable[[ShopUser], object]) -> None:
        """Time ``body(self)`` as the journey ``name``: failed if a step failed (a shop's
        refusal, such as sold out, is an outcome instead)."""
        started = time.perf_counter()
        intended = self.schedule.start(started) if self.schedule else started
        self.lateness_ms = (started - intended) * 1000
        self.journey_name, failed = name, False
        try:
            body(self)
        except StepFailed as exc:
            if exc.business:
                hdr_hook.record_outcome("checkout", exc.cause)
            failed = not exc.business
        finally:
            self.journey_name = None
        # (A journey cut short by the end of the test raises GreenletExit: not recorded.)
        hdr_hook.record_journey(name, (time.perf_counter() - intended) * 1_000_000, failed)

    def play(self, name: str) -> None:
        """One of the shared journeys, by name."""
        def body(user: ShopUser) -> None:
            outcome = JourneyOutcome()
            user.drive(JOURNEYS[name](user.session, user.rng, user.shop, outcome))
            if outcome.checkout is not None:
                hdr_hook.record_outcome("checkout", outcome.checkout)

        self.run_journey(name, body)

    def view_product(self, product_id: int) -> None:
        """A step for your own locustfiles' journeys (``run_journey``)."""
        self.drive(steps.view_product(self.session, product_id))


def _answer(response: Any) -> Response:
    status = int(response.status_code or 0)
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if status == 0:
        error = getattr(response, "error", None)
        return Response(0, body, error=StepFailed("http_unreachable", type(error).__name__))
    return Response(status, body, {"retry-after": str(response.headers.get("retry-after") or "")})


def _cause(answer: Response, response: Any) -> str:
    if answer.status == 0:
        error = getattr(response, "error", None)
        return f"network {type(error).__name__ if error else 'error'}"
    code = answer.error_code
    return f"{answer.status} {code}" if code else f"{answer.status}"


# -- journeys as Locust tasks -------------------------------------------------------------------


def _task(name: str) -> Callable[[ShopUser], None]:
    def task(user: ShopUser) -> None:
        user.play(name)

    task.__name__ = task.__qualname__ = name.replace("-", "_")
    return task


TASKS: dict[str, Callable[[ShopUser], None]] = {name: _task(name) for name in JOURNEYS}


def journeys(**weights: int) -> list[TaskSet | Callable[..., Any]]:
    """Locust ``tasks`` for the named journeys and weights, e.g. ``journeys(browse=1)``
    (each journey repeated ``weight`` times: what Locust makes of a ``{task: weight}``)."""
    unknown = set(weights) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown journeys {sorted(unknown)}: expected {sorted(TASKS)}")
    tasks: list[TaskSet | Callable[..., Any]] = [
        TASKS[name] for name, weight in weights.items() for _ in range(weight)
    ]
    return tasks
