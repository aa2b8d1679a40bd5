"""The catalogue in PostgreSQL: products (with their category's slug) and categories.

Reads take a pooled connection each; a write is one transaction holding the row change and
the outbox rows of the events it raises (the service says which, from the updated row)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.outbox import add_events
from ecomctl.domain.models import Category, Page, Product
from ecomctl.services.ports.catalogue import EventsFor

_COLUMNS = (
    "p.id, p.sku, p.name, p.description, p.category_id, c.slug AS category_slug, p.price, "
    "p.currency, p.active, p.version"
)
_FROM = "products p JOIN categories c ON c.id = p.category_id"

# One round trip for a page: the category row decides "unknown category" (no row at all) versus
# "empty page" (one row whose product columns are NULL); the count rides along on every row.
_LIST_BY_CATEGORY = f"""
WITH c AS (SELECT id, slug FROM categories WHERE slug = $1)
SELECT (SELECT count(*) FROM products WHERE category_id = c.id AND active) AS total, page.*
FROM c
LEFT JOIN LATERAL (
    SELECT {_COLUMNS} FROM products p
    WHERE p.category_id = c.id AND p.active
    ORDER BY p.id
    LIMIT $2 OFFSET $3
) page ON true
ORDER BY page.id
"""

# UPDATE ... FROM joins the category so the returned row is a whole Product.
_UPDATE = """
UPDATE products p SET {assignment}, version = p.version + 1, updated_at = now()
FROM categories c
WHERE p.id = $1 AND c.id = p.category_id
RETURNING """ + _COLUMNS
_UPDATE_PRICE = _UPDATE.format(assignment="price = $2")
_UPDATE_ACTIVE = _UPDATE.format(assignment="active = $2")


def _product(row: Any) -> Product:
    return Product(
        id=row["id"], sku=row["sku"], name=row["name"], description=row["description"],
        category_id=row["category_id"], category_slug=row["category_slug"], price=row["price"],
        currency=row["currency"], active=row["active"], version=row["version"],
    )


class ProductRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, product_id: int) -> Product | None:
        """The product, active or not; None if there is no such id."""
        async with self._db.connection() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.id = $1", product_id)
        return None if row is None else _product(row)

    async def get_many(self, product_ids: Sequence[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids``, in ONE query (no N+1)."""
        if not product_ids:
            return {}
        async with self._db.connection() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM {_FROM} WHERE p.id = ANY($1::bigint[])",
                list(product_ids),
            )
        return {row["id"]: _product(row) for row in rows}

    async def list_by_category(
        self, slug: str, page: int, page_size: int
    ) -> Page[Product] | None:
        """A page of the category's active products, ordered by id; None if the category does
        not exist. ``page`` starts at 1; the caller validates the bounds."""
        async with self._db.connection() as conn:
            rows = await conn.fetch(
                _LIST_BY_CATEGORY, slug, page_size, (page - 1) * page_size
            )
        if not rows:
            return None
        items = [_product(row) for row in rows if row["id"] is not None]
        return Page(items=items, page=page, page_size=page_size, total=rows[0]["total"])

    async def categories(self) -> list[Category]:
        async with self._db.connection() as conn:
            rows = await conn.fetch("SELECT id, slug, name FROM categories ORDER BY id")
        return [Category(id=row["id"], slug=row["slug"], name=row["name"]) for row in rows]

    async def update_price(
        self, product_id: int, price: Decimal, events: EventsFor
    ) -> Product | None:
        """Set the price and bump ``version``, with ``events(updated)`` in the outbox, in one
        transaction; None (nothing written) if there is no such product."""
        return await self._change(_UPDATE_PRICE, product_id, price, events)

    async def set_active(
        self, product_id: int, active: bool, events: EventsFor
    ) -> Product | None:
        """List or delist the product, as ``update_price``."""
        return await self._change(_UPDATE_ACTIVE, product_id, active, events)

    async def _change(
        self, statement: str, product_id: int, value: object, events: EventsFor
    ) -> Product | None:
        async with self._db.transaction() as conn:
            row = await conn.fetchrow(statement, product_id, value)
            if row is None:
                return None
            product = _product(row)
            await add_events(conn, events(product))
        return product
