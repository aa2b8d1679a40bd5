"""Per-client rate limits: token buckets in Redis, one per (limit name, client address).

One Lua script reads, refills and takes a token in a single atomic step, so every gateway
process (``serve --workers N``) and every host shares the same bucket, and concurrent requests
cannot both take the last token. The script reads Redis's clock (``TIME``), so hosts whose
clocks disagree still agree on the bucket.

A limiter that cannot reach Redis lets the request through (fails open) and logs that once
per outage: refusing every login because the limiter's store is down would turn a Redis
blip into a full outage of sign-in, which is worse than being briefly unlimited.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as redis
import redis.exceptions as redis_errors

from ecomctl.config import RateLimit

log = logging.getLogger("ecomctl.rate_limit")

PREFIX = "ecomctl:rate:"

# KEYS[1] the bucket (hash: tokens, ms); ARGV rate per second, burst, cost (1 takes a token,
# -1 gives one back). Returns {allowed (1/0), milliseconds until a token is there}.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
local allowed = 1
local wait = 0
if cost > 0 and tokens < cost then
  allowed = 0
  wait = math.ceil((cost - tokens) * 1000 / rate)
else
  tokens = math.min(burst, tokens - cost)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', now)
-- A full bucket is the same as none: let the key go once it would have refilled.
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait}
"""

_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError,
                redis_errors.OutOfMemoryError, OSError, TimeoutError)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int
    """Whole seconds until a token is there (>= 1 when refused, 0 when allowed)."""


ALLOWED = Decision(True, 0)


def bucket_key(name: str, client: str) -> str:
    # The address is personal data: only a digest of it goes into Redis.
    return f"{PREFIX}{name}:{hashlib.sha256(client.encode()).hexdigest()[:32]}"


class RedisRateLimiter:
    """Named token buckets per client (``"login"`` -> 1/s, burst 100...). A name without a
    limit is unlimited."""

    def __init__(self, client: redis.Redis, limits: Mapping[str, RateLimit | None]) -> None:
        self._redis = client
        self._limits = {name: limit for name, limit in limits.items() if limit is not None}
        self._script = client.register_script(_TAKE)
        self._redis_down = False

    def limited(self, name: str) -> bool:
        return name in self._limits

    async def take(self, name: str, client: str) -> Decision:
        """Take one token from ``client``'s bucket ``name``, or say how long to wait."""
        reply = await self._run(name, client, 1)
        if reply is None:
            return ALLOWED
        allowed, wait_ms = reply
        if allowed:
            return ALLOWED
        return Decision(False, max(1, math.ceil(int(wait_ms) / 1000)))

    async def give_back(self, name: str, client: str) -> None:
        """Return a token taken for a request that turned out not to count (a login that
        succeeded), never past the burst."""
        await self._run(name, client, -1)

    async def _run(self, name: str, client: str, cost: int) -> list[int] | None:
        limit = self._limits.get(name)
        if limit is None:
            return None
        try:
            reply: list[int] = await self._script(
                keys=[bucket_key(name, client)], args=[limit.per_s, limit.burst, cost]
            )
        except _UNAVAILABLE as exc:
            if not self._redis_down:
                log.warning("rate limiter cannot reach Redis (%s): requests pass unlimited "
                            "until it is back", exc or type(exc).__name__)
                self._redis_down = True
            return None
        if self._redis_down:
            log.warning("rate limiter reaches Redis again: limits apply")
            self._redis_down = False
        return reply
