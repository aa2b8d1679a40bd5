"""The seed's connections: one PostgreSQL connection (the load is one transaction on it),
the shop's two Redis databases and the search cluster, with their errors translated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
import redis.asyncio as redis_lib
from elasticsearch import ApiError, AsyncElasticsearch, TransportError
from redis.exceptions import RedisError

from ecomctl.adapters.postgres.database import connect_single, connection_errors
from ecomctl.config import Settings
from ecomctl.errors import BackendUnavailable, ConfigError

Connection: TypeAlias = asyncpg.Connection
Redis: TypeAlias = redis_lib.Redis
SearchClient: TypeAlias = AsyncElasticsearch


@dataclass(frozen=True)
class SeedConnections:
    postgres: Connection
    redis: Redis
    cache_redis: Redis
    """The product cache's Redis (the same server as ``redis`` unless configured apart)."""
    search: SearchClient
    separate_cache_redis: bool


@asynccontextmanager
async def seed_connections(settings: Settings) -> AsyncIterator[SeedConnections]:
    conn = await connect_single(settings.database_url)
    redis = redis_lib.Redis.from_url(settings.redis_url, socket_timeout=10,
                                     socket_connect_timeout=5)
    cache_redis = redis_lib.Redis.from_url(settings.redis_cache_url, socket_timeout=10,
                                           socket_connect_timeout=5)
    search = AsyncElasticsearch(settings.elasticsearch_url, request_timeout=60)
    try:
        yield SeedConnections(conn, redis, cache_redis, search,
                              separate_cache_redis=settings.redis_cache_url != settings.redis_url)
    finally:
        await conn.close()
        await redis.aclose()
        await cache_redis.aclose()
        await search.close()


@contextmanager
def postgres_errors() -> Iterator[None]:
    """A missing schema is a setup step left out; a lost server is an outage."""
    try:
        with connection_errors():
            yield
    except asyncpg.UndefinedTableError as exc:
        raise ConfigError(f"the shop schema is missing ({exc}): run `ecomctl db migrate`") from exc


async def check_reachable(connections: SeedConnections) -> None:
    """Fail before loading, not after, when Redis or Elasticsearch is down."""
    try:
        await connections.redis.ping()
    except (RedisError, OSError) as exc:
        raise BackendUnavailable("redis", f"ping: {exc}") from exc
    try:
        # cluster health, not ping: the integration-test distribution has no "GET /".
        health = await connections.search.cluster.health()
    except (ApiError, TransportError) as exc:
        raise BackendUnavailable("elasticsearch", f"cluster health: {exc}") from exc
    if health["status"] == "red":
        raise BackendUnavailable("elasticsearch", "cluster health is red")
