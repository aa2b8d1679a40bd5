"""Recommendations cached in Redis with a TTL (under ``ecomctl:``, so a reseed clears them).

Redis failures become ecomctl errors here: ``BackendUnavailable`` when Redis cannot be
reached, ``InfraError`` for anything else it refused; the service treats both as a miss."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis.asyncio as redis
import redis.exceptions as redis_errors

from ecomctl.adapters.redis_store import PREFIX
from ecomctl.errors import BackendUnavailable, InfraError

_UNAVAILABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


def recommendation_key(seeds: Sequence[int], limit: int) -> str:
    return f"{PREFIX}reco:{limit}:{','.join(map(str, seeds))}"


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise BackendUnavailable("redis", f"{operation}: {exc or type(exc).__name__}") from exc
    except redis_errors.RedisError as exc:
        raise InfraError(f"redis {operation}: {exc}") from exc


class RedisRecommendationCache:
    def __init__(self, client: redis.Redis, *, ttl_s: int = 300) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    async def get(self, seeds: Sequence[int], limit: int) -> list[int] | None:
        with _translated("reading recommendations"):
            raw = await self._redis.get(recommendation_key(seeds, limit))
        return [int(pid) for pid in json.loads(raw)] if raw else None

    async def put(self, seeds: Sequence[int], limit: int, product_ids: Sequence[int]) -> None:
        with _translated("caching recommendations"):
            await self._redis.set(
                recommendation_key(seeds, limit), json.dumps(list(product_ids)), ex=self._ttl_s
            )
