"""What virtual shoppers pick from: sampled from the seeded shop."""

from __future__ import annotations

import random
import re

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.operations import in_stock_products
from ecomctl.errors import ConfigError
from ecomctl.journeys.shopper import CatalogueSample

_WORD = re.compile(r"[A-Za-z]{4,}")


async def sample_catalogue(db: Database, seed: int, size: int = 500) -> CatalogueSample:
    """Up to ``size`` in-stock products (a seeded, reproducible choice), their categories, and
    words from their names to search for."""
    rows = await in_stock_products(db)
    if not rows:
        raise ConfigError("the shop has no products in stock: run `ecomctl seed` first")
    rng = random.Random(seed)
    chosen = rng.sample(list(rows), min(size, len(rows)))
    words = sorted({w.lower() for _, name, _ in chosen for w in _WORD.findall(name)})
    return CatalogueSample(
        product_ids=[product_id for product_id, _, _ in chosen],
        categories=sorted({slug for _, _, slug in chosen}),
        search_words=words or ["shop"],
    )
