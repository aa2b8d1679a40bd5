"""A three-level read-through cache: L1 in-process (TTL + LRU), L2 Redis, L3 the caller's loader.

Redis is an accelerator, never a dependency: any Redis error is counted, opens a short circuit
breaker (Redis is skipped for ``breaker_s``) and the lookup continues with L1 and the loader.

Invalidation across processes: ``invalidate`` replaces the L2 entry with a short-lived
tombstone and publishes the key on ``<namespace>:invalidate``; every cache of that namespace
drops its L1 entry. Two races are closed on purpose:

- a load that started before an invalidation must not refill a cache with the old value: L1/L2
  fills are skipped when an invalidation arrived in this process meanwhile (``_epoch``), and L2
  fills use ``SET NX`` so they cannot overwrite another process's tombstone;
- a subscriber that lost its Redis connection may have missed invalidations, so it clears its
  whole L1 when it subscribes again.

Negative results (the loader returned None) are not cached at any level: a product created a
moment later must be visible at once, and unknown ids are rare in real traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from ecomctl.adapters.redis_pool import redis_client
from ecomctl.backoff import jittered
from ecomctl.services.ports.cache import CacheLevel
from ecomctl.telemetry.metrics import ShopMetrics

T = TypeVar("T")
R = TypeVar("R")

Clock = Callable[[], float]

# What ``invalidate`` leaves in L2 for a moment instead of deleting the key; see module doc.
_TOMBSTONE = b"\x00invalidated"
_TOMBSTONE_TTL_MS = 2000
_REDIS_ERRORS = (RedisError, OSError)


def fast_fail_redis(url: str, *, timeout_s: float = 0.25, max_connections: int = 128) -> Redis:
    """A Redis client suited to a cache: short timeouts and one retry (for a pooled
    connection that died), instead of redis-py's default of several retries with backoff,
    which would turn a Redis outage into seconds of latency on every request."""
    return redis_client(url, max_connections=max_connections, timeout_s=timeout_s, retries=1)


class L1Cache(Generic[T]):
    """A bounded in-process map: entries expire ``ttl_s`` after they were set, and the least
    recently used entry is evicted when ``max_size`` is exceeded. Not thread-safe (asyncio)."""

    def __init__(self, max_size: int, ttl_s: float, clock: Clock = time.monotonic) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def get(self, key: str) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: T) -> None:
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def delete(self, key: str) -> bool:
        return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a live entry (does not refresh its LRU position)."""
        entry = self._entries.get(key) if isinstance(key, str) else None
        return entry is not None and self._clock() < entry[0]


