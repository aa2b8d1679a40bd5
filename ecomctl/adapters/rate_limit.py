"""Per-client rate limits: token buckets in Redis, one per (limit name, client address).

One Lua script reads, refills and spends a token in a single atomic step, so every gateway
process (``serve --workers N``) and every host shares the same bucket, and concurrent requests
cannot both take the last token. The script reads Redis's clock (``TIME``), so hosts whose
clocks disagree still agree on the bucket.

A request spends a token one of two ways:

- ``take``: it counts whatever its outcome (a registration).
- ``begin`` ... ``end``: it counts only if it fails (a login: only failed logins, the
  guesses, drain the bucket). Whether a login fails is known only once its password is
  hashed, so ``begin`` *holds* a token while the attempt is undecided, and ``end`` spends it
  (a failure) or gives it back (a success, or an attempt refused before its password was
  checked). When every token left is held by undecided attempts, a newcomer can be neither
  admitted (each of them may be a guess) nor refused (each may succeed), so it waits for
  them: a token one of them gives back goes to the attempts waiting (not to newcomers), and
  once they are all decided without one, a waiting attempt is refused as it would have been
  had they been decided as it came. So concurrent guesses beyond the bucket are refused (429)
  as before, while concurrent correct logins from one address (a load generator, an office
  behind one NAT) all get in, in turn. An attempt still waiting after ``wait_s`` gets
  "busy" (503 with Retry-After), never a refusal that says its address guessed.

Holds and waits are entries with a deadline in two sorted sets beside the bucket, so those
of a process that died expire: an expired hold stays spent (it may have been a guess), an
expired wait is forgotten.

A limiter that cannot reach Redis lets the request through (fails open) and logs that once
per outage: refusing every login because the limiter's store is down would turn a Redis
blip into a full outage of sign-in, which is worse than being briefly unlimited.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as redis
import redis.exceptions as redis_errors

from ecomctl.config import RateLimit

log = logging.getLogger("ecomctl.rate_limit")

PREFIX = "ecomctl:rate:"
HOLD_S = 30
"""An attempt undecided this long (its process died) stops holding its token: spent."""
WAIT_S = 5.0
"""How long an attempt waits at most for the undecided ones before it (then: busy)."""
POLL_S = 0.2
"""How often a waiting attempt asks again; at once when an attempt of this process is
decided on the same bucket (another process's are seen at the next poll)."""
MAX_WAITING = 64
"""Attempts one process lets wait on one bucket; more are told busy at once."""

# Replies: {verdict, milliseconds until a token is there (when refused)}.
_REFUSED, _ALLOWED, _WAITING, _GONE = 0, 1, 2, 3

# KEYS[1] the bucket (hash: tokens, ms, returned), KEYS[2] the held tokens (sorted set: hold
# id -> deadline ms), KEYS[3] the waiting attempts (id -> deadline ms). ARGV: the operation
# (take, begin, poll, spend, give_back, abandon), rate per second, burst, the hold's id, the
# hold's and the wait's lifetimes in ms.
_SCRIPT = """
local op, rate, burst = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local id, hold_ms, wait_ms = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ms', 'returned')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
local returned = tonumber(state[3]) or 0
tokens = math.min(burst, tokens + math.max(0, now - last) * rate / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local function refused()
  return {0, math.ceil(math.max(0, 1 - tokens) * 1000 / rate)}
end
local reply = {1, 0}
if op == 'take' or op == 'begin' then
  if tokens >= 1 then
    tokens = tokens - 1
    if op == 'begin' then redis.call('ZADD', KEYS[2], now + hold_ms, id) end
  elseif op == 'begin' and redis.call('ZCARD', KEYS[2]) > 0 then
    redis.call('ZADD', KEYS[3], now + wait_ms, id)
    reply = {2, 0}
  else
    reply = refused()
  end
elseif op == 'poll' then
  if not redis.call('ZSCORE', KEYS[3], id) then
    reply = {3, 0}
  elseif returned >= 1 then
    returned = returned - 1
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[2], now + hold_ms, id)
  elseif redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('ZREM', KEYS[3], id)
    reply = refused()
  else
    reply = {2, 0}
  end
elseif op == 'give_back' then
  if redis.call('ZREM', KEYS[2], id) == 1 then returned = returned + 1 end
elseif op == 'spend' then
  redis.call('ZREM', KEYS[2], id)
elseif op == 'abandon' then
  redis.call('ZREM', KEYS[3], id)
end
-- A token given back goes to the attempts waiting; with none left, back into the bucket.
if returned > 0 and redis.call('ZCARD', KEYS[3]) == 0 then
  tokens = math.min(burst, tokens + returned)
  returned = 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ms', now, 'returned', returned)
-- A full bucket that holds nothing is the same as none: let the keys go once it would have
-- refilled and its holds expired.
local ttl = math.ceil(burst * 1000 / rate) + hold_ms + 1000
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
return reply
"""

_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError,
                redis_errors.OutOfMemoryError, OSError, TimeoutError)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int
    """Whole seconds until a token is there (>= 1 when refused, 0 when allowed)."""
    hold: str | None = None
    """The token ``begin`` holds until ``end`` (None: nothing to end)."""
    busy: bool = False
    """Not refused: this address's earlier attempts were still undecided (retry soon)."""


