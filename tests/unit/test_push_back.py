"""Push-back pieces without I/O: the fair, bounded hash queue, the settings, the client
address, the Redis data-dir migration to the append-only file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from starlette.types import Message, Receive, Scope, Send

from ecomctl.adapters.http_guards import InFlightLimit
from ecomctl.config import PushBack, RateLimit, Settings
from ecomctl.errors import ConfigError, Overloaded
from ecomctl.services.admission import FairSlots
from ecomctl.stack.backend import StackPaths
from ecomctl.stack.backends.redis import AOF_DIR, RedisBackend


async def _hold(slots: FairSlots, key: str, order: list[str], gate: asyncio.Event) -> None:
    async with slots.slot(key):
        order.append(key)
        await gate.wait()


async def test_slots_go_round_robin_over_clients_not_first_come() -> None:
    slots = FairSlots(1, 10)
    gate = asyncio.Event()
    order: list[str] = []
    tasks = [asyncio.create_task(_hold(slots, "flood", order, gate)) for _ in range(5)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(_hold(slots, "shopper", order, gate)))
    await asyncio.sleep(0)
    assert slots.busy == 1 and slots.waiting == 5
    gate.set()
    await asyncio.gather(*tasks)
    # The shopper came last but waits only for the hash already running, not for the
    # flood's backlog; then the flood has its turns.
    assert order == ["flood", "shopper", "flood", "flood", "flood", "flood"]
    assert slots.busy == 0 and slots.waiting == 0


async def test_a_full_queue_sheds_the_longest_queue_not_the_newcomer() -> None:
    slots = FairSlots(1, 3)
    gate = asyncio.Event()
    order: list[str] = []
    flood = [asyncio.create_task(_hold(slots, "flood", order, gate)) for _ in range(4)]
    await asyncio.sleep(0)
    assert slots.waiting == 3
    # One more from the flood is refused at once...
    with pytest.raises(Overloaded) as refused:
        async with slots.slot("flood"):
            pass
    assert refused.value.retry_after_s >= 1
    # ...while a newcomer takes the place of the flood's newest waiter.
    shopper = asyncio.create_task(_hold(slots, "shopper", order, gate))
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*flood, shopper, return_exceptions=True)
    assert sum(isinstance(o, Overloaded) for o in outcomes) == 1
    assert "shopper" in order and slots.busy == 0 and slots.waiting == 0


async def test_a_cancelled_waiter_leaves_the_queue_and_no_slot_leaks() -> None:
    slots = FairSlots(1, 5)
    gate = asyncio.Event()
    order: list[str] = []
    first = asyncio.create_task(_hold(slots, "a", order, gate))
    await asyncio.sleep(0)
    second = asyncio.create_task(_hold(slots, "b", order, gate))
    await asyncio.sleep(0)
    second.cancel()
    await asyncio.sleep(0)
    assert slots.waiting == 0
    gate.set()
    await first
    assert slots.busy == 0
    async with slots.slot("c"):  # the slot is free again
        assert slots.busy == 1


async def test_one_client_never_holds_the_last_slot_and_is_told_of_its_backlog() -> None:
    slots = FairSlots(2, 10)
    gate = asyncio.Event()
    told: dict[str, list[bool]] = {"flood": [], "shopper": []}
    demoted: list[str] = []

    async def hold(key: str) -> None:
        async with slots.slot(key) as held:
            told[key].append(held.backlogged)
            held.on_backlog(lambda: demoted.append(key))
            await gate.wait()

    first = asyncio.create_task(hold("flood"))
    await asyncio.sleep(0)
    assert told["flood"] == [False] and demoted == []  # alone: no backlog yet
    flood = [asyncio.create_task(hold("flood")) for _ in range(3)]
    await asyncio.sleep(0)
    # Two slots, but the flood holds one; its backlog reached the holder while it ran, and
    # the other slot stays free for anyone else...
    assert slots.busy == 1 and slots.waiting == 3 and demoted == ["flood"]
    shopper = asyncio.create_task(hold("shopper"))
    await asyncio.sleep(0)
    # ...who takes it at once, with no backlog behind them.
    assert slots.busy == 2 and told["shopper"] == [False]
    gate.set()
    await asyncio.gather(first, *flood, shopper)
    # The flood's next two had a backlog when granted (told at once), its last had none.
    assert told["flood"] == [False, True, True, False]
    assert demoted == ["flood"] * 3 and slots.busy == 0 and slots.waiting == 0


async def test_a_client_at_its_cap_queues_while_another_client_is_served() -> None:
    slots = FairSlots(3, 10, per_key=2)
    gates = {key: asyncio.Event() for key in ("a", "b")}
    order: list[str] = []
    tasks = [asyncio.create_task(_hold(slots, "a", order, gates["a"])) for _ in range(3)]
    await asyncio.sleep(0)
    assert order == ["a", "a"] and slots.waiting == 1
    tasks.append(asyncio.create_task(_hold(slots, "b", order, gates["b"])))
    await asyncio.sleep(0)
    assert order == ["a", "a", "b"] and slots.busy == 3
    gates["b"].set()  # b's slot frees: a is still at its cap, so the slot stays free
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["a", "a", "b"] and slots.busy == 2 and slots.waiting == 1
    gates["a"].set()
    await asyncio.gather(*tasks)
    assert order == ["a", "a", "b", "a"] and slots.busy == 0


def test_per_key_outside_one_to_slots_is_refused() -> None:
    with pytest.raises(ValueError):
        FairSlots(2, 10, per_key=3)
    with pytest.raises(ValueError):
        FairSlots(2, 10, per_key=0)


def test_push_back_settings_from_the_environment() -> None:
    defaults = Settings.from_env({}).push_back
    assert defaults == PushBack()
    assert defaults.login is not None and defaults.login.burst >= 50  # a simulator's start
    tuned = Settings.from_env({
        "ECOMCTL_LOGIN_LIMIT": "5/s,20", "ECOMCTL_REGISTER_LIMIT": "off",
        "ECOMCTL_FORWARDED_ALLOW_IPS": "10.0.0.1, 192.168.0.0/16",
        "ECOMCTL_DB_ACQUIRE_TIMEOUT": "0.5",
        "ECOMCTL_HASH_QUEUE": "4", "ECOMCTL_LIMIT_CONCURRENCY": "0",
    }).push_back
    assert tuned == PushBack(login=RateLimit(5.0, 20), register=None,
                             forwarded_allow_ips=("10.0.0.1", "192.168.0.0/16"),
                             db_acquire_timeout_s=0.5, hash_queue=4, limit_concurrency=None)


@pytest.mark.parametrize("name,value", [
    ("ECOMCTL_LOGIN_LIMIT", "5"), ("ECOMCTL_LOGIN_LIMIT", "0/s,5"),
    ("ECOMCTL_REGISTER_LIMIT", "x,1"), ("ECOMCTL_DB_ACQUIRE_TIMEOUT", "nan"),
    ("ECOMCTL_HASH_QUEUE", "-1"), ("ECOMCTL_FORWARDED_ALLOW_IPS", "10.0.0.1,proxy"),
    ("ECOMCTL_TRUST_FORWARDED_FOR", "1"),  # replaced: saying so beats ignoring it
])
def test_bad_push_back_settings_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_redis_snapshot_becomes_the_append_only_files_base(tmp_path: Path) -> None:
    """Redis with appendonly and no AOF starts empty, ignoring dump.rdb: the backend turns
    the snapshot into the AOF's base before the first start with the new settings."""
    backend = RedisBackend(StackPaths(state=tmp_path, cache=tmp_path / "cache"), None)
    backend.data_dir.mkdir(parents=True)
    (backend.data_dir / "dump.rdb").write_bytes(b"REDIS0010-snapshot")
    backend.prepare()
    aof = backend.data_dir / AOF_DIR
    assert (aof / "appendonly.aof.1.base.rdb").read_bytes() == b"REDIS0010-snapshot"
    assert (aof / "appendonly.aof.manifest").read_text() == (
        "file appendonly.aof.1.base.rdb seq 1 type b\n"
    )
    (aof / "appendonly.aof.1.incr.aof").write_text("*1\r\n")  # Redis has been running since
    backend.prepare()  # an existing AOF is never touched again
    assert (aof / "appendonly.aof.1.incr.aof").exists()
    argv = backend.launch_spec().argv
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--appendfsync") + 1] == "everysec"


