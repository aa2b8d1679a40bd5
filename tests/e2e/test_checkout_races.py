"""One charge per cart over HTTP, as a hostile or unlucky client meets the shop (issue 17):
two `serve --role api` processes on one port, an events process (the reconciler), a payment
gateway process. Concurrent key-less checkouts of one cart, one key sent many times at once,
a process killed while it holds a payment, and lost gateway answers with retries."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ecomctl.adapters.payment_ledger import GatewayLedger
from ecomctl.adapters.postgres.database import Database
from ecomctl.config import Settings
from ecomctl.load.runner import free_port
from ecomctl.sim.invariants import PAID_STATUSES, check_invariants
from tests.e2e.served import Served, payment_gateway
from tests.shopdata import http_shopper

pytestmark = pytest.mark.long  # serve processes racing, one of them killed

# The shop's payment lease with its default gateway timeout (2 s, two attempts): how long a
# dead holder keeps a payment (services/order.PaymentLease.covering).
LEASE_S = 2 * 2.0 + 0.05 + 3.0


@dataclass
class Shop:
    url: str  # two API processes share this port
    lone_url: str  # a third API process of its own, for the one that gets killed
    gateway_url: str
    lone: Served
    db: Database


@pytest.fixture(scope="module")
def processes(seeded: object) -> Iterator[tuple[list[Served], str, int, int]]:
    started: list[Served] = []
    try:
        gateway = payment_gateway(started, "--latency-ms", "50")
        common = ("--workers", "1", "--payment-gateway-url", gateway)
        events = Served("--role", "events", *common)
        port, lone_port = free_port(), free_port()
        api = [Served("--role", "api", "--port", str(port), *common) for _ in range(2)]
        lone = Served("--role", "api", "--port", str(lone_port), *common)
        started.extend([events, *api, lone])
        events.wait_for("events role running")
        for process in (*api, lone):
            process.wait_for("listening on")
        yield started, gateway, port, lone_port
    finally:
        for process in started:
            if process.process.poll() is None:
                process.process.kill()
                process.process.wait(10)


@pytest.fixture
async def shop(processes: tuple[list[Served], str, int, int], settings: Settings
               ) -> AsyncIterator[Shop]:
    started, gateway, port, lone_port = processes
    db = await Database.connect(settings.database_url, max_size=2)
    try:
        yield Shop(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{lone_port}", gateway,
                   started[-1], db)
    finally:
        await db.close()


async def _product(db: Database, stock: int = 100) -> int:
    slug = f"race-{uuid.uuid4().hex[:10]}"
    async with db.transaction() as conn:
        category = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ($1, $1) RETURNING id", slug)
        product: int = await conn.fetchval(
            "INSERT INTO products (sku, name, category_id, price) VALUES ($1, $1, $2, 12.50) "
            "RETURNING id", slug, category)
        await conn.execute("INSERT INTO inventory (product_id, on_hand) VALUES ($1, $2)",
                           product, stock)
    return product


async def _shopper_with_a_cart(shop: Shop) -> tuple[dict[str, str], int]:
    """A new shopper (logged in over HTTP) whose cart holds one unit of a new product;
    the Authorization header and the user id."""
    product = await _product(shop.db)
    async with httpx.AsyncClient(base_url=shop.url, timeout=30) as http:
        auth, user_id = await http_shopper(http)
        added = await http.post("/api/cart/items", headers=auth,
                                json={"product_id": product, "quantity": 1})
        assert added.status_code == 201, added.text
    return auth, user_id


async def _at_once(url: str, count: int, headers: dict[str, str]) -> list[httpx.Response]:
    """``count`` checkouts at the same moment, each on a connection of its own (so the
    kernel spreads them over the API processes sharing the port)."""
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for _ in range(count)]
    try:
        return list(await asyncio.gather(*(c.post("/api/checkout", headers=headers)
                                           for c in clients)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def _orders_of(db: Database, user_id: int) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(r) for r in await conn.fetch(
            "SELECT id, status FROM orders WHERE user_id = $1", user_id)]


async def _gateway(shop: Shop) -> tuple[GatewayLedger, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=shop.gateway_url, timeout=10) as http:
        ledger = GatewayLedger.from_json((await http.get("/v1/ledger")).json())
        stats = (await http.get("/v1/stats")).json()
    return ledger, stats


def _captures(ledger: GatewayLedger, order_ids: set[str]) -> int:
    return sum(1 for c in ledger.captures if c["order_id"] in order_ids)


SETTLE_S = 30.0
"""How long the events process may take to ship what was just paid (its relay polls the
outbox, then the shipment consumer creates the shipment)."""


async def _assert_invariants(shop: Shop) -> None:
    """Every invariant holds once the events of the checkouts are consumed: a paid order's
    shipment comes a moment after the payment, so a broken one is read again until then."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        ledger, _ = await _gateway(shop)
        results = await check_invariants(shop.db, ledger)
        broken = [r for r in results if not r.ok]
        if (results and not broken) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert results and not broken, broken


