"""Seed data generation: reproducible, realistic, and consistent with the shop's invariants."""

from __future__ import annotations

import os
import stat
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from ecomctl.adapters.seeding.tables import SEEDED_TABLES, TABLE_COLUMNS
from ecomctl.errors import ConfigError
from ecomctl.seed.credentials import Shopper, load_credentials, write_credentials
from ecomctl.seed.generate import (
    BASE_TIME,
    GenerationContext,
    ShopGenerator,
    UserBlock,
    build_block,
    category_specs,
    generate,
    shopper_password,
    shopper_password_hash,
)
from ecomctl.seed.plan import PRESETS, SeedPlan, make_plan
from ecomctl.seed.vocabulary import MAX_CATEGORIES
from ecomctl.services.user import check_password, default_hasher, normalize_email

PLAN = SeedPlan(users=40, categories=30, products=250, orders=400, seed=42)
Tables = dict[str, list[tuple[Any, ...]]]


def collect(plan: SeedPlan = PLAN) -> Tables:
    tables: Tables = {table: [] for table in SEEDED_TABLES}
    for batch in generate(plan):
        tables[batch.table].extend(batch.rows)
    return tables


@pytest.fixture(scope="module")
def shop() -> Tables:
    return collect()


def by_column(tables: Tables, table: str, column: str) -> list[Any]:
    index = TABLE_COLUMNS[table].index(column)
    return [row[index] for row in tables[table]]


# -- reproducibility ------------------------------------------------------------------------


def test_same_plan_gives_identical_rows(shop: Tables) -> None:
    assert collect() == shop


def test_blocks_built_in_any_order_give_the_same_rows() -> None:
    """What lets worker processes build blocks: a block's rows depend on it and the shared
    context alone, not on the blocks built before it (nor on the process)."""
    plan = SeedPlan(users=2_500, categories=12, products=6_000, orders=6_000, seed=5)
    generator = ShopGenerator(plan)
    blocks = list(generator.blocks())
    forward = [build_block(generator.context, block) for block in blocks]
    fresh = GenerationContext.build(plan)  # as a spawned worker would build its own
    backward = [build_block(fresh, block) for block in reversed(blocks)][::-1]
    assert forward == backward
    assert sum(isinstance(block, UserBlock) for block in blocks) == 3


def test_a_different_seed_gives_different_rows(shop: Tables) -> None:
    other = collect(SeedPlan(**{**PLAN.__dict__, "seed": 43}))
    for table in ("users", "products", "orders", "order_items", "payments", "shipments",
                  "inventory"):
        assert other[table] != shop[table], table
    assert other["categories"] == shop["categories"]  # the department tree is fixed
    assert len(other["users"]) == len(shop["users"])


def test_the_locale_changes_people_not_structure(shop: Tables) -> None:
    german = collect(SeedPlan(**{**PLAN.__dict__, "locale": "de_DE"}))
    assert by_column(german, "users", "full_name") != by_column(shop, "users", "full_name")
    assert len(german["products"]) == len(shop["products"])


def test_rows_match_their_columns(shop: Tables) -> None:
    for table, rows in shop.items():
        assert rows, table
        assert {len(row) for row in rows} == {len(TABLE_COLUMNS[table])}, table


def test_counts_follow_the_plan(shop: Tables) -> None:
    assert len(shop["users"]) == PLAN.users
    assert len(shop["categories"]) == PLAN.categories
    assert len(shop["products"]) == len(shop["inventory"]) == PLAN.products
    assert len(shop["orders"]) == len(shop["payments"]) == len(shop["shipments"]) == PLAN.orders
    assert len(shop["order_items"]) == len(shop["inventory_reservations"])
    assert by_column(shop, "users", "id") == list(range(1, PLAN.users + 1))
    assert by_column(shop, "products", "id") == list(range(1, PLAN.products + 1))


# -- the business invariants, in memory ------------------------------------------------------


def test_stock_is_consistent_with_the_orders() -> None:
    generator = ShopGenerator(PLAN)
    tables: Tables = defaultdict(list)
    for batch in generator.batches():
        tables[batch.table].extend(batch.rows)
    sold: Counter[int] = Counter()
    for _, product_id, quantity, _ in tables["order_items"]:
        sold[product_id] += quantity
    initial = generator.initial_stock
    assert sum(sold.values()) > PLAN.orders  # orders have lines, some with several units
    for product_id, on_hand, reserved, sold_units in tables["inventory"]:
        assert sold_units == sold[product_id]
        assert on_hand >= 0 and reserved == 0
        assert on_hand + sold_units == initial[product_id]
    with pytest.raises(RuntimeError):
        generator.blocks()  # one pass only: the stock has been spent


