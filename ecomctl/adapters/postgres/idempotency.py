"""Idempotency keys in PostgreSQL: one row per (user, key), claimed with one INSERT, so two
concurrent requests with one key cannot both run (the loser sees the winner's row)."""

from __future__ import annotations

import json
from datetime import timedelta

from ecomctl.adapters.postgres.database import Database
from ecomctl.services.ports.idempotency import KeyClaim, KeyState, StoredResponse

# Insert the claim, or take over an expired or abandoned-by-a-dead-process one; return
# nothing when a live row exists (then it is read back to say why).
_CLAIM = """
INSERT INTO idempotency_keys (user_id, key, fingerprint, expires_at)
VALUES ($1, $2, $3, now() + $4::interval)
ON CONFLICT (user_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, created_at = now(),
        expires_at = EXCLUDED.expires_at, response_status = NULL, response_body = NULL
    WHERE idempotency_keys.expires_at <= now()
       OR (idempotency_keys.response_status IS NULL
           AND idempotency_keys.fingerprint = EXCLUDED.fingerprint
           AND idempotency_keys.created_at <= now() - $5::interval)
RETURNING 1
"""

_READ = """
SELECT fingerprint, response_status, response_body FROM idempotency_keys
WHERE user_id = $1 AND key = $2
"""


# Each user's finished keys past their newest ``$1`` (running claims are left alone).
_PURGE_EXCESS = """
DELETE FROM idempotency_keys WHERE ctid IN (
    SELECT ctid FROM (
        SELECT ctid, row_number() OVER (PARTITION BY user_id ORDER BY created_at DESC) AS newest
        FROM idempotency_keys WHERE response_status IS NOT NULL
    ) ranked
    WHERE newest > $1 LIMIT $2
) RETURNING 1
"""


class PostgresIdempotencyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, user_id: int, key: str, fingerprint: str, *, keep_for: timedelta,
        lease: timedelta,
    ) -> KeyClaim:
        async with self._db.connection() as conn:
            if await conn.fetchval(_CLAIM, user_id, key, fingerprint, keep_for, lease):
                return KeyClaim(KeyState.NEW)
            row = await conn.fetchrow(_READ, user_id, key)
        if row is None:  # purged between the two statements: the next try claims it
            return KeyClaim(KeyState.RUNNING)
        if row["fingerprint"] != fingerprint:
            return KeyClaim(KeyState.MISMATCH)
        if row["response_status"] is None:
            return KeyClaim(KeyState.RUNNING)
        return KeyClaim(KeyState.DONE, StoredResponse(row["response_status"],
                                                      json.loads(row["response_body"])))

    async def finish(self, user_id: int, key: str, response: StoredResponse) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4::jsonb "
                "WHERE user_id = $1 AND key = $2",
                user_id, key, response.status, json.dumps(response.body),
            )

    async def abandon(self, user_id: int, key: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 "
                "AND response_status IS NULL", user_id, key,
            )

    async def purge_excess(self, keep_per_user: int, limit: int) -> int:
        async with self._db.connection() as conn:
            rows = await conn.fetch(_PURGE_EXCESS, keep_per_user, limit)
        return len(rows)

    async def purge_expired(self, limit: int) -> int:
        async with self._db.connection() as conn:
            rows = await conn.fetch(
                # SKIP LOCKED: purgers in several processes take turns, never wait on each other.
                "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys "
                "WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING 1", limit,
            )
        return len(rows)
