"""The per-address buckets on the real Redis (``adapters/rate_limit.py``): a request that
counts only if it fails holds its token while it is undecided; one that finds every token
held waits for those attempts, and is admitted by a token given back or refused once they
all failed; never left waiting past ``wait_s``."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as redis

from ecomctl.adapters.rate_limit import RedisRateLimiter
from ecomctl.config import RateLimit

BURST = 2


def limiter(client: redis.Redis, *, wait_s: float = 3.0, hold_s: float = 30.0
            ) -> RedisRateLimiter:
    # A slow refill (one token in 100 s): what a test sees is the holds, not the refill.
    return RedisRateLimiter(client, {"login": RateLimit(per_s=0.01, burst=BURST),
                                     "register": RateLimit(per_s=0.01, burst=BURST)},
                            wait_s=wait_s, hold_s=hold_s)


def address() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"  # a bucket of this test's own


async def test_a_token_given_back_admits_an_attempt_that_waited_for_it(
    redis_client: redis.Redis,
) -> None:
    limits, client = limiter(redis_client), address()
    first, second = [await limits.begin("login", client) for _ in range(BURST)]
    assert first.allowed and second.allowed and first.hold != second.hold
    waiting = asyncio.create_task(limits.begin("login", client))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # neither admitted nor refused while both are undecided
    await limits.end("login", client, first.hold, failed=False)  # a correct password
    third = await asyncio.wait_for(waiting, 1.0)
    assert third.allowed and third.hold is not None
    # The token went to the attempt that waited, not back to the bucket for a newcomer.
    newcomer = asyncio.create_task(limits.begin("login", client))
    await asyncio.sleep(0.3)
    assert not newcomer.done()
    for held in (second, third):
        await limits.end("login", client, held.hold, failed=False)
    assert (await asyncio.wait_for(newcomer, 1.0)).allowed


async def test_attempts_that_waited_for_failures_are_refused_as_they_would_have_been(
    redis_client: redis.Redis,
) -> None:
    limits, client = limiter(redis_client), address()
    held = [await limits.begin("login", client) for _ in range(BURST)]
    waiting = [asyncio.create_task(limits.begin("login", client)) for _ in range(3)]
    await asyncio.sleep(0.3)
    for h in held:  # wrong passwords
        await limits.end("login", client, h.hold, failed=True)
    refused = await asyncio.wait_for(asyncio.gather(*waiting), 2.0)
    assert all(not r.allowed and not r.busy and r.retry_after_s >= 1 for r in refused)
    # The failures spent the bucket: the next attempt is refused at once, without waiting.
    late = await asyncio.wait_for(limits.begin("login", client), 0.5)
    assert not late.allowed and not late.busy and late.retry_after_s > 60


async def test_an_attempt_still_undecided_after_wait_s_is_told_busy(
    redis_client: redis.Redis,
) -> None:
    limits, client = limiter(redis_client, wait_s=0.5), address()
    held = [await limits.begin("login", client) for _ in range(BURST)]
    verdict = await asyncio.wait_for(limits.begin("login", client), 2.0)
    assert verdict.busy and not verdict.allowed and verdict.retry_after_s == 1
    # It no longer waits: the token given back goes to the bucket, for the next attempt.
    await limits.end("login", client, held[0].hold, failed=False)
    assert (await asyncio.wait_for(limits.begin("login", client), 0.5)).allowed


async def test_a_hold_left_by_a_process_that_died_expires_spent(
    redis_client: redis.Redis,
) -> None:
    limits, client = limiter(redis_client, hold_s=0.5), address()
    for _ in range(BURST):
        assert (await limits.begin("login", client)).allowed  # never ended
    await asyncio.sleep(0.7)
    verdict = await asyncio.wait_for(limits.begin("login", client), 0.5)
    assert not verdict.allowed and not verdict.busy  # spent, as a guess would have been


async def test_a_request_that_always_counts_never_waits(redis_client: redis.Redis) -> None:
    limits, client = limiter(redis_client), address()
    held = await limits.begin("register", client)
    assert (await limits.take("register", client)).allowed
    refused = await asyncio.wait_for(limits.take("register", client), 0.5)
    assert not refused.allowed and not refused.busy
    await limits.end("register", client, held.hold, failed=False)
    assert (await limits.take("register", client)).allowed  # the token given back