@pytest.mark.parametrize("requests", [8, 50])
async def test_concurrent_keyless_checkouts_of_one_cart_make_one_order_and_one_capture(
    shop: Shop, requests: int, record_property: Callable[[str, object], None]
) -> None:
    auth, user_id = await _shopper_with_a_cart(shop)

    answers = await _at_once(shop.url, requests, auth)

    paid = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 409]
    assert len(paid) + len(refused) == requests, [a.text for a in answers]
    # The winner's answer (the first, or to a request that read the cart before it was
    # emptied), or "someone is paying it" with when to ask again, or the emptied cart.
    assert paid and {a.json()["order_id"] for a in paid} == {paid[0].json()["order_id"]}
    assert all(a.json()["outcome"] == "paid" for a in paid)
    causes = Counter(a.json()["error"] for a in refused)
    assert set(causes) <= {"checkout_in_progress", "empty_cart"}, causes
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused
               if a.json()["error"] == "checkout_in_progress")
    orders = await _orders_of(shop.db, user_id)
    assert [o["status"] for o in orders] == ["paid"], orders
    ledger, stats = await _gateway(shop)
    order_id = str(orders[0]["id"])
    assert _captures(ledger, {order_id}) == 1
    assert f"order-{order_id}" not in stats["keys_charged_concurrently"]
    await _assert_invariants(shop)
    record_property("answers", dict(Counter(a.status_code for a in answers)))
    record_property("refusals", dict(causes))


async def test_concurrent_checkouts_with_one_key_still_replay_the_first_answer(
    shop: Shop
) -> None:
    auth, user_id = await _shopper_with_a_cart(shop)
    keyed = {**auth, "Idempotency-Key": str(uuid.uuid4())}

    answers = await _at_once(shop.url, 8, keyed)

    assert {a.status_code for a in answers} <= {200, 409}, [a.text for a in answers]
    bodies = [a.json() for a in answers if a.status_code == 200]
    assert bodies and all(b == bodies[0] for b in bodies)  # every 200 is the one answer
    assert all(a.json()["error"] == "idempotency_conflict" for a in answers
               if a.status_code == 409)
    async with httpx.AsyncClient(base_url=shop.url, timeout=30) as http:
        replay = await http.post("/api/checkout", headers=keyed)
    assert replay.status_code == 200 and replay.json() == bodies[0]
    assert replay.headers["Idempotent-Replayed"] == "true"
    orders = await _orders_of(shop.db, user_id)
    assert [o["status"] for o in orders] == ["paid"]
    ledger, _ = await _gateway(shop)
    assert _captures(ledger, {str(orders[0]["id"])}) == 1


