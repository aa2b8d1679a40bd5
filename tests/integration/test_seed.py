"""``ecomctl seed`` on the real backends, in a scratch database of its own.

The other integration tests share the ``ecomctl`` database, so nothing here touches it: this
module creates ``ecomctl_seed_<hex>`` (migrated like the real one), a search alias of its own
and uses Redis database 15, and drops all of it at the end.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypedDict
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as redis_lib
from elasticsearch import AsyncElasticsearch

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.migrations import load_migrations, migrate
from ecomctl.adapters.postgres.users import UserRepository
from ecomctl.adapters.product_cache import PRODUCT_CACHE_NAMESPACE
from ecomctl.adapters.redis_store import LoginThrottle, SessionStore
from ecomctl.adapters.search import ProductSearchIndex
from ecomctl.adapters.seeding.bulk_load import (
    SeedIntegrityError,
    skip_row_triggers,
    verify_foreign_keys,
)
from ecomctl.adapters.seeding.cache_reset import clear_shop_keys
from ecomctl.adapters.seeding.checksum import table_checksums
from ecomctl.config import Settings
from ecomctl.domain.search import SearchQuery
from ecomctl.errors import AuthenticationFailed, ConfigError
from ecomctl.resources import fixtures_dir
from ecomctl.seed import load_credentials, make_plan
from ecomctl.seed.run import SeedReport, seed_shop
from ecomctl.services.user import UserService, default_hasher
from ecomctl.telemetry.spans import ServiceTracer
from tests.cli_runner import CliResult, run_ecomctl


class _Counts(TypedDict):
    users: int
    categories: int
    products: int
    orders: int


COUNTS: _Counts = {"users": 100, "categories": 10, "products": 300, "orders": 300}
REDIS_DB = 15
EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@dataclasses.dataclass(frozen=True)
class Scratch:
    settings: Settings
    alias: str
    credentials: Path
    db: Database
    redis: redis_lib.Redis
    cache: redis_lib.Redis


def _with_path(url: str, path: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=path))


@pytest.fixture(scope="module")
async def scratch(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Scratch]:
    name = f"ecomctl_seed_{uuid.uuid4().hex[:12]}"
    alias = f"ecomctl-seed-test-{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_path(settings.database_url, f"/{name}")
    redis_url = _with_path(settings.redis_url, f"/{REDIS_DB}")
    cache_url = _with_path(settings.redis_cache_url, f"/{REDIS_DB}")
    client = redis_lib.Redis.from_url(redis_url)
    cache = redis_lib.Redis.from_url(cache_url)
    db: Database | None = None
    try:
        await migrate(url, load_migrations(fixtures_dir() / "migrations"))
        db = await Database.connect(url, max_size=4)
        yield Scratch(
            settings=dataclasses.replace(settings, database_url=url, redis_url=redis_url,
                                         redis_cache_url=cache_url),
            alias=alias,
            credentials=tmp_path_factory.mktemp("seed") / "shoppers.json",
            db=db,
            redis=client,
            cache=cache,
        )
    finally:
        if db is not None:
            await db.close()
        es = AsyncElasticsearch(settings.elasticsearch_url)
        found = await es.indices.get(index=f"{alias}*", ignore_unavailable=True)
        if found:
            await es.indices.delete(index=",".join(found))
        await es.close()
        await clear_shop_keys(client)
        await clear_shop_keys(cache)
        await client.aclose()
        await cache.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def seed(
    scratch: Scratch, seed: int = 42, *, reset: bool = True, warm: int = 0
) -> SeedReport:
    return await seed_shop(
        scratch.settings, make_plan("small", seed=seed, **COUNTS), reset=reset,
        credentials_path=scratch.credentials, search_alias=scratch.alias, warm_cache=warm,
    )


async def test_reseeding_with_the_same_seed_is_byte_identical(scratch: Scratch) -> None:
    first = await seed(scratch, 42)
    before = await table_checksums(scratch.db)
    second = await seed(scratch, 42)
    after = await table_checksums(scratch.db)
    assert before == after
    for table in ("users", "products", "orders", "order_items", "payments", "shipments"):
        assert before[table] != EMPTY_MD5, table
    assert first.seeded and second.seeded
    rows = {t.step: t.rows for t in second.tables}
    assert rows["users"] == 100 and rows["categories"] == 10 and rows["products"] == 300
    assert rows["orders"] == rows["payments"] == rows["shipments"] == 300
    async with scratch.db.connection() as conn:
        for table, count in rows.items():
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == count, table


async def test_the_number_of_workers_does_not_change_the_data(scratch: Scratch) -> None:
    """Rows built in one thread and in worker processes checksum the same."""
    plan = make_plan("small", users=1_500, categories=20, products=9_000, orders=12_000)
    reports, checksums = [], []
    for workers in (1, 2, 3):
        reports.append(await seed_shop(
            scratch.settings, plan, reset=True, credentials_path=scratch.credentials,
            search_alias=scratch.alias, workers=workers,
        ))
        checksums.append(await table_checksums(scratch.db))
    assert [report.workers for report in reports] == [0, 2, 2]  # 22,500 rows: two at most
    assert checksums[0] == checksums[1] == checksums[2]
    assert checksums[0]["orders"] != EMPTY_MD5
    assert [s.user_id for s in load_credentials(scratch.credentials).shoppers] == list(
        range(1, 1_501)
    )


async def test_a_different_seed_gives_different_data(scratch: Scratch) -> None:
    await seed(scratch, 42)
    forty_two = await table_checksums(scratch.db)
    await seed(scratch, 7)
    seven = await table_checksums(scratch.db)
    for table in ("users", "products", "inventory", "orders", "order_items", "payments",
                  "shipments"):
        assert forty_two[table] != seven[table], table
    assert forty_two["categories"] == seven["categories"]  # the department tree is fixed


async def test_without_reset_a_seeded_shop_is_left_alone(scratch: Scratch) -> None:
    await seed(scratch, 42)
    before = await table_checksums(scratch.db)
    credentials = scratch.credentials.read_bytes()
    report = await seed(scratch, 7, reset=False)
    assert not report.seeded
    assert report.existing_products == 300
    assert report.message == "already seeded: 300 products; use --reset"
    assert await table_checksums(scratch.db) == before
    assert scratch.credentials.read_bytes() == credentials


async def test_a_non_empty_shop_without_products_needs_reset(scratch: Scratch) -> None:
    async with scratch.db.connection() as conn:
        await conn.execute("TRUNCATE users, categories, products, inventory, orders, "
                           "order_items, inventory_reservations, payments, shipments CASCADE")
    await UserRepository(scratch.db).create("someone@example.com", "Some One", "x")
    with pytest.raises(ConfigError, match="use --reset"):
        await seed(scratch, 42, reset=False)


async def test_business_invariants_hold_in_sql(scratch: Scratch) -> None:
    await seed(scratch, 42)
    async with scratch.db.connection() as conn:
        stock = await conn.fetchrow(
            "SELECT min(on_hand) AS min_on_hand, max(reserved) AS max_reserved, "
            "sum(sold) AS sold FROM inventory"
        )
        assert stock["min_on_hand"] >= 0 and stock["max_reserved"] == 0
        assert await conn.fetchval(
            "SELECT count(*) FROM inventory i LEFT JOIN (SELECT product_id, sum(quantity) AS n "
            "FROM order_items GROUP BY product_id) s USING (product_id) "
            "WHERE i.sold <> coalesce(s.n, 0)"
        ) == 0
        assert stock["sold"] == await conn.fetchval(
            "SELECT sum(quantity) FROM inventory_reservations WHERE status = 'committed'"
        )
        captured = await conn.fetchval(
            "SELECT sum(amount) FROM payments WHERE status = 'captured'"
        )
        paid_totals = await conn.fetchval(
            "SELECT sum(total) FROM orders WHERE status IN ('paid', 'shipped', 'delivered')"
        )
        assert captured == paid_totals and captured > 0
        assert await conn.fetchval(
            "SELECT count(*) FROM orders o WHERE o.status IN ('paid', 'shipped', 'delivered') "
            "AND (SELECT count(*) FROM shipments s WHERE s.order_id = o.id) <> 1"
        ) == 0
        assert await conn.fetchval(
            "SELECT count(*) FROM orders o WHERE o.total <> "
            "(SELECT sum(quantity * unit_price) FROM order_items i WHERE i.order_id = o.id)"
        ) == 0
    # The identity sequences continue after the seeded ids.
    user = await UserRepository(scratch.db).create(
        f"new-{uuid.uuid4().hex[:8]}@example.com", "New Shopper", "x"
    )
    assert user.id == COUNTS["users"] + 1


async def test_foreign_keys_are_verified_when_row_triggers_are_skipped(
    scratch: Scratch,
) -> None:
    await seed(scratch, 42)
    async with scratch.db.connection() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            assert await skip_row_triggers(conn)  # the local stack's role is a superuser
            await verify_foreign_keys(conn, ("order_items",))
            await conn.execute(
                "UPDATE order_items SET product_id = 999999 "
                "WHERE ctid = (SELECT ctid FROM order_items LIMIT 1)"
            )
            with pytest.raises(SeedIntegrityError, match="order_items_product_id_fkey"):
                await verify_foreign_keys(conn, ("order_items",))
        finally:
            await tx.rollback()


async def test_seeded_products_are_searchable(scratch: Scratch) -> None:
    report = await seed(scratch, 42)
    async with scratch.db.connection() as conn:
        active = await conn.fetchval("SELECT count(*) FROM products WHERE active")
        picked = await conn.fetch(
            "SELECT id, name FROM products WHERE active ORDER BY id LIMIT 3 OFFSET 40"
        )
        inactive = await conn.fetchval("SELECT min(id) FROM products WHERE NOT active")
    assert report.search is not None and report.search.rows == active
    index = ProductSearchIndex.from_url(scratch.settings.elasticsearch_url, scratch.alias)
    try:
        assert await index.count() == active
        for product in picked:
            page = await index.search(SearchQuery(text=product["name"]))
            assert page.items[0].product_id == product["id"], product["name"]
        if inactive is not None:
            async with scratch.db.connection() as conn:
                name = await conn.fetchval("SELECT name FROM products WHERE id = $1", inactive)
            page = await index.search(SearchQuery(text=name, page_size=100))
            assert inactive not in {hit.product_id for hit in page.items}
    finally:
        await index.close()


async def test_credentials_file_lets_shoppers_log_in(scratch: Scratch) -> None:
    await seed(scratch, 42)
    assert stat.S_IMODE(os.stat(scratch.credentials).st_mode) == 0o600
    credentials = load_credentials(scratch.credentials)
    assert credentials.seed == 42
    assert [s.user_id for s in credentials.shoppers] == list(range(1, COUNTS["users"] + 1))
    async with scratch.db.connection() as conn:
        emails = dict(await conn.fetch("SELECT id, email FROM users"))
    assert {s.user_id: s.email for s in credentials.shoppers} == emails

    hasher = default_hasher()
    users = UserService(
        UserRepository(scratch.db), SessionStore(scratch.redis), LoginThrottle(scratch.redis),
        ServiceTracer("seed-test"), hasher,
    )
    shopper = credentials.shoppers[17]
    token, user = await users.login(shopper.email, shopper.password)
    assert user.id == shopper.user_id and token
    async with scratch.db.connection() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
    assert not hasher.check_needs_rehash(stored)  # the cheap seeding hash was upgraded
    with pytest.raises(AuthenticationFailed):
        await users.login(credentials.shoppers[3].email, "not-the-password")


async def test_reset_clears_shop_keys_and_can_warm_the_product_cache(scratch: Scratch) -> None:
    await scratch.redis.set("ecomctl:cart:1", "stale")
    await scratch.cache.set(f"{PRODUCT_CACHE_NAMESPACE}:1", "stale")
    report = await seed(scratch, 42, warm=25)
    assert await scratch.redis.get("ecomctl:cart:1") is None
    assert report.redis_keys_removed >= 2
    assert report.cache is not None and report.cache.rows == 25
    async with scratch.db.connection() as conn:
        best = await conn.fetch(
            "SELECT p.id FROM products p JOIN inventory i ON i.product_id = p.id "
            "WHERE p.active ORDER BY i.sold DESC, p.id LIMIT 25"
        )
    keys = [f"{PRODUCT_CACHE_NAMESPACE}:{row['id']}" for row in best]
    assert await scratch.redis.mget(keys) == [None] * len(keys)  # the cache has its own Redis
    cached = await scratch.cache.mget(keys)
    assert all(raw is not None and raw != b"stale" for raw in cached)
    assert cached[0] is not None
    assert json.loads(cached[0])["id"] == best[0]["id"]


def _run_cli(scratch: Scratch, *args: str) -> CliResult:
    env = {
        "COLUMNS": "200",
        "DATABASE_URL": scratch.settings.database_url,
        "REDIS_URL": scratch.settings.redis_url,
        "REDIS_CACHE_URL": scratch.settings.redis_cache_url,
        "ECOMCTL_SEARCH_ALIAS": scratch.alias,
    }
    return run_ecomctl("seed", *args, "--credentials", str(scratch.credentials), env=env,
                       timeout=120)


def test_cli_seeds_and_prints_the_summary_as_json(scratch: Scratch) -> None:
    counts = ["--users", "50", "--products", "100", "--categories", "5", "--orders", "50"]
    result = _run_cli(scratch, *counts, "--reset", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["seeded"] is True
    rows = {table["step"]: table["rows"] for table in summary["tables"]}
    assert rows["users"] == 50 and rows["products"] == rows["inventory"] == 100
    assert rows["categories"] == 5
    assert rows["orders"] == rows["payments"] == rows["shipments"] == 50
    assert summary["total"]["rows"] == sum(rows.values())
    assert summary["total"]["rows_per_s"] > 0
    assert 90 <= summary["search_index"]["rows"] <= 100  # active products only
    assert summary["plan"]["seed"] == 42
    assert len(load_credentials(scratch.credentials).shoppers) == 50

    again = _run_cli(scratch, *counts, "--json")
    assert again.exit_code == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["message"] == "already seeded: 100 products; use --reset"

    human = _run_cli(scratch, *counts)
    assert human.exit_code == 0 and "already seeded: 100 products" in human.stdout

    invalid = _run_cli(scratch, "--categories", "5", "--products", "3")
    assert invalid.exit_code == 2, invalid.stdout + invalid.stderr
    assert "at least categories" in invalid.stderr
