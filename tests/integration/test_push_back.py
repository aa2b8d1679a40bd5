"""Push-back over HTTP on the real stack: per-address rate limits, the per-(account, address)
login throttle, the bounded password-hash queue, the database pool's acquire timeout and the
gateway's concurrency limit.

The flood and overload tests run a real ``ecomctl serve --role api`` process (the real
argon2 parameters, its own core) configured through the environment as a deployment would
be; clients bind distinct loopback addresses (127.x.y.z), so each test's buckets are its own
and nobody else's (other runs log in from 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest
import redis.asyncio as redis

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.rate_limit import bucket_key
from ecomctl.bootstrap import ShopStack, StackOptions, running_stack
from ecomctl.config import PushBack, Settings
from ecomctl.errors import Overloaded
from ecomctl.gateway.server import running_gateway
from ecomctl.services.user import default_hasher, seeding_hasher
from ecomctl.simulators.payment_gateway import SimulatorConfig

PASSWORD = "push-back-123"
_URL = re.compile(rb"listening on (http://\S+)")


def loopback() -> str:
    """A loopback address of this test's own (the whole of 127/8 reaches 127.0.0.1)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def client_at(url: str, address: str, *, keep_alive: bool = True) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None,
                          max_keepalive_connections=None if keep_alive else 0)
    transport = httpx.AsyncHTTPTransport(local_address=address, limits=limits)
    return httpx.AsyncClient(base_url=url, timeout=30, transport=transport)


