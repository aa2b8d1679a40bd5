"""The ``chaos`` fault: real backends die in the middle of a simulation and come back.

In order: the Kafka broker is killed (``SIGKILL``) and started again with what
``ecomctl stack up kafka`` runs, then Redis the same way, then every connection the shop has
to PostgreSQL is terminated (``pg_terminate_backend``), three times. Each outage is logged
with how long the backend was down and how long the shop took to work again through it:

- Kafka: until the outbox backlog written while the broker was away is published;
- Redis: until the shop's own client answers a PING;
- PostgreSQL: until the shop's pool serves a query again.

Only the local stack (``ecomctl stack up``) can be killed and restarted this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ecomctl.adapters.postgres.operations import (
    answers,
    terminate_shop_connections,
    unpublished_events,
)
from ecomctl.errors import ConfigError, EcomctlError

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack

LEAD_S = 2.0  # let the run warm up before the first outage
GAP_S = 3.0  # between two outages
RECOVERY_TIMEOUT_S = 90.0
PG_ROUNDS = 3


class Chaos:
    """One chaos schedule against a running shop; ``log`` holds one entry per outage."""

    def __init__(self, shop: ShopStack, down_s: float) -> None:
        from ecomctl.stack.manager import LocalStack

        self.shop = shop
        self.down_s = down_s
        self.stack = LocalStack()
        self.log: list[dict[str, Any]] = []
        for name in ("kafka", "redis"):
            if self.stack.running_process(self.stack.backends[name]) is None:
                raise ConfigError(f"--fault chaos kills and restarts the local stack's {name}, "
                                  "which is not running here (ecomctl stack up)")

    async def run(self, stop: asyncio.Event) -> None:
        if await _wait(stop, LEAD_S):
            return
        for name, recovered in (("kafka", self._outbox_published), ("redis", self._redis_ok)):
            await self._kill_and_restart(name, recovered)
            if await _wait(stop, GAP_S):
                return
        for round_number in range(1, PG_ROUNDS + 1):
            await self._terminate_postgres(round_number)
            if await _wait(stop, 1.0):
                return

    async def _kill_and_restart(
        self, name: str, recovered: Callable[[dt.datetime, dt.datetime], Awaitable[bool]]
    ) -> None:
        from ecomctl.stack import process

        backend = self.stack.backends[name]
        killed = time.monotonic()
        killed_wall = dt.datetime.now(dt.UTC)
        pids = {p for p in (process.listener_pid(backend.ports[0]),) if p}
        record = self.stack.running_process(backend)
        if record is not None:
            pids.add(record.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        async def gone() -> bool:
            return self.stack.running_process(backend) is None

        try:
            await _until(gone, 15.0)
            await asyncio.sleep(self.down_s)
        finally:  # whatever happens, the backend comes back
            await self.stack.up([name])
        restarted = time.monotonic()
        restarted_wall = dt.datetime.now(dt.UTC)
        await _until(lambda: recovered(killed_wall, restarted_wall), RECOVERY_TIMEOUT_S)
        done = time.monotonic()
        self.log.append({
            "backend": name, "action": "kill -9, then ecomctl stack up " + name,
            "down_s": round(restarted - killed, 2), "restart_s": round(restarted - killed
                                                                       - self.down_s, 2),
            "recovered_s": round(done - restarted, 2),
        })

    async def _terminate_postgres(self, round_number: int) -> None:
        started = time.monotonic()
        terminated = await terminate_shop_connections(self.shop.db)
        await _until(self._postgres_ok, RECOVERY_TIMEOUT_S)
        self.log.append({
            "backend": "postgres", "action": f"pg_terminate_backend, round {round_number}",
            "connections_terminated": terminated,
            "recovered_s": round(time.monotonic() - started, 2),
        })

    async def _outbox_published(self, since: dt.datetime, until: dt.datetime) -> bool:
        """The events written while the broker was away are on Kafka now."""
        return await unpublished_events(self.shop.db, since, until) == 0

    async def _redis_ok(self, since: dt.datetime, until: dt.datetime) -> bool:
        return bool(await self.shop.redis.ping())

    async def _postgres_ok(self) -> bool:
        return await answers(self.shop.db)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    """Poll ``check`` until it holds; raise after ``timeout_s``. Any failure of the check
    (a driver's connection error while the backend is away) means "not yet"."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if await check():
                return
        if time.monotonic() > deadline:
            raise EcomctlError(f"chaos: no recovery within {timeout_s:.0f}s")
        await asyncio.sleep(0.1)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stopped; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()
