"""The port of the Idempotency-Key store (PostgreSQL: ``adapters/postgres/idempotency``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, Protocol


class KeyState(StrEnum):
    NEW = "new"  # the caller owns the key now: run the request, then finish or abandon
    RUNNING = "running"  # another request with this key has not finished
    DONE = "done"  # finished: replay ``response``
    MISMATCH = "mismatch"  # used before with another request fingerprint


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class KeyClaim:
    state: KeyState
    response: StoredResponse | None = None


class IdempotencyStore(Protocol):
    async def claim(
        self, user_id: int, key: str, fingerprint: str, *, keep_for: timedelta,
        lease: timedelta,
    ) -> KeyClaim:
        """Take the key for a new request, or say why not. A RUNNING claim older than
        ``lease`` (its process died) is taken over."""
        ...

    async def finish(self, user_id: int, key: str, response: StoredResponse) -> None: ...

    async def abandon(self, user_id: int, key: str) -> None:
        """Forget a claim whose request failed for a transient reason: a retry runs again."""
        ...

    async def purge_expired(self, limit: int) -> int: ...

    async def purge_excess(self, keep_per_user: int, limit: int) -> int:
        """Forget each user's oldest finished keys beyond their newest ``keep_per_user``
        (at most ``limit`` rows); how many."""
        ...