ALLOWED = Decision(True, 0)
BUSY = Decision(False, 1, busy=True)


def bucket_key(name: str, client: str) -> str:
    # The address is personal data: only a digest of it goes into Redis.
    return f"{PREFIX}{name}:{hashlib.sha256(client.encode()).hexdigest()[:32]}"


class RedisRateLimiter:
    """Named token buckets per client (``"login"`` -> 1/s, burst 100...). A name without a
    limit is unlimited."""

    def __init__(self, client: redis.Redis, limits: Mapping[str, RateLimit | None], *,
                 wait_s: float = WAIT_S, hold_s: float = HOLD_S) -> None:
        self._redis = client
        self._limits = {name: limit for name, limit in limits.items() if limit is not None}
        self._script = client.register_script(_SCRIPT)
        self._wait_s = wait_s
        self._hold_ms = math.ceil(hold_s * 1000)
        self._redis_down = False
        # This process's attempts waiting per bucket, and what wakes them.
        self._waiting: Counter[str] = Counter()
        self._decided: dict[str, asyncio.Event] = {}

    def limited(self, name: str) -> bool:
        return name in self._limits

    async def take(self, name: str, client: str) -> Decision:
        """Spend one token from ``client``'s bucket ``name``, or say how long to wait."""
        reply = await self._run("take", name, client)
        return ALLOWED if reply is None else _decision(reply, None)

    async def begin(self, name: str, client: str) -> Decision:
        """Hold a token for an attempt that counts only if it fails (``end`` decides it),
        waiting while this client's tokens are all held by undecided attempts."""
        hold = secrets.token_hex(8)
        reply = await self._run("begin", name, client, hold)
        if reply is None:
            return ALLOWED
        if int(reply[0]) == _WAITING:
            reply = await self._wait(name, client, hold)
            if reply is None:
                return ALLOWED
        return _decision(reply, hold)

    async def end(self, name: str, client: str, hold: str | None, *, failed: bool) -> None:
        """The attempt is decided: a failure spends its token, anything else gives it back
        (to an attempt waiting, if one is)."""
        if hold is None:
            return
        await self._run("spend" if failed else "give_back", name, client, hold)
        event = self._decided.pop(bucket_key(name, client), None)
        if event is not None:
            event.set()

    async def _wait(self, name: str, client: str, hold: str) -> list[int] | None:
        key = bucket_key(name, client)
        if self._waiting[key] >= MAX_WAITING:
            await self._run("abandon", name, client, hold)
            return [_GONE, 0]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        reply: list[int] | None = [_WAITING, 0]
        self._waiting[key] += 1
        try:
            while reply is not None and int(reply[0]) == _WAITING:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                decided = self._decided.setdefault(key, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(decided.wait(), min(POLL_S, remaining))
                reply = await self._run("poll", name, client, hold)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._decided.pop(key, None)
            if reply is not None and int(reply[0]) == _WAITING:  # out of time, or cancelled
                await self._run("abandon", name, client, hold)
        return [_GONE, 0] if reply is not None and int(reply[0]) == _WAITING else reply

    async def _run(self, op: str, name: str, client: str, hold: str = "") -> list[int] | None:
        limit = self._limits.get(name)
        if limit is None:
            return None
        key = bucket_key(name, client)
        try:
            reply: list[int] = await self._script(
                keys=[key, f"{key}:held", f"{key}:waiting"],
                args=[op, limit.per_s, limit.burst, hold, self._hold_ms,
                      math.ceil(self._wait_s * 1000) + 1000],
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


def _decision(reply: list[int], hold: str | None) -> Decision:
    verdict, wait_ms = int(reply[0]), int(reply[1])
    if verdict == _ALLOWED:
        return Decision(True, 0, hold)
    if verdict == _REFUSED:
        return Decision(False, max(1, math.ceil(wait_ms / 1000)))
    return BUSY
