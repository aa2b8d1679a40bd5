"""A bounded, fair wait for scarce work (password hashing): slots, and a queue per client.

A plain semaphore is first come, first served with an unbounded queue: a flood of logins from
one address queues hundreds of argon2 hashes, and a real shopper's login waits behind all of
them. Here waiters queue per client key and a free slot goes to the waiting client served
least recently, so a client who rarely asks waits only for the work already running, not for
anyone's backlog, and clients who all keep asking take turns. One client holds at most
``per_key`` slots at once (default: all but one), so with two slots or more a flood from one
address always leaves a slot for someone else, and a holder learns when its key has a
backlog behind it (at once or later), so the caller can run that work at a lower priority.
The queue is
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


class Held:
    """One granted slot: ``backlogged`` once its key has more waiting behind it, and then
    each ``on_backlog`` callback is called (at once if it already is)."""

    def __init__(self, key: str, backlogged: bool) -> None:
        self.key = key
        self.backlogged = backlogged
        self._callbacks: list[Callable[[], None]] = []

    def on_backlog(self, callback: Callable[[], None]) -> None:
        if self.backlogged:
            callback()
        else:
            self._callbacks.append(callback)

    def notice_backlog(self) -> None:
        if not self.backlogged:
            self.backlogged = True
            for callback in self._callbacks:
                callback()
            self._callbacks.clear()


class FairSlots:
    def __init__(self, slots: int, max_waiting: int, *, name: str = "work queue",
                 per_key: int | None = None,
                 on_wait: Callable[[float], None] | None = None) -> None:
        """``on_wait``: told how long each granted slot was waited for (seconds)."""
        per_key = max(1, slots - 1) if per_key is None else per_key
        if slots < 1 or max_waiting < 0 or not 1 <= per_key <= slots:
            raise ValueError("slots must be >= 1, max_waiting >= 0, 1 <= per_key <= slots")
        self._on_wait = on_wait
        self._slots = slots
        self._per_key = per_key
        self._held: dict[str, list[Held]] = {}
        self._max_waiting = max_waiting
        self._name = name
        self._busy = 0
        self._queues: OrderedDict[str, deque[asyncio.Future[Held]]] = OrderedDict()
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
    async def slot(self, key: str = "") -> AsyncIterator[Held]:
        """Hold one slot for the block; Overloaded at once if ``key`` cannot even queue."""
        held = await self._acquire(key)
        try:
            yield held
        finally:
            self._release(held)

    async def _acquire(self, key: str) -> Held:
        # A free slot with waiters left means none of them may hold one more (a release
        # hands its slot to the first that may): taking it jumps nobody's turn.
        if self._busy < self._slots and self._may_hold(key):
            if self._on_wait is not None:
                self._on_wait(0.0)
            return self._grant(key)
        asked = time.perf_counter()
        if self._waiting >= self._max_waiting:
            self._shed_for(key)
        waiter: asyncio.Future[Held] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(key, deque()).append(waiter)
        self._waiting += 1
        for holder in self._held.get(key, ()):
            holder.notice_backlog()
        try:
            held = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # granted as we were cancelled: pass it on
            else:
                self._forget(key, waiter)
            raise
        if self._on_wait is not None:
            self._on_wait(time.perf_counter() - asked)
        return held

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

    def _forget(self, key: str, waiter: asyncio.Future[Held]) -> None:
        queue = self._queues.get(key)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            self._waiting -= 1
            if not queue:
                del self._queues[key]

    def _may_hold(self, key: str) -> bool:
        return len(self._held.get(key, ())) < self._per_key

    def _grant(self, key: str) -> Held:
        self._busy += 1
        held = Held(key, backlogged=bool(self._queues.get(key)))
        self._held.setdefault(key, []).append(held)
        self._mark_served(key)
        return held

    def _release(self, held: Held) -> None:
        """Free ``held``'s slot and hand it to the waiting key served least recently that
        may hold one more (ties: the first in line)."""
        self._busy -= 1
        holders = self._held[held.key]
        holders.remove(held)
        if not holders:
            del self._held[held.key]
        while True:
            eligible = [k for k in self._queues if self._may_hold(k)]
            if not eligible:
                return
            key = min(eligible, key=lambda k: self._served.get(k, 0))
            queue = self._queues[key]
            waiter = queue.popleft()
            self._waiting -= 1
            if not queue:
                del self._queues[key]
            if not waiter.done():
                waiter.set_result(self._grant(key))
                return

    def _mark_served(self, key: str) -> None:
        self._turn += 1
        self._served[key] = self._turn
        self._served.move_to_end(key)
        if len(self._served) > _REMEMBERED_KEYS:
            self._served.popitem(last=False)
