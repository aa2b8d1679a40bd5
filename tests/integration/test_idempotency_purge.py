"""The idempotency keys stay bounded on the real PostgreSQL: the purge empties every expired
key however many there are (batch after batch), and keeps at most the newest N finished
keys of a user (a client minting a key per request)."""

from __future__ import annotations

import asyncio
import random

from ecomctl.adapters.postgres.idempotency import PostgresIdempotencyStore
from ecomctl.bootstrap import ShopStack
from ecomctl.services.idempotency import IdempotencyPolicy, IdempotencyService

_INSERT = """
INSERT INTO idempotency_keys (user_id, key, fingerprint, response_status, response_body,
                              created_at, expires_at)
SELECT $1::bigint, 'k-' || n, 'f', $2::int,
       CASE WHEN $2::int IS NULL THEN NULL ELSE '{}'::jsonb END,
       now() - make_interval(secs => $3::int - n), now() + make_interval(secs => $4::int)
FROM generate_series(1, $3::int) AS n
"""


async def test_the_purge_keeps_up_and_caps_each_users_keys(shop: ShopStack) -> None:
    flooder, minter = (-random.randint(10**9, 10**12) for _ in range(2))
    keep = 5
    service = IdempotencyService(PostgresIdempotencyStore(shop.db),
                                 IdempotencyPolicy(keep_per_user=keep))
    async with shop.db.connection() as conn:
        await conn.execute(_INSERT, flooder, 200, 2500, -60)  # 2,500 expired a minute ago
        await conn.execute(_INSERT, minter, 200, 12, 3600)  # 12 finished, kept for an hour
        await conn.execute("INSERT INTO idempotency_keys (user_id, key, fingerprint, "
                           "expires_at) VALUES ($1, 'running', 'f', now() + interval '1h')",
                           minter)

    await service.purge(batch=1000)

    async def left_now() -> dict[int, list[str]]:
        async with shop.db.connection() as conn:
            return {row["user_id"]: row["keys"] for row in await conn.fetch(
                "SELECT user_id, array_agg(key ORDER BY key) AS keys FROM idempotency_keys "
                "WHERE user_id = ANY($1::bigint[]) GROUP BY user_id", [flooder, minter])}

    # The running shop's housekeeping may purge alongside (each skips the rows the other
    # holds): what it still holds is gone a moment later.
    left = await left_now()
    for _ in range(50):
        if flooder not in left:
            break
        await asyncio.sleep(0.1)
        left = await left_now()
    async with shop.db.connection() as conn:
        await conn.execute("DELETE FROM idempotency_keys WHERE user_id = ANY($1::bigint[])",
                           [flooder, minter])
    assert flooder not in left  # three batches and a last, short one: all gone
    # The newest five finished keys, and the running one (never cut short).
    assert left[minter] == sorted(["running", *(f"k-{n}" for n in range(8, 13))])