async def test_a_payment_whose_process_was_killed_is_resumed_once_its_lease_lapses(
    shop: Shop, record_property: Callable[[str, object], None]
) -> None:
    auth, user_id = await _shopper_with_a_cart(shop)
    async with httpx.AsyncClient(base_url=shop.gateway_url) as http:
        slow = await http.patch("/v1/config", json={"latency_mean_ms": 1500,
                                                    "latency_jitter_ms": 0})
        assert slow.status_code == 200, slow.text
    try:
        doomed = asyncio.create_task(_at_once(shop.lone_url, 1, auth))
        deadline = time.monotonic() + 10
        while not await _orders_of(shop.db, user_id):  # claimed: the charge is in flight
            assert time.monotonic() < deadline, "the checkout never placed its order"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        os.kill(shop.lone.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        with pytest.raises(httpx.HTTPError):
            await doomed
    finally:
        async with httpx.AsyncClient(base_url=shop.gateway_url) as http:
            await http.patch("/v1/config", json={"latency_mean_ms": 50,
                                                 "latency_jitter_ms": 20})

    # The shopper tries again through the other processes, waiting as each answer asks.
    answers = []
    async with httpx.AsyncClient(base_url=shop.url, timeout=30) as http:
        while time.monotonic() - killed_at < 60:
            answer = await http.post("/api/checkout", headers=auth)
            answers.append(answer)
            if answer.status_code != 409 or answer.json()["error"] != "checkout_in_progress":
                break
            await asyncio.sleep(int(answer.headers["Retry-After"]))
    resumed_after_s = time.monotonic() - killed_at

    assert answers[0].status_code == 409, answers[0].text  # the dead process's claim holds
    # The retry resumed the payment (200 paid), or the reconciler did just before it, and
    # emptied the paid cart (409 empty_cart): either way as soon as the lease lapsed.
    final = (answers[-1].status_code, answers[-1].json().get("outcome")
             or answers[-1].json().get("error"))
    assert final in {(200, "paid"), (409, "empty_cart")}, answers[-1].text
    assert resumed_after_s < LEASE_S + 3, resumed_after_s  # the lease, not the 60 s of old
    orders = await _orders_of(shop.db, user_id)
    assert [o["status"] for o in orders] == ["paid"]
    order_id = str(orders[0]["id"])
    ledger, stats = await _gateway(shop)
    assert _captures(ledger, {order_id}) == 1
    assert f"order-{order_id}" not in stats["keys_charged_concurrently"]
    record_property("resumed_after_s", round(resumed_after_s, 1))
    record_property("tries", len(answers))


async def test_lost_answers_and_retries_never_leave_a_capture_on_a_cancelled_order(
    shop: Shop, record_property: Callable[[str, object], None]
) -> None:
    """payment-timeout-after-capture, and timeouts that captured nothing: the answer is lost
    (for the retries with the key too), the shop answers 202; shoppers retry the cart at
    once and keep retrying as told, while the reconciler works on the same orders. (Before
    the payment lease, a retry charged an order the reconciler was cancelling.)"""
    shoppers = [await _shopper_with_a_cart(shop) for _ in range(8)]
    async with httpx.AsyncClient(base_url=shop.gateway_url) as http:
        lost = await http.patch("/v1/config", json={
            "timeout_rate": 0.7, "timeout_capture_rate": 0.5, "replay_timeout_rate": 1.0,
            "timeout_delay_s": 2.5})
        assert lost.status_code == 200, lost.text

    async def shopper(auth: dict[str, str]) -> list[int]:
        statuses = []
        async with httpx.AsyncClient(base_url=shop.url, timeout=60) as http:
            for _ in range(8):
                answer = await http.post("/api/checkout", headers=auth)
                statuses.append(answer.status_code)
                if answer.status_code == 200 or (
                        answer.status_code == 409
                        and answer.json()["error"] == "empty_cart"):
                    break
                await asyncio.sleep(int(answer.headers.get("Retry-After", "0")))
        return statuses

    try:
        tries = await asyncio.gather(*(shopper(auth) for auth, _ in shoppers))
    finally:
        async with httpx.AsyncClient(base_url=shop.gateway_url) as http:
            await http.patch("/v1/config", json={
                "timeout_rate": 0.0, "timeout_capture_rate": 0.0, "replay_timeout_rate": 0.0,
                "timeout_delay_s": 30.0})

    # The reconciler settles what is left once the quiet periods and leases lapse.
    user_ids = [user_id for _, user_id in shoppers]
    deadline = time.monotonic() + 60
    while True:
        async with shop.db.connection() as conn:
            open_orders = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE user_id = ANY($1::bigint[]) AND status IN "
                "('payment_pending', 'payment_unknown')", user_ids)
        if not open_orders or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert open_orders == 0
    async with shop.db.connection() as conn:
        orders = await conn.fetch(
            "SELECT o.id, o.status, o.total, "
            "count(p.*) FILTER (WHERE p.status = 'captured') AS captured, "
            "count(p.*) FILTER (WHERE p.status = 'refunded') AS refunded "
            "FROM orders o LEFT JOIN payments p ON p.order_id = o.id "
            "WHERE o.user_id = ANY($1::bigint[]) GROUP BY o.id", user_ids)
    ledger, _ = await _gateway(shop)
    ids = {str(o["id"]) for o in orders}
    net = {str(k): v for k, v in ledger.net_by_order().items() if str(k) in ids}
    for order in orders:
        kept = net.get(str(order["id"]), Decimal("0"))
        if order["status"] in PAID_STATUSES:  # the carrier may have shipped it already
            assert (order["captured"], order["refunded"], kept) == (1, 0, order["total"])
        else:
            assert order["status"] == "cancelled" and kept == 0, dict(order)
            assert order["captured"] == order["refunded"], dict(order)
    await _assert_invariants(shop)
    record_property("orders", dict(Counter(
        "paid" if o["status"] in PAID_STATUSES else o["status"] for o in orders)))
    record_property("captures", _captures(ledger, ids))
    record_property("refunds", sum(1 for r in ledger.refunds if r["order_id"] in ids))
    record_property("tries", tries)