def test_each_order_has_its_lines_payment_and_shipment(shop: Tables) -> None:
    lines: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for row in shop["order_items"]:
        lines[row[0]].append(row)
    payments = Counter(by_column(shop, "payments", "order_id"))
    shipments = Counter(by_column(shop, "shipments", "order_id"))
    amounts = {row[1]: row[5] for row in shop["payments"]}
    shipment_status = {row[1]: row[4] for row in shop["shipments"]}
    expected_shipment = {"paid": "created", "shipped": "in_transit", "delivered": "delivered"}
    for order_id, _, status, total, _, created, updated in shop["orders"]:
        order_lines = lines[order_id]
        assert 1 <= len(order_lines) <= 4
        assert len({line[1] for line in order_lines}) == len(order_lines)  # distinct products
        assert total == sum(line[2] * line[3] for line in order_lines)
        assert payments[order_id] == 1 and amounts[order_id] == total
        assert shipments[order_id] == 1
        assert shipment_status[order_id] == expected_shipment[status]
        assert created <= updated < BASE_TIME
    assert {row[4] for row in shop["payments"]} == {"captured"}
    assert {row[3] for row in shop["payments"]} == {1}
    items = sorted((row[0], row[1], row[2]) for row in shop["order_items"])
    reservations = sorted((row[0], row[1], row[2]) for row in shop["inventory_reservations"])
    assert items == reservations
    assert {row[3] for row in shop["inventory_reservations"]} == {"committed"}
    assert Counter(by_column(shop, "orders", "status"))["delivered"] > PLAN.orders * 0.9


def test_captured_money_equals_the_orders_totals(shop: Tables) -> None:
    assert sum(by_column(shop, "payments", "amount")) == sum(by_column(shop, "orders", "total"))


def test_money_is_decimal_with_two_places(shop: Tables) -> None:
    amounts = (
        by_column(shop, "products", "price") + by_column(shop, "orders", "total")
        + by_column(shop, "order_items", "unit_price") + by_column(shop, "payments", "amount")
    )
    for amount in amounts:
        assert isinstance(amount, Decimal)
        assert amount.as_tuple().exponent == -2
        assert amount > 0


