"""Idempotency-Key for unsafe requests, with the IETF httpapi draft's semantics
(draft-ietf-httpapi-idempotency-key-header):

- the first request with a key runs, and its response (success or a business refusal) is
  kept for ``keep_for``;
- the same key with the same request fingerprint gets that response replayed, without
  running anything again;
- the same key with a different fingerprint is refused (422, IdempotencyMismatch);
- the same key while the first request still runs is refused (409, IdempotencyConflict).

A request that fails for a transient reason (a backend down: InfraError) keeps nothing, so the
client's retry with the same key runs for real. Keys are per user: one shopper's key never
meets another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from ecomctl.errors import (
    IdempotencyConflict,
    IdempotencyMismatch,
    InfraError,
    ValidationFailed,
)
from ecomctl.services.ports.idempotency import IdempotencyStore, KeyState, StoredResponse

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyPolicy:
    keep_for: timedelta = timedelta(hours=24)
    lease: timedelta = timedelta(seconds=60)
    """A request running longer than this is presumed dead; its key may be taken over."""
    keep_per_user: int = 1000
    """Finished keys kept per user at most (the newest): a client minting a key per
    request cannot grow the table without bound within the day keys are kept."""


@dataclass(frozen=True)
class Replayable:
    response: StoredResponse
    replayed: bool


def fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable() or key != key.strip():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return key


class IdempotencyService:
    def __init__(self, store: IdempotencyStore, policy: IdempotencyPolicy | None = None) -> None:
        self._store = store
        self.policy = policy or IdempotencyPolicy()

    async def run(
        self, user_id: int, key: str, request_fingerprint: str,
        operation: Callable[[], Awaitable[StoredResponse]],
        refusal: Callable[[Exception], StoredResponse | None],
    ) -> Replayable:
        """Run ``operation`` once per (user, key). ``refusal`` turns an exception into the
        response to keep (a business refusal), or None to keep nothing and re-raise."""
        claim = await self._store.claim(
            user_id, check_key(key), request_fingerprint,
            keep_for=self.policy.keep_for, lease=self.policy.lease,
        )
        if claim.state is KeyState.MISMATCH:
            raise IdempotencyMismatch()
        if claim.state is KeyState.RUNNING:
            raise IdempotencyConflict()
        if claim.state is KeyState.DONE:
            assert claim.response is not None
            return Replayable(claim.response, replayed=True)
        try:
            response = await operation()
        except InfraError:
            await self._store.abandon(user_id, key)
            raise
        except Exception as exc:
            kept = refusal(exc)
            if kept is None:
                await self._store.abandon(user_id, key)
                raise
            await self._store.finish(user_id, key, kept)
            raise
        except BaseException:  # cancelled (client gone, shutdown): a retry may run again
            await self._store.abandon(user_id, key)
            raise
        await self._store.finish(user_id, key, response)
        return Replayable(response, replayed=False)

    async def purge(self, batch: int = 1000) -> int:
        """Forget expired keys and each user's keys beyond the cap, in batches of ``batch``
        rows until a batch finds nothing (so the purge keeps up with any write rate; a short
        batch proves nothing when another process purges too); how many."""
        purged = 0
        while (done := await self._store.purge_expired(batch)) > 0:
            purged += done
        while (done := await self._store.purge_excess(self.policy.keep_per_user, batch)) > 0:
            purged += done
        return purged
