"""The product cache as every process builds it: one namespace (so invalidations reach all
of them) and one JSON encoding of a Product."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from redis.asyncio import Redis

from ecomctl.adapters.cache import TieredCache
from ecomctl.domain.models import Product
from ecomctl.telemetry.metrics import ShopMetrics

# Bump the suffix whenever the cached JSON changes shape: old entries then simply go unread.
PRODUCT_CACHE_NAMESPACE = "product:v1"


def encode_product(product: Product) -> str:
    """Compact JSON; the price travels as a string so it stays an exact Decimal."""
    return json.dumps(
        {
            "id": product.id, "sku": product.sku, "name": product.name,
            "description": product.description, "category_id": product.category_id,
            "category_slug": product.category_slug, "price": str(product.price),
            "currency": product.currency, "active": product.active, "version": product.version,
        },
        separators=(",", ":"),
    )


def decode_product(raw: str) -> Product:
    data: dict[str, Any] = json.loads(raw)
    return Product(
        id=int(data["id"]), sku=data["sku"], name=data["name"],
        description=data["description"], category_id=int(data["category_id"]),
        category_slug=data["category_slug"], price=Decimal(data["price"]),
        currency=data["currency"], active=bool(data["active"]), version=int(data["version"]),
    )


def product_cache(
    redis: Redis, *, metrics: ShopMetrics | None = None, **options: Any
) -> TieredCache[Product]:
    """``options`` go to TieredCache (l1_size, l1_ttl_s, l2_ttl_s...)."""
    return TieredCache(
        redis, namespace=PRODUCT_CACHE_NAMESPACE, encode=encode_product, decode=decode_product,
        metrics=metrics, service="product", **options,
    )