def test_prices_depend_on_the_product_type(shop: Tables) -> None:
    prices: dict[str, list[Decimal]] = defaultdict(list)
    slugs = {row[0]: row[1] for row in shop["categories"]}
    for row in shop["products"]:
        prices[slugs[row[4]]].append(row[5])
    median = {slug: sorted(p)[len(p) // 2] for slug, p in prices.items() if len(p) >= 3}
    assert median["furniture"] > median["grocery"] * 5


def test_references_point_at_generated_rows(shop: Tables) -> None:
    users = set(by_column(shop, "users", "id"))
    products = set(by_column(shop, "products", "id"))
    orders = set(by_column(shop, "orders", "id"))
    categories = set(by_column(shop, "categories", "id"))
    assert set(by_column(shop, "orders", "user_id")) <= users
    assert set(by_column(shop, "order_items", "product_id")) <= products
    assert set(by_column(shop, "order_items", "order_id")) == orders
    assert set(by_column(shop, "products", "category_id")) == categories  # none left empty
    parents = {p for p in by_column(shop, "categories", "parent_id") if p is not None}
    assert parents <= categories


def test_order_history_has_co_purchase_structure(shop: Tables) -> None:
    """Later lines share the first line's category far more often than chance would."""
    category = {row[0]: row[4] for row in shop["products"]}
    lines: dict[Any, list[int]] = defaultdict(list)
    for order_id, product_id, _, _ in shop["order_items"]:
        lines[order_id].append(category[product_id])
    pairs = [(cats[0], other) for cats in lines.values() for other in cats[1:]]
    same = sum(first == other for first, other in pairs) / len(pairs)
    assert same > 0.3  # ~1/30 by chance with 30 categories
    popularity = Counter(by_column(shop, "order_items", "product_id"))
    top_tenth = sum(n for _, n in popularity.most_common(PLAN.products // 10))
    assert top_tenth > 0.3 * sum(popularity.values())  # best sellers exist


def test_timestamps_are_fixed_and_in_order(shop: Tables) -> None:
    signed_up = dict(zip(by_column(shop, "users", "id"), by_column(shop, "users", "created_at"),
                         strict=True))
    for _, user_id, _, _, _, created, _ in shop["orders"]:
        assert isinstance(created, datetime) and created.tzinfo is not None
        assert signed_up[user_id] < created < BASE_TIME


def test_catalogue_text_is_unique_and_readable(shop: Tables) -> None:
    names = by_column(shop, "products", "name")
    skus = by_column(shop, "products", "sku")
    assert len(set(names)) == len(names) and len(set(skus)) == len(skus)
    for description in by_column(shop, "products", "description"):
        assert description.startswith("The ") and len(description) > 60
    slugs = [spec.slug for spec in category_specs(MAX_CATEGORIES)]
    assert len(slugs) == len(set(slugs)) == MAX_CATEGORIES
    inactive = by_column(shop, "products", "active").count(False)
    assert 0 <= inactive < PLAN.products * 0.1


# -- shoppers ---------------------------------------------------------------------------------


def test_users_can_log_in_with_their_derived_password(shop: Tables) -> None:
    emails = by_column(shop, "users", "email")
    assert len({e.lower() for e in emails}) == len(emails)
    hasher = default_hasher()
    for user_id, email, _, password_hash, _ in shop["users"][:5]:
        assert normalize_email(email) == email
        password = shopper_password(PLAN.seed, user_id)
        assert check_password(password) == password
        assert PasswordHasher().verify(password_hash, password)
        assert hasher.check_needs_rehash(password_hash)  # upgraded at the first login
        assert password_hash.startswith("$argon2id$")


def test_passwords_and_hashes_are_deterministic() -> None:
    assert shopper_password(42, 1) == shopper_password(42, 1)
    assert len({shopper_password(42, 1), shopper_password(42, 2), shopper_password(43, 1)}) == 3
    assert shopper_password_hash(42, 7) == shopper_password_hash(42, 7)
    assert shopper_password_hash(42, 7) != shopper_password_hash(43, 7)


def test_non_latin_locales_still_give_ascii_emails() -> None:
    plan = SeedPlan(users=20, categories=2, products=2, orders=0, locale="ja_JP")
    users = next(b for b in generate(plan) if b.table == "users").rows
    for _, email, full_name, _, _ in users:
        assert email.isascii() and normalize_email(email) == email
        assert full_name


def test_credentials_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "shoppers.json"
    shoppers = [Shopper(1, "a1@example.com", "pw-one-123"), Shopper(2, "b2@example.com", "x" * 16)]
    assert write_credentials(path, 42, shoppers) == path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_credentials(path)
    assert loaded.seed == 42 and list(loaded.shoppers) == shoppers
    path.write_text('{"version": 2, "seed": 1, "shoppers": []}')
    with pytest.raises(ConfigError):
        load_credentials(path)
    path.write_text('{"version": 1, "seed": 1, "shoppers": [{"user_id": "1"}]}')
    with pytest.raises(ConfigError):
        load_credentials(path)
    with pytest.raises(ConfigError, match="ecomctl seed"):
        load_credentials(tmp_path / "missing.json")


# -- plans ------------------------------------------------------------------------------------


def test_presets_and_overrides() -> None:
    for name, preset in PRESETS.items():
        assert make_plan(name) == preset  # every preset validates, with the default seed
    assert PRESETS["small"].products < PRESETS["medium"].products < PRESETS["large"].products
    plan = make_plan("medium", users=10, orders=0, seed=7, locale="fr_FR")
    assert plan == SeedPlan(users=10, categories=50, products=20_000, orders=0, seed=7,
                            locale="fr_FR")
    assert make_plan("large").orders == PRESETS["large"].orders


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": "huge"}, "unknown scale"),
        ({"users": 0}, "users"),
        ({"products": 0}, "products"),
        ({"orders": -1}, "orders"),
        ({"categories": MAX_CATEGORIES + 1}, "categories"),
        ({"categories": 10, "products": 5}, "at least categories"),
        ({"users": True}, "users"),
        ({"seed": -1}, "seed"),
        ({"locale": "xx_YY"}, "no locale"),
        ({"locale": "en-US; rm"}, "shaped"),
    ],
)
def test_invalid_plans_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_plan(**kwargs)