class TieredCache(Generic[T]):
    """L1 -> L2 (Redis) -> loader, with fills on the way back. See the module docstring."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        encode: Callable[[T], str],
        decode: Callable[[str], T],
        l1_size: int = 10_000,
        l1_ttl_s: float = 30,
        l2_ttl_s: float = 300,
        breaker_s: float = 1.0,
        metrics: ShopMetrics | None = None,
        service: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.namespace = namespace
        self.channel = f"{namespace}:invalidate"
        self._redis = redis
        self._encode = encode
        self._decode = decode
        self._l1: L1Cache[T] = L1Cache(l1_size, l1_ttl_s, clock)
        self._l2_ttl_s = max(1, round(l2_ttl_s))
        self._breaker_s = breaker_s
        self._clock = clock
        self._metrics = metrics
        self._service = service or namespace
        self._redis_skip_until = 0.0
        # Bumped by every invalidation seen here; a load only fills if it did not change.
        self._epoch = 0
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "l1_hits", "l1_misses", "l2_hits", "l2_misses", "l2_skipped", "l3_hits",
                "l3_misses", "redis_errors", "invalidations_sent", "invalidations_received",
            ),
            0,
        )

    # -- reads -------------------------------------------------------------------------------

    async def get(
        self, key: str, load: Callable[[], Awaitable[T | None]]
    ) -> tuple[T | None, CacheLevel]:
        """The value for ``key`` and the level that answered; (None, L3) if the source has none."""
        value = self._l1.get(key)
        self._record(CacheLevel.L1, hits=value is not None, misses=value is None)
        if value is not None:
            return value, CacheLevel.L1
        epoch = self._epoch
        ok, raw = await self._call(lambda r: r.get(self._rkey(key)))
        if ok:
            value = self._decode_raw(raw)
            self._record(CacheLevel.L2, hits=value is not None, misses=value is None)
        else:
            self._counts["l2_skipped"] += 1
        if value is not None:
            self._fill_l1({key: value}, epoch)
            return value, CacheLevel.L2
        value = await load()
        self._record(CacheLevel.L3, hits=value is not None, misses=value is None)
        if value is not None:
            await self._fill({key: value}, epoch)
        return value, CacheLevel.L3

    async def get_many(
        self,
        keys: Iterable[str],
        load_many: Callable[[list[str]], Awaitable[dict[str, T]]],
    ) -> dict[str, tuple[T, CacheLevel]]:
        """Values for the keys that exist, in the order asked: L1, then one MGET, then ONE
        ``load_many`` call for what is still missing. Absent keys are left out."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[T, CacheLevel]] = {}
        missing: list[str] = []
        for key in wanted:
            value = self._l1.get(key)
            if value is None:
                missing.append(key)
            else:
                found[key] = (value, CacheLevel.L1)
        self._record(CacheLevel.L1, hits=len(found), misses=len(missing))
        if not missing:
            return found
        epoch = self._epoch
        ok, raws = await self._call(lambda r: r.mget([self._rkey(k) for k in missing]))
        if ok:
            from_l2: dict[str, T] = {}
            for key, raw in zip(missing, raws or (), strict=True):
                value = self._decode_raw(raw)
                if value is not None:
                    from_l2[key] = value
            self._record(CacheLevel.L2, hits=len(from_l2), misses=len(missing) - len(from_l2))
            self._fill_l1(from_l2, epoch)
            found.update((k, (v, CacheLevel.L2)) for k, v in from_l2.items())
            missing = [k for k in missing if k not in from_l2]
        else:
            self._counts["l2_skipped"] += len(missing)
        if missing:
            loaded = await load_many(missing)
            from_l3 = {k: loaded[k] for k in missing if loaded.get(k) is not None}
            self._record(CacheLevel.L3, hits=len(from_l3), misses=len(missing) - len(from_l3))
            await self._fill(from_l3, epoch)
            found.update((k, (v, CacheLevel.L3)) for k, v in from_l3.items())
        return {k: found[k] for k in wanted if k in found}

    # -- invalidation ------------------------------------------------------------------------

    async def invalidate(self, key: str) -> None:
        """Drop ``key`` here, in Redis, and (via pub/sub) in the L1 of every other process."""
        self._drop_local(key)
        self._counts["invalidations_sent"] += 1

        async def tombstone_and_publish(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(self._rkey(key), _TOMBSTONE, px=_TOMBSTONE_TTL_MS)
                pipe.publish(self.channel, key)
                await pipe.execute()

        # Not skipped while the breaker is open: losing an invalidation costs staleness.
        await self._call(tombstone_and_publish, force=True)

    async def start(self) -> None:
        """Subscribe to the invalidation channel. Never raises for a Redis outage: the
        listener keeps retrying in the background (and L1 entries still expire by TTL)."""
        if self._listener is not None:
            return
        with contextlib.suppress(*_REDIS_ERRORS):
            await self._subscribe()
        self._listener = asyncio.create_task(
            self._listen(), name=f"cache-invalidation:{self.namespace}"
        )

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._close_pubsub()

    # -- reporting ---------------------------------------------------------------------------

    @property
    def redis_errors(self) -> int:
        return self._counts["redis_errors"]

    @property
    def degraded(self) -> bool:
        """True while the breaker is open, i.e. lookups are served by L1 and the loader only."""
        return self._clock() < self._redis_skip_until

    def use_redis(self, redis: Redis) -> Redis:
        """Switch the L2 client (fault injection: an unreachable Redis); returns the old one.
        The invalidation listener keeps its own connection."""
        previous, self._redis = self._redis, redis
        return previous

    def stats(self) -> dict[str, int]:
        return {**self._counts, "l1_size": len(self._l1)}

    def clear_local(self) -> None:
        """Drop every L1 entry of this process (tests, and after missed invalidations)."""
        self._epoch += 1
        self._l1.clear()

    # -- internals ---------------------------------------------------------------------------

    def _rkey(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _record(self, level: CacheLevel, *, hits: int, misses: int) -> None:
        self._counts[f"{level.value}_hits"] += hits
        self._counts[f"{level.value}_misses"] += misses
        if self._metrics is not None:
            for hit, count in ((True, hits), (False, misses)):
                if count:
                    # int(): a bool from a single lookup would export as a bool
                    self._metrics.cache_lookup(self._service, level.value, hit, int(count))

    def _decode_raw(self, raw: bytes | str | None) -> T | None:
        if raw is None:
            return None
        if isinstance(raw, bytes):
            if raw == _TOMBSTONE:
                return None
            raw = raw.decode()
        elif raw == _TOMBSTONE.decode():
            return None
        try:
            return self._decode(raw)
        except (ValueError, KeyError, TypeError, ArithmeticError):  # bad JSON, bad Decimal
            # Written by an incompatible version: a miss; the reload cannot overwrite it (NX),
            # so it expires by TTL. Change the namespace when the encoding changes.
            return None

    def _fill_l1(self, values: dict[str, T], epoch: int) -> None:
        if epoch != self._epoch:
            return  # an invalidation arrived while we were reading: the value may be stale
        for key, value in values.items():
            self._l1.set(key, value)

    async def _fill(self, values: dict[str, T], epoch: int) -> None:
        if not values or epoch != self._epoch:
            return
        self._fill_l1(values, epoch)
        ttl = self._l2_ttl_s
        if len(values) == 1:
            ((key, value),) = values.items()
            await self._call(lambda r: r.set(self._rkey(key), self._encode(value), ex=ttl, nx=True))
            return

        async def fill_all(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for key, value in values.items():
                    pipe.set(self._rkey(key), self._encode(value), ex=ttl, nx=True)
                await pipe.execute()

        await self._call(fill_all)

    async def _call(
        self, op: Callable[[Redis], Awaitable[R]], *, force: bool = False
    ) -> tuple[bool, R | None]:
        """Run ``op`` against Redis unless the breaker is open; (False, None) when skipped or
        failed, so the caller falls through to the next level."""
        if not force and self._clock() < self._redis_skip_until:
            return False, None
        try:
            return True, await op(self._redis)
        except _REDIS_ERRORS:
            self._counts["redis_errors"] += 1
            self._redis_skip_until = self._clock() + self._breaker_s
            return False, None

    def _drop_local(self, key: str) -> None:
        self._epoch += 1
        self._l1.delete(key)

    async def _subscribe(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
        except _REDIS_ERRORS:
            self._counts["redis_errors"] += 1
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            raise
        self._pubsub = pubsub

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _listen(self) -> None:
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                    # Invalidations published while we were not subscribed are lost.
                    self.clear_local()
                assert self._pubsub is not None
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except _REDIS_ERRORS:
                if self._pubsub is not None:
                    self._counts["redis_errors"] += 1
                    await self._close_pubsub()
                await asyncio.sleep(jittered(self._breaker_s))
                continue
            if message is not None and message.get("type") == "message":
                data = message["data"]
                self._counts["invalidations_received"] += 1
                self._drop_local(data.decode() if isinstance(data, bytes) else str(data))
