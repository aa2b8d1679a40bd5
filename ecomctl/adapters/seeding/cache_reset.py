"""Redis after a seed: forget what described the previous shop (sessions, carts, cached
products and recommendations, login throttles), and optionally warm the product cache."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.products import ProductRepository
from ecomctl.adapters.product_cache import PRODUCT_CACHE_NAMESPACE, product_cache
from ecomctl.adapters.redis_store import PREFIX
from ecomctl.domain.models import Product
from ecomctl.errors import BackendUnavailable

# ``ecomctl:`` holds sessions, carts, throttles and recommendations; the product cache has
# its own namespace. Both describe rows that a reseed replaces under the same ids.
SHOP_KEY_PATTERNS = (f"{PREFIX}*", f"{PRODUCT_CACHE_NAMESPACE}:*")
_SCAN_COUNT = 1_000

_MOST_SOLD = """
SELECT p.id FROM products p JOIN inventory i ON i.product_id = p.id
WHERE p.active ORDER BY i.sold DESC, p.id LIMIT $1
"""


async def clear_shop_keys(redis: Redis) -> int:
    """UNLINK every shop key (SCAN in pages, so Redis is never blocked); returns how many."""
    removed = 0
    try:
        for pattern in SHOP_KEY_PATTERNS:
            batch: list[bytes] = []
            async for key in redis.scan_iter(match=pattern, count=_SCAN_COUNT):
                batch.append(key)
                if len(batch) >= _SCAN_COUNT:
                    removed += await redis.unlink(*batch)
                    batch.clear()
            if batch:
                removed += await redis.unlink(*batch)
    except (RedisError, OSError) as exc:
        raise BackendUnavailable("redis", f"clearing shop keys: {exc}") from exc
    return removed


async def warm_product_cache(redis: Redis, db: Database, limit: int) -> int:
    """Put the ``limit`` best-selling active products into the product cache's Redis level
    (L2), through the same ``product_cache()`` every process reads; returns how many."""
    async with db.connection() as conn:
        ids = [str(row["id"]) for row in await conn.fetch(_MOST_SOLD, limit)]
    cache = product_cache(redis)
    repo = ProductRepository(db)

    async def load(keys: list[str]) -> dict[str, Product]:
        products = await repo.get_many([int(key) for key in keys])
        return {str(pid): product for pid, product in products.items()}

    found = await cache.get_many(ids, load)
    if cache.redis_errors:  # the cache swallows Redis errors by design; a warm-up must not
        raise BackendUnavailable("redis", "warming the product cache failed")
    return len(found)