@asynccontextmanager
async def served(env: dict[str, str], *args: str) -> AsyncIterator[str]:
    """``ecomctl serve --role api --workers 1`` with ``env`` over ours; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ecomctl.cli.main", "serve", "--role", "api", "--workers", "1",
        "--port", "0", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200", **env},
    )
    assert process.stdout is not None
    output: list[bytes] = []

    async def ready() -> str:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line)
            if match := _URL.search(line):
                return match.group(1).decode()
        raise AssertionError(b"".join(output).decode(errors="replace"))

    async def drain() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line)

    try:
        url = await asyncio.wait_for(ready(), 60)
        relay = asyncio.create_task(drain())
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
    await relay


async def register(client: httpx.AsyncClient, email: str | None = None) -> str:
    email = email or f"pb-{uuid.uuid4().hex[:12]}@example.test"
    created = await client.post("/api/users/register", json={
        "email": email, "password": PASSWORD, "full_name": "Push Back"})
    assert created.status_code == 201, created.text
    return email


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/users/login", json={"email": email, "password": password})


async def timed_login(client: httpx.AsyncClient, email: str) -> float:
    started = time.perf_counter()
    response = await login(client, email)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0


def p99(values: list[float]) -> float:
    return percentile(values, 0.99)


# -- a gateway with tight per-address limits (what a deployment sets in its environment) ----

LOGIN_LIMIT = "1/s,4"
REGISTER_LIMIT = "1/s,3"


@pytest.fixture(scope="module")
async def limited_url(migrated: object) -> AsyncIterator[str]:
    async with served({"ECOMCTL_LOGIN_LIMIT": LOGIN_LIMIT,
                       "ECOMCTL_REGISTER_LIMIT": REGISTER_LIMIT}) as url:
        yield url


async def test_a_login_flood_from_one_address_barely_slows_a_shopper_at_another(
    limited_url: str, record_property: Callable[[str, object], None]
) -> None:
    """16 concurrent unknown-email logins, then a wave like it every second, from one address
    (16 argon2 verifications a second asked for, several times what two cores can do): a
    shopper logging in from another address stays within 2x of their calm time."""
    async with client_at(limited_url, loopback()) as shopper, \
            client_at(limited_url, loopback()) as attacker:
        email = await register(shopper)
        await timed_login(shopper, email)  # warm-up (connection, first hash)
        calm = [await timed_login(shopper, email) for _ in range(5)]

        statuses: Counter[int] = Counter()
        stop = asyncio.Event()

        async def wave() -> None:
            replies = await asyncio.gather(*(
                login(attacker, f"nobody-{uuid.uuid4().hex[:10]}@example.test", "guess-123")
                for _ in range(16)
            ))
            statuses.update(r.status_code for r in replies)

        async def flood() -> None:
            waves = []
            while not stop.is_set():  # a wave every second, answered or not
                waves.append(asyncio.create_task(wave()))
                await asyncio.sleep(1.0)
            await asyncio.gather(*waves)

        flooding = asyncio.create_task(flood())
        # The first 16 are in; its admitted burst (4) takes about a second of hashing, during
        # which a login may wait for one hash already running (it is never preempted).
        await asyncio.sleep(1.5)
        flooded = [await timed_login(shopper, email) for _ in range(7)]
        stop.set()
        await flooding

    calm_s, flooded_s = statistics.median(calm), statistics.median(flooded)
    total = sum(statuses.values())
    print(f"\nlogin flood: calm median {calm_s * 1000:.0f} ms, during the flood "  # noqa: T201
          f"{flooded_s * 1000:.0f} ms ({flooded_s / calm_s:.2f}x); attacker {total} requests: "
          f"{dict(statuses)}")
    record_property("flood_calm_ms", round(calm_s * 1000))
    record_property("flood_flooded_ms", round(flooded_s * 1000))
    assert total >= 32 and set(statuses) <= {401, 429, 503}
    assert statuses[401] >= 1  # what was admitted cost its (dummy) verification...
    assert statuses[429] + statuses[503] >= 0.75 * total  # ...and nearly all was refused
    assert flooded_s <= 2 * calm_s


BURST = 24
TRIALS = 10


@pytest.mark.long  # a flood of logins, ten trials
async def test_a_burst_of_unknown_email_logins_leaves_a_login_elsewhere_within_2x(
    migrated: object, record_property: Callable[[str, object], None]
) -> None:
    """The default limits (a real `serve`, the real argon2 parameters): 24 unknown-email
    logins at once from one address, and 50 ms later a correct login from another address.
    Each trial's burst comes from an address of its own, so every one of them is admitted
    and hashed (the per-address bucket holds 100). At most 2x the calm time (median of 10
    trials; measured 1.4-1.7x): the burst never holds the last hash slot, so the login
    starts at once, and the burst's hashes yield the CPU to it (its backlog runs at the
    lowest priority). Before: one slot, first come first served, 1.6-2.3x."""
    async with served({}) as url, client_at(url, loopback()) as shopper:
        email = await register(shopper)
        await timed_login(shopper, email)  # warm-up (connection, first hash)
        calm = statistics.median([await timed_login(shopper, email) for _ in range(5)])
        ratios, statuses = [], Counter[int]()
        for _ in range(TRIALS):
            async with client_at(url, loopback()) as attacker:
                burst = [asyncio.create_task(login(
                    attacker, f"nobody-{uuid.uuid4().hex[:10]}@example.test", "guess-123"))
                    for _ in range(BURST)]
                await asyncio.sleep(0.05)
                ratios.append(await timed_login(shopper, email) / calm)
                statuses.update(r.status_code for r in await asyncio.gather(*burst))
    ratio = statistics.median(ratios)
    print(f"\nlogin burst of {BURST}: calm {calm * 1000:.0f} ms; a login elsewhere "  # noqa: T201
          f"{ratio:.2f}x (median of {TRIALS}; {', '.join(f'{r:.2f}' for r in ratios)}); "
          f"burst answers {dict(statuses)}")
    record_property("burst_login_ratio", round(ratio, 2))
    assert statuses[401] >= TRIALS  # the burst was served (and hashed), not merely refused
    assert ratio <= 2


async def test_429_carries_retry_after_and_the_bucket_refills(limited_url: str) -> None:
    async with client_at(limited_url, loopback()) as client:
        replies = await asyncio.gather(*(
            login(client, f"nobody-{uuid.uuid4().hex[:8]}@example.test", "guess-1")
            for _ in range(6)))
        assert sorted(r.status_code for r in replies) == [401] * 4 + [429] * 2  # burst of 4
        limited = next(r for r in replies if r.status_code == 429)
        assert limited.json()["error"] == "rate_limited" and set(limited.json()) == {
            "error", "message"}
        wait_s = int(limited.headers["retry-after"])
        assert 1 <= wait_s <= 2  # one token at 1/s
        await asyncio.sleep(wait_s + 0.1)
        again = await login(client, f"nobody-{uuid.uuid4().hex[:8]}@example.test", "guess-1")
        assert again.status_code == 401  # a token was back: the request was served

    # Registrations count too (burst 3), successful or not.
    async with client_at(limited_url, loopback()) as client:
        replies = await asyncio.gather(*(client.post("/api/users/register", json={
            "email": f"pb-{uuid.uuid4().hex[:12]}@example.test", "password": PASSWORD,
            "full_name": "R"}) for _ in range(6)))
        assert sorted(r.status_code for r in replies) == [201] * 3 + [429] * 3


async def test_successful_logins_give_their_token_back(limited_url: str) -> None:
    """Only failures drain the login bucket: a simulator logging in many real accounts from
    one address is not throttled by a burst of 4."""
    async with client_at(limited_url, loopback()) as client:
        email = await register(client)
        statuses = [(await login(client, email)).status_code for _ in range(8)]
        assert statuses == [200] * 8


CROWD = 20
LOGIN_TRIES = 5


async def login_as_a_client_does(client: httpx.AsyncClient, email: str,
                                 password: str = PASSWORD) -> list[httpx.Response]:
    """A login as a real client sends it: a 503 with Retry-After is waited out and sent again
    (a few times at most). Every answer, in order."""
    answers = [await login(client, email, password)]
    while answers[-1].status_code == 503 and len(answers) < LOGIN_TRIES:
        await asyncio.sleep(int(answers[-1].headers["retry-after"]) + random.random())
        answers.append(await login(client, email, password))
    return answers


async def test_concurrent_correct_logins_from_one_address_all_get_in(
    limited_url: str, record_property: Callable[[str, object], None]
) -> None:
    """A load generator (or an office behind one NAT): 20 shoppers log in at once from one
    address, with a login bucket of 4. Before, 4 got in and 16 got 429: their tokens were
    all held by logins still being hashed. Now every one gets 200, at once or after a 503
    with Retry-After (still waiting after 5 s for the attempts before it), and none 429."""
    emails = []
    for _ in range(CROWD):  # one address each: registering counts against its own bucket
        async with client_at(limited_url, loopback()) as registrar:
            emails.append(await register(registrar))
    started = time.perf_counter()
    async with client_at(limited_url, loopback()) as office:
        answers = await asyncio.gather(*(login_as_a_client_does(office, e) for e in emails))
    elapsed = time.perf_counter() - started
    statuses = Counter(a.status_code for attempts in answers for a in attempts)
    print(f"\n{CROWD} correct logins at once from one address (bucket of 4): "  # noqa: T201
          f"{dict(statuses)} in {elapsed:.1f} s")
    record_property("crowd_login_statuses", dict(statuses))
    assert [attempts[-1].status_code for attempts in answers] == [200] * CROWD
    assert set(statuses) <= {200, 503}
    assert all(int(a.headers["retry-after"]) >= 1 and a.json()["error"] == "overloaded"
               for attempts in answers for a in attempts if a.status_code == 503)


async def test_correct_logins_mixed_into_guesses_buy_no_extra_guesses(
    limited_url: str,
) -> None:
    """An attacker's own account logged into beside a burst of guesses (unknown emails), all
    at once from one address with a bucket of 4: a success gives back only the token it held,
    so at most the bucket's 4 guesses (and what refills while they run) are checked, and the
    rest are refused 429, not answered 401."""
    async with client_at(limited_url, loopback()) as attacker:
        own = await register(attacker)
        started = time.perf_counter()
        replies = await asyncio.gather(
            *(login(attacker, own) for _ in range(3)),
            *(login(attacker, f"nobody-{uuid.uuid4().hex[:10]}@example.test", "guess-123")
              for _ in range(16)))
        elapsed = time.perf_counter() - started
    mine = Counter(r.status_code for r in replies[:3])
    guesses = Counter(r.status_code for r in replies[3:])
    assert set(guesses) <= {401, 429} and set(mine) <= {200, 429}, (mine, guesses)
    assert 1 <= guesses[401] <= 4 + int(elapsed) + 1, (guesses, elapsed)
    assert guesses[429] >= 16 - (4 + int(elapsed) + 1)


async def test_an_attacker_cannot_lock_the_owner_out_from_another_address(
    gateway_url: str,
) -> None:
    async with client_at(gateway_url, loopback()) as owner, \
            client_at(gateway_url, loopback()) as attacker:
        email = await register(owner)
        guesses = [(await login(attacker, email, f"guess-{i}-xyz")).status_code
                   for i in range(8)]
        assert guesses[:5] == [401] * 5 and set(guesses[5:]) == {429}
        # The attacker's address is locked out, even with the right password...
        assert (await login(attacker, email)).status_code == 429
        # ...the owner's is not.
        mine = await login(owner, email)
        assert mine.status_code == 200, mine.text
        # A slip of the owner's own is forgiven by the next success.
        assert (await login(owner, email, "typo-typo")).status_code == 401
        assert (await login(owner, email)).status_code == 200


async def failed_logins_with_spoofed_addresses(url: str, count: int, address: str
                                               ) -> list[int]:
    """``count`` failed logins from ``address``, each claiming another in X-Forwarded-For."""
    async with client_at(url, address) as client:
        return [(await client.post(
            "/api/users/login",
            json={"email": f"nobody-{i}@example.test", "password": "guess-guess"},
            headers={"X-Forwarded-For": f"198.51.{i // 250}.{i % 250 + 1}"},
        )).status_code for i in range(count)]


async def test_a_spoofed_x_forwarded_for_does_not_pick_another_bucket(
    limited_url: str, redis_client: redis.Redis
) -> None:
    """Through uvicorn, as a client would, from 127.0.0.1: the address uvicorn trusts to
    send the header unless told otherwise. The header changes nothing unless the operator
    names the proxy (the burst is 4 failed logins per address)."""
    key = bucket_key("login", "127.0.0.1")  # shared with other tests: start full, leave full
    await redis_client.delete(key)
    started = time.monotonic()
    try:
        statuses = await failed_logins_with_spoofed_addresses(limited_url, 150, "127.0.0.1")
    finally:
        elapsed = time.monotonic() - started
        await redis_client.delete(key)
    # The bucket refills one login a second while the 150 go out (a slow machine takes a
    # second or two): a spoof that worked would answer all 150 with 401.
    refilled = int(elapsed) + 1
    counts = Counter(statuses[4:])
    assert statuses[:4] == [401] * 4, statuses[:4]
    assert set(counts) <= {401, 429} and counts[401] <= refilled, (counts, elapsed)
    assert counts[429] >= 146 - refilled, (counts, elapsed)


async def test_behind_a_named_proxy_x_forwarded_for_is_the_client(migrated: object) -> None:
    env = {"ECOMCTL_LOGIN_LIMIT": LOGIN_LIMIT}
    async with served(env, "--forwarded-allow-ips", "127.0.0.0/8") as url:
        # Each request says another client; the proxy (any 127.x) is trusted to say so.
        statuses = await failed_logins_with_spoofed_addresses(url, 20, loopback())
        assert statuses == [401] * 20
        async with client_at(url, loopback()) as client:
            claimed = f"203.0.{random.randint(0, 255)}.{random.randint(1, 254)}"
            same = [(await client.post(
                "/api/users/login", json={"email": "nobody@example.test", "password": "guess"},
                headers={"X-Forwarded-For": claimed})).status_code for _ in range(6)]
        assert same == [401] * 4 + [429] * 2  # one named client: one bucket


IDLE_SOCKETS = 1100


async def test_idle_sockets_neither_take_the_concurrency_limit_nor_stay_open(
    migrated: object,
) -> None:
    """More sockets than the concurrency limit (1,024 by default), none sending a byte:
    requests on other connections are still served, and the server closes the idle ones
    after a few seconds (5)."""
    async with served({}) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        idle = [await asyncio.open_connection(host, int(port)) for _ in range(IDLE_SOCKETS)]
        try:
            await idle_sockets_cost_nothing(url, idle)
        finally:
            for _, writer in idle:
                writer.close()


async def idle_sockets_cost_nothing(
    url: str, idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
) -> None:
    async with client_at(url, loopback()) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text

    async def closed_by_server(reader: asyncio.StreamReader) -> bool:
        return await asyncio.wait_for(reader.read(1), timeout=15) == b""

    started = time.perf_counter()
    closed = await asyncio.gather(*(closed_by_server(reader) for reader, _ in idle))
    assert all(closed) and 3 <= time.perf_counter() - started <= 15


# -- overload: far more requests than the gateway can serve ----------------------------------

CONCURRENCY_LIMIT = 8


async def test_overload_is_answered_503_at_once_admitted_work_is_served_and_it_recovers(
    migrated: object, record_property: Callable[[str, object], None]
) -> None:
    """Logins (argon2, ~0.2 s of CPU each) at 5x what the gateway sustains: the gateway, with
    `serve --limit-concurrency 8`, refuses the excess with an immediate 503 instead of
    queueing it, serves what it admits within a bounded time, and recovers at once."""
    env = {"ECOMCTL_LOGIN_LIMIT": "off"}  # overload, not abuse: one address sends it all
    # No keep-alive: each request its own connection, like many independent clients.
    async with served(env, "--limit-concurrency", str(CONCURRENCY_LIMIT)) as url, \
            client_at(url, loopback(), keep_alive=False) as client:
        # Several accounts: one account's concurrent attempts from one address are capped
        # by the login throttle (5), which is not what this test is about.
        emails = itertools.cycle([await register(client) for _ in range(8)])
        email = next(emails)
        await timed_login(client, email)
        calm = statistics.median([await timed_login(client, email) for _ in range(3)])

        # The sustainable rate: a closed loop of 4 clients for 4 seconds.
        done = 0
        deadline = time.perf_counter() + 4.0

        async def closed_loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                assert (await login(client, next(emails))).status_code == 200
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(closed_loop() for _ in range(4)))
        sustainable = done / (time.perf_counter() - started)

        # Open loop at 5x that rate for 6 seconds: arrivals do not wait for answers.
        offered_rate = 5 * sustainable
        results: list[tuple[int, float]] = []

        async def one() -> None:
            sent = time.perf_counter()
            try:
                status = (await login(client, next(emails))).status_code
            except httpx.HTTPError:
                status = 0
            results.append((status, time.perf_counter() - sent))

        tasks = []
        load_started = time.perf_counter()
        for i in range(int(offered_rate * 6)):
            await asyncio.sleep(max(0.0, load_started + i / offered_rate
                                    - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        load_s = time.perf_counter() - load_started

        await asyncio.sleep(1.0)
        after = [await timed_login(client, email) for _ in range(3)]

    admitted = [s for status, s in results if status == 200]
    refused = [s for status, s in results if status == 503]
    print(f"\noverload: calm login {calm * 1000:.0f} ms, sustainable {sustainable:.1f}/s; "  # noqa: T201
          f"offered {len(results)} at {offered_rate:.1f}/s over {load_s:.1f} s: "
          f"admitted {len(admitted)} ({len(admitted) / load_s:.1f}/s, p99 "
          f"{p99(admitted) * 1000:.0f} ms), 503 {len(refused)} (p90 "
          f"{percentile(refused, 0.9) * 1000:.0f} ms, p99 {p99(refused) * 1000:.0f} "
          f"ms), other {Counter(st for st, _ in results if st not in (200, 503))}; after: "
          f"{statistics.median(after) * 1000:.0f} ms")
    for name, value in {"overload_offered": len(results), "overload_admitted": len(admitted),
                        "overload_503": len(refused),
                        "overload_admitted_p99_ms": round(p99(admitted) * 1000),
                        "overload_503_p99_ms": round(p99(refused) * 1000)}.items():
        record_property(name, value)

    assert len(admitted) + len(refused) == len(results)  # nothing failed otherwise
    assert len(refused) >= 0.5 * len(results)  # the excess was refused...
    # ...at once, not after a wait in a queue. A queue would delay most refusals; a stall of
    # the shared host (CI once paused ~1.4 s, 2 of 91 refusals) delays a few, hence p90.
    assert percentile(refused, 0.9) <= max(0.5, 2 * calm)
    assert len(admitted) / load_s >= 0.5 * sustainable  # what was admitted kept being served
    # At most CONCURRENCY_LIMIT logins are in the server, taking turns at the hash slots the
    # service makes (one per `parallelism` cores), so an admitted login waits for at most
    # CONCURRENCY_LIMIT / slots hashes: with twice that as slack for a busy host.
    slots = max(1, (os.cpu_count() or 1) // default_hasher().parallelism)
    assert p99(admitted) <= CONCURRENCY_LIMIT / slots * calm * 2
    assert statistics.median(after) <= 3 * calm  # and it recovered when the load stopped


# -- the database pool ----------------------------------------------------------------------


async def test_a_pool_wait_times_out_as_overloaded(settings: Settings, migrated: object) -> None:
    db = await Database.connect(settings.database_url, min_size=1, max_size=1,
                                acquire_timeout_s=0.2)
    try:
        async with db.connection():
            started = time.perf_counter()
            with pytest.raises(Overloaded) as refused:
                async with db.connection():
                    pass
            assert time.perf_counter() - started < 1.0
        assert refused.value.resource == "postgres pool" and refused.value.retry_after_s >= 1
        async with db.connection() as conn:  # free again
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await db.close()


@pytest.fixture
async def small_pool_shop(settings: Settings, shop: ShopStack) -> AsyncIterator[ShopStack]:
    tight = replace(settings, push_back=replace(PushBack(), db_acquire_timeout_s=0.3))
    options = StackOptions(
        simulator=SimulatorConfig(latency_mean_ms=5, latency_jitter_ms=1), workers=False,
        carrier=None, db_pool_size=2, password_hasher=seeding_hasher(),
        telemetry=shop.telemetry,
    )
    async with running_stack(tight, options) as stack:
        yield stack


async def test_an_exhausted_pool_is_a_503_with_retry_after(small_pool_shop: ShopStack) -> None:
    async with running_gateway(small_pool_shop) as at, client_at(at.url, loopback()) as client:
        email = await register(client)
        token = (await login(client, email)).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with small_pool_shop.db.connection(), small_pool_shop.db.connection():
            started = time.perf_counter()
            busy = await client.get("/api/users/me", headers=auth)
            elapsed = time.perf_counter() - started
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"] == "overloaded" and int(busy.headers["retry-after"]) >= 1
        assert elapsed < 2.0  # the acquire timeout (0.3 s), not an unbounded wait
        assert (await client.get("/api/users/me", headers=auth)).status_code == 200
