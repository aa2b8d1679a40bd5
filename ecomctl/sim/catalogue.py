"""What virtual shoppers pick from: sampled from the seeded shop."""

from __future__ import annotations

import random
import re

from ecomctl.adapters.postgres.database import Database
from ecomctl.errors import ConfigError
from ecomctl.sim.journeys import CatalogueSample

_WORD = re.compile(r"[A-Za-z]{4,}")


async def sample_catalogue(db: Database, seed: int, size: int = 500) -> CatalogueSample:
    """Up to ``size`` in-stock products (a seeded, reproducible choice), their categories, and
    words from their names to search for."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT p.id, p.name, c.slug FROM products p "
            "JOIN categories c ON c.id = p.category_id "
            "JOIN inventory i ON i.product_id = p.id "
            "WHERE p.active AND i.on_hand - i.reserved > 0 ORDER BY p.id"
        )
    if not rows:
        raise ConfigError("the shop has no products in stock: run `ecomctl seed` first")
    rng = random.Random(seed)
    chosen = rng.sample(list(rows), min(size, len(rows)))
    words = sorted({w.lower() for r in chosen for w in _WORD.findall(r["name"])})
    return CatalogueSample(
        product_ids=[r["id"] for r in chosen],
        categories=sorted({r["slug"] for r in chosen}),
        search_words=words or ["shop"],
    )
