"""Where the bench runs: a scratch PostgreSQL database, Redis database, search alias and Kafka
topic prefix on the same servers as the user's shop, so measuring never touches the shop's
data or events."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ecomctl.adapters.postgres.database import connect_single
from ecomctl.config import Settings

SCRATCH_DB = "ecomctl_bench"
PGBENCH_DB = "ecomctl_bench_pgbench"
SCRATCH_REDIS_DB = 15
SCRATCH_SEARCH_ALIAS = "ecomctl-bench-products"
SCRATCH_TOPIC_PREFIX = "ecomctl-bench."


def database_url(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def scratch_env(settings: Settings) -> dict[str, str]:
    """The variables that point ecomctl at the scratch places."""
    redis, cache = urlsplit(settings.redis_url), urlsplit(settings.redis_cache_url)
    return {
        "DATABASE_URL": database_url(settings.database_url, SCRATCH_DB),
        "REDIS_URL": urlunsplit(redis._replace(path=f"/{SCRATCH_REDIS_DB}")),
        "REDIS_CACHE_URL": urlunsplit(cache._replace(path=f"/{SCRATCH_REDIS_DB}")),
        "ECOMCTL_SEARCH_ALIAS": SCRATCH_SEARCH_ALIAS,
        "ECOMCTL_KAFKA_TOPIC_PREFIX": SCRATCH_TOPIC_PREFIX,
    }


async def recreate_database(admin_url: str, name: str) -> None:
    """Drop (disconnecting its sessions) and create ``name``; needs CREATEDB, which the
    local stack's user has."""
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                 f'CREATE DATABASE "{name}"')


async def drop_database(admin_url: str, name: str) -> None:
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(admin_url: str, *statements: str) -> None:
    conn = await connect_single(admin_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