async def test_the_simulated_shopper_logs_in_again_on_a_401_and_retries_once() -> None:
    import httpx

    from ecomctl.journeys import steps
    from ecomctl.sim.client import HttpClient

    tokens = iter(["first", "second"])
    seen: list[tuple[str, str, str]] = []

    def shop(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("authorization", "")))
        if request.url.path == "/api/users/login":
            if len(seen) == 1:  # the first login is pushed back once, briefly
                return httpx.Response(503, headers={"Retry-After": "0"},
                                      json={"error": "overloaded", "message": "busy"})
            return httpx.Response(200, json={"token": next(tokens)})
        if request.headers.get("authorization") == "Bearer first":
            return httpx.Response(401, json={"error": "authentication_failed", "message": "x"})
        return httpx.Response(200, json={"lines": [{"product_id": 1, "quantity": 2}]})

    client = HttpClient("http://shop.test")
    await client.close()
    client._http = httpx.AsyncClient(base_url="http://shop.test",
                                     transport=httpx.MockTransport(shop))
    await client.login("a@example.test", "password-1")
    # The session was lost: logged in again, retried.
    assert await client.run(steps.view_cart(client.session)) == [1]
    assert [(m, p, a) for m, p, a in seen] == [
        ("POST", "/api/users/login", ""), ("POST", "/api/users/login", ""),
        ("GET", "/api/cart", "Bearer first"), ("POST", "/api/users/login", "Bearer first"),
        ("GET", "/api/cart", "Bearer second"),
    ]
    await client.close()


async def test_the_in_flight_limit_refuses_requests_beyond_it_and_only_those() -> None:
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limited = InFlightLimit(slow_app, 2)
    sent: list[list[Message]] = [[], [], [], []]

    async def call(i: int, kind: str = "http") -> None:
        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent[i].append(message)

        await limited({"type": kind}, receive, send)

    admitted = [asyncio.create_task(call(i)) for i in range(2)]
    await asyncio.sleep(0)
    await call(2)  # refused at once: the limit is taken
    assert sent[2][0]["status"] == 503 and (b"retry-after", b"1") in sent[2][0]["headers"]
    assert json.loads(sent[2][1]["body"])["error"] == "overloaded"
    release.set()
    await asyncio.gather(*admitted)
    assert [m[0]["status"] for m in sent[:2]] == [200, 200] and limited.in_flight == 0
    await call(3)  # and the next one is served
    assert sent[3][0]["status"] == 200
