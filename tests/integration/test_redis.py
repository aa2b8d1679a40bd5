from __future__ import annotations

import uuid

import redis.asyncio as redis

from ecomctl.config import Settings


async def test_set_get_and_expiry(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    key = f"it:{uuid.uuid4().hex}"
    try:
        assert await client.set(key, "basket", ex=60)
        assert await client.get(key) == b"basket"
        assert 0 < await client.ttl(key) <= 60
        assert await client.get(f"{key}:absent") is None
    finally:
        await client.delete(key)
        await client.aclose()
