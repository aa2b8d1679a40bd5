"""Small, uniquely named shop data for tests: a category with stocked products, and users.

Rows go straight into PostgreSQL (and the search index when asked) so that each test owns
its data and never depends on what another test or a seed left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from ecomctl.adapters.postgres.users import UserRepository
from ecomctl.bootstrap import ShopStack
from ecomctl.domain.models import Product, User
from ecomctl.domain.search import ProductDocument


@dataclass(frozen=True)
class Catalogue:
    slug: str
    products: list[Product]

    @property
    def ids(self) -> list[int]:
        return [p.id for p in self.products]


async def make_catalogue(
    shop: ShopStack,
    count: int,
    *,
    stock: int = 100,
    price: Decimal = Decimal("10.00"),
    index: bool = False,
    word: str | None = None,
) -> Catalogue:
    slug = f"t-{uuid.uuid4().hex[:10]}"
    word = word or slug.replace("-", "")
    async with shop.db.transaction() as conn:
        category_id = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ($1, $2) RETURNING id", slug, slug.upper()
        )
        ids = [
            await conn.fetchval(
                "INSERT INTO products (sku, name, description, category_id, price) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                f"{slug}-{i}", f"{word} item {i}", f"test product {i} of {slug}",
                category_id, price + i,
            )
            for i in range(count)
        ]
        await conn.executemany(
            "INSERT INTO inventory (product_id, on_hand) VALUES ($1, $2)",
            [(pid, stock) for pid in ids],
        )
    products = await shop.services.products.get_many(ids)
    catalogue = Catalogue(slug, [products[pid] for pid in ids])
    if index:
        await shop.services.search.index_products(
            [ProductDocument.from_product(p, slug.upper()) for p in catalogue.products],
            refresh=True,
        )
    return catalogue


async def make_users(shop: ShopStack, count: int) -> list[User]:
    """Users without a usable password (checkout tests call the services directly)."""
    repo = UserRepository(shop.db)
    tag = uuid.uuid4().hex[:10]
    return [
        await repo.create(f"t-{tag}-{i}@example.test", f"Test {i}", "not-a-hash")
        for i in range(count)
    ]


@asynccontextmanager
async def gateway_faults(shop: ShopStack, **changes: Any) -> AsyncIterator[None]:
    """The shop's payment gateway simulator misbehaving (timeouts, declines...) for a while."""
    assert shop.payment_gateway is not None
    simulator = shop.payment_gateway.simulator
    before = simulator.config
    simulator.update_config(**changes)
    try:
        yield
    finally:
        simulator.update_config(**before.to_dict())


SHOPPER_PASSWORD = "s3cret-pass"


async def http_login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """A shopper of http_shopper's logs in (again): the Authorization header to send."""
    login = await client.post("/api/users/login",
                              json={"email": email, "password": SHOPPER_PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


async def http_shopper(client: httpx.AsyncClient, email: str | None = None
                       ) -> tuple[dict[str, str], int]:
    """A new shopper registered and logged in over HTTP, as a browser would: the
    Authorization header to send, and the user's id."""
    email = email or f"shopper-{uuid.uuid4().hex[:12]}@example.test"
    created = await client.post("/api/users/register", json={
        "email": email, "password": SHOPPER_PASSWORD, "full_name": "Careful Shopper"})
    assert created.status_code == 201, created.text
    return await http_login(client, email), int(created.json()["id"])
