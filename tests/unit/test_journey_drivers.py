"""One journey definition, two drivers: for the same seed, the simulator's asyncio client and
the Locust shopper (gevent) send the same requests in the same order, and report the same
journeys, failures and checkout outcomes. The Locust half runs in a subprocess: importing
locust monkey-patches the process with gevent, which this asyncio test process must not be."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from ecomctl.journeys import routes
from ecomctl.journeys.protocol import Request, Response, StepFailed
from ecomctl.journeys.shopper import JourneyOutcome
from ecomctl.sim.client import AsyncShopper
from ecomctl.sim.journeys import JOURNEYS
from tests.unit.journey_fakes import CATALOGUE, FakeShop, journey_names, tally

ROOT = Path(__file__).resolve().parents[2]
SEED = 11

LOCUST_HALF = """
import json, random, sys

from locust.env import Environment

import hdr_hook
import shop
from tests.unit.journey_fakes import CATALOGUE, FakeShop, journey_names


class Answer:
    def __init__(self, status, body, headers, method, name, names):
        self.status_code, self.headers, self.error = status, headers, None
        self.content = json.dumps(body).encode() if body is not None else b""
        self.marked = None
        self.request_meta = {"request_type": method, "name": name}
        self.names = names

    def json(self):
        return json.loads(self.content)

    def success(self):
        self.marked = "success"

    def failure(self, cause):
        self.marked = cause

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # The name Locust records it under, as the scenario left it.
        self.names.append(self.request_meta["request_type"] + " " + self.request_meta["name"])
        return False


class Client:
    def __init__(self, fake):
        self.fake, self.names = fake, []

    def request(self, method, path, name, json, headers, context, catch_response):
        return Answer(*self.fake.answer(method, path, headers, json), method, name,
                      self.names)


class Shopper(shop.ShopUser):
    host = "http://shop.test"


seed = int(sys.argv[1])
user = Shopper(Environment(user_classes=[Shopper]))
user.client = Client(FakeShop())
user.shop, user.rng = CATALOGUE, random.Random(seed)
user.drive(user.session.login("ann@example.test", "pw"))
for name in journey_names(seed):
    user.play(name)
document = hdr_hook.RECORDER.document(final=True)
print(json.dumps({
    "sent": user.client.fake.sent,
    "names": sorted(set(user.client.names)),
    "journeys": {k: [j["count"], j["failures"]] for k, j in document["journeys"].items()},
    "outcomes": document["outcomes"].get("checkout", {}),
}))
"""


class FakeShopper(AsyncShopper):
    def __init__(self, shop: FakeShop) -> None:
        super().__init__()
        self.shop = shop

    async def send(self, request: Request) -> Response:
        return Response(*self.shop.answer(request.method, request.path, dict(request.headers),
                                          request.json))


async def _asyncio_half(seed: int) -> tuple[FakeShop, dict[str, Any]]:
    """The simulator's way: its journeys table, failures classified as a load run does."""
    shop = FakeShop()
    client, rng = FakeShopper(shop), random.Random(seed)
    await client.login("ann@example.test", "pw")
    results: list[tuple[str, str | None, bool]] = []
    for name in journey_names(seed):
        outcome = JourneyOutcome()
        try:
            await JOURNEYS[name](client, rng, CATALOGUE, outcome)
        except StepFailed as exc:
            results.append((name, exc.cause if exc.business else None, not exc.business))
            continue
        results.append((name, outcome.checkout, False))
    return shop, tally(results)


def _locust_half(seed: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "scenarios"), str(ROOT)])}
    for name in ("ECOMCTL_LOAD_SPAN_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT", "ECOMCTL_LOAD_HDR_DIR"):
        env.pop(name, None)  # no tracing, no files: the fake answers everything
    done = subprocess.run([sys.executable, "-c", LOCUST_HALF, str(seed)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_both_drivers_send_the_same_requests_and_report_the_same_journeys() -> None:
    shop, reported = await _asyncio_half(SEED)
    locust = _locust_half(SEED)

    assert json.dumps(locust["sent"], sort_keys=True) == shop.transcript()
    assert {k: list(v) for k, v in reported["journeys"].items()} == locust["journeys"]
    assert reported["outcomes"] == locust["outcomes"]
    # Every request is named as the route table names it (the load result's endpoints), and
    # the checkout's pushed-back attempt (503, Retry-After) apart from its final answer.
    named = {f"{r.method} {r.name}" for r in routes.ROUTES}
    retried = f"POST {routes.retried_name(routes.CHECKOUT.name, 503)}"
    assert set(locust["names"]) <= named | {retried} and retried in locust["names"]
    # The fake's twists were all met on the way: a lost session, a retried checkout (same
    # key), a sold-out checkout and a double-click payment.
    sent = locust["sent"]
    assert sum(r["path"] == "/api/users/login" for r in sent) >= 2
    keys = [r["key"] for r in sent if r["key"]]
    assert len(keys) > len(set(keys))
    assert {"paid", "out_of_stock"} <= set(reported["outcomes"])
    assert reported["journeys"]["pay-order"][0] > 0
    assert sum(failed for _, failed in locust["journeys"].values()) > 0  # product 13


async def test_the_journeys_follow_the_seed() -> None:
    first, _ = await _asyncio_half(SEED)
    again, _ = await _asyncio_half(SEED)
    other, _ = await _asyncio_half(SEED + 1)
    assert first.transcript() == again.transcript() != other.transcript()
