"""A bounded, fair wait for scarce work (password hashing): slots, and a queue per client.

A plain semaphore is first come, first served with an unbounded queue: a flood of logins from
one address queues hundreds of argon2 hashes, and a real shopper's login waits behind all of
them. Here waiters queue per client key and a free slot goes to the waiting client served
least recently, so a client who rarely asks waits only for the work already running, not for
anyone's backlog, and clients who all keep asking take turns. The queue is
bounded: when it is full, the newest waiter of the longest queue is refused (``Overloaded``),
which sheds the flood and not the one request from someone else.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from ecomctl.errors import Overloaded

_REMEMBERED_KEYS = 4096


class FairSlots:
    def __init__(self, slots: int, max_waiting: int, *, name: str = "work queue",
                 on_wait: Callable[[float], None] | None = None) -> None:
        """``on_wait``: told how long each granted slot was waited for (seconds)."""
        if slots < 1 or max_waiting < 0:
            raise ValueError("slots must be >= 1 and max_waiting >= 0")
        self._on_wait = on_wait
        self._slots = slots
        self._max_waiting = max_waiting
        self._name = name
        self._busy = 0
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._waiting = 0
        self._turn = 0
        self._served: OrderedDict[str, int] = OrderedDict()  # key -> its last turn (LRU)

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def waiting(self) -> int:
        return self._waiting

    @asynccontextmanager
    async def slot(self, key: str = "") -> AsyncIterator[None]:
        """Hold one slot for the block; Overloaded at once if ``key`` cannot even queue."""
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, key: str) -> None:
        if self._busy < self._slots and not self._waiting:
            self._busy += 1
            self._mark_served(key)
            if self._on_wait is not None:
                self._on_wait(0.0)
            return
        asked = time.perf_counter()
        if self._waiting >= self._max_waiting:
            self._shed_for(key)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append(waiter)
        self._waiting += 1
        try:
            await waiter
            if self._on_wait is not None:
                self._on_wait(time.perf_counter() - asked)
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release()  # granted a slot as we were cancelled: pass it on
            else:
                self._forget(key, waiter)
            raise

    def _shed_for(self, key: str) -> None:
        """The queue is full: refuse the newest waiter of the longest queue if that queue is
        longer than ``key``'s would become, else refuse ``key`` itself."""
        mine = len(self._queues.get(key, ()))
        longest = max(self._queues, key=lambda k: len(self._queues[k]), default=None)
        if longest is None or longest == key or len(self._queues[longest]) <= mine + 1:
            raise self._refusal()
        victim = self._queues[longest].pop()
        self._waiting -= 1
        if not self._queues[longest]:
            del self._queues[longest]
        victim.set_exception(self._refusal())

    def _refusal(self) -> Overloaded:
        waiting_s = max(1, round(self._waiting / self._slots * 0.2))  # ~0.2 s per hash
        return Overloaded(self._name, f"{self._waiting} waiting for {self._slots} slot(s)",
                          retry_after_s=waiting_s)

    def _forget(self, key: str, waiter: asyncio.Future[None]) -> None:
        queue = self._queues.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self._waiting -= 1
            if not queue:
                del self._queues[key]

    def _release(self) -> None:
        """Hand the slot (it stays busy) to the waiting key served least recently (ties: the
        first in line), or free it."""
        while self._queues:
            key = min(self._queues, key=lambda k: self._served.get(k, 0))
            queue = self._queues[key]
            waiter = queue.popleft()
            self._waiting -= 1
            if not queue:
                del self._queues[key]
            if not waiter.done():
                self._mark_served(key)
                waiter.set_result(None)
                return
        self._busy -= 1

    def _mark_served(self, key: str) -> None:
        self._turn += 1
        self._served[key] = self._turn
        self._served.move_to_end(key)
        if len(self._served) > _REMEMBERED_KEYS:
            self._served.popitem(last=False)
