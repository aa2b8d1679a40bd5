"""The "checkout SQL" floor: the pgbench script is the checkout's own SQL, and it works.

Runs in a scratch database of its own (``ecomctl_bench_checkout_test_<hex>``, migrated, seeded
with a small shop by plain SQL, dropped at the end; named per run, so that runs from several
checkouts sharing one server do not drop each other's); the shop's database is untouched.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ecomctl.adapters.postgres.bench_shop import top_up_stock
from ecomctl.adapters.postgres.migrations import load_migrations, migrate
from ecomctl.adapters.postgres.statement_log import LoggedStatement
from ecomctl.bench.checkout_floor import (
    CART_QUANTITIES,
    CapturedCheckout,
    CheckoutSqlFailed,
    capture_checkouts,
    checkout_script,
    normalize_sql,
    parse_tps,
    run_pgbench_checkout,
    shop_ids,
)
from ecomctl.bench.scratch import database_url, drop_database, recreate_database
from ecomctl.config import Settings
from ecomctl.resources import fixtures_dir

SCRATCH = f"ecomctl_bench_checkout_test_{uuid.uuid4().hex[:12]}"
USERS = 30
PRODUCTS = 40
CLIENTS = 2
PER_CLIENT = 5
LISTED = PRODUCTS - PRODUCTS // 7  # every seventh product is unlisted
# A checkout writes: the order, one item and one reservation per line, one payment, and
# three outbox events (order.placed, order.paid, payment.captured).
EVENTS_PER_CHECKOUT = 3
# Statements one paid checkout sends to PostgreSQL, BEGIN and COMMIT included (6 now: BEGIN,
# the user's lock, their open orders, the order placed with its stock and event, COMMIT; then
# the settlement, one statement on its own).
MAX_STATEMENTS_PER_CHECKOUT = 10


@pytest.fixture(scope="module")
async def scratch_url(settings: Settings) -> AsyncIterator[str]:
    await recreate_database(settings.database_url, SCRATCH)
    url = database_url(settings.database_url, SCRATCH)
    try:
        await migrate(url, load_migrations(fixtures_dir() / "migrations"))
        await _seed_small_shop(url)
        yield url
    finally:
        await drop_database(settings.database_url, SCRATCH)


async def _seed_small_shop(url: str) -> None:
    """Users and stocked products with contiguous ids, as ``ecomctl seed`` leaves them."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO users (email, full_name, password_hash) "
            "SELECT 'bench-' || g || '@example.test', 'Bench ' || g, 'not-a-hash' "
            "FROM generate_series(1, $1) g", USERS,
        )
        category = await conn.fetchval(
            "INSERT INTO categories (slug, name) VALUES ('bench', 'Bench') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO products (sku, name, category_id, price) "
            "SELECT 'bench-' || g, 'Bench item ' || g, $2, 5.99 + g % 20 "
            "FROM generate_series(1, $1) g", PRODUCTS, category,
        )
        await conn.execute("INSERT INTO inventory (product_id, on_hand) "
                           "SELECT id, 50 FROM products")
        # Unlisted products between listed ones, as a real seed has: ids are no range.
        await conn.execute("UPDATE products SET active = false WHERE id % 7 = 0")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def captured(scratch_url: str) -> tuple[CapturedCheckout, CapturedCheckout]:
    return await capture_checkouts(scratch_url)


@pytest.fixture(scope="module")
async def script(
    scratch_url: str, captured: tuple[CapturedCheckout, CapturedCheckout]
) -> str:
    return checkout_script(*captured, await shop_ids(scratch_url))


def _executed(statement: LoggedStatement) -> str:
    """A captured statement as the script must hold it: one line, NULL arguments inlined
    (pgbench cannot send a NULL parameter), every other parameter as ``?``."""

    def parameter(match: re.Match[str]) -> str:
        return "NULL" if statement.args[int(match.group(1)) - 1] is None else "?"

    return re.sub(r"\$(\d+)", parameter, normalize_sql(statement.query)).rstrip(";")


def _script_statements(script: str) -> list[str]:
    """The script's checkout statements (one per line, ending with ';'), variables as ``?``."""
    return [re.sub(r"(?<!:):[a-z_][a-z0-9_]*", "?", line[:-1])
            for line in script.splitlines() if line.endswith(";")]


async def test_the_script_holds_exactly_the_statements_the_checkout_sent(
    captured: tuple[CapturedCheckout, CapturedCheckout], script: str
) -> None:
    first, second = captured
    assert _script_statements(script) == [_executed(s) for s in second.statements]
    # What was captured is a whole paid checkout: balanced transactions writing the tables a
    # checkout owns (order placement with its reservation, then the settlement).
    queries = [normalize_sql(s.query) for s in second.statements]
    assert queries.count("BEGIN;") == queries.count("COMMIT;") >= 1
    assert queries[0] == "BEGIN;"
    assert queries.index("COMMIT;") > queries.index("BEGIN;")
    written = " ".join(queries)
    for table in ("orders", "order_items", "inventory", "inventory_reservations", "payments",
                  "outbox"):
        assert re.search(rf"(INSERT INTO|UPDATE) {table}\b", written), table
    # The fresh values: one order id per run, users and products drawn from the shop.
    assert "gen_random_uuid() AS order_id" in script
    assert f"\\set user_id random(1, {USERS})" in script
    assert "\\set slot_2 random(" in script and f", {LISTED})" in script
    assert first.user_id != second.user_id and first.product_ids != second.product_ids


async def test_a_paid_checkout_sends_at_most_ten_statements(
    captured: tuple[CapturedCheckout, CapturedCheckout],
) -> None:
    # Every statement the checkout's connection sent, BEGIN and COMMIT included (asyncpg's
    # type introspection is not the checkout's; the shop's pool sends no reset query on
    # release; the cart and the product prices are not SQL). Both captured checkouts.
    for checkout in captured:
        queries = [normalize_sql(s.query) for s in checkout.statements]
        listing = "\n".join(f"{n:2}. {q[:160]}" for n, q in enumerate(queries, start=1))
        assert len(queries) <= MAX_STATEMENTS_PER_CHECKOUT, (
            f"a paid checkout sent {len(queries)} statements (at most "
            f"{MAX_STATEMENTS_PER_CHECKOUT}):\n{listing}")


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow("""
            SELECT (SELECT count(*) FROM orders WHERE status = 'paid') AS paid_orders,
                   (SELECT count(*) FROM orders WHERE status <> 'paid') AS other_orders,
                   (SELECT count(*) FROM payments WHERE status = 'captured') AS captured,
                   (SELECT count(*) FROM order_items) AS items,
                   (SELECT count(*) FROM inventory_reservations
                     WHERE status = 'committed') AS committed,
                   (SELECT count(*) FROM inventory_reservations
                     WHERE status <> 'committed') AS open_reservations,
                   (SELECT count(*) FROM outbox) AS events,
                   (SELECT sum(sold) FROM inventory) AS sold,
                   (SELECT count(*) FROM order_items JOIN products p ON p.id = product_id
                     WHERE NOT p.active) AS unlisted_items
        """)
    finally:
        await conn.close()
    return {key: int(value) for key, value in row.items()}


async def _stock_violations(url: str) -> list[asyncpg.Record]:
    """Products whose stock row disagrees with its reservations, or breaks a bound."""
    conn = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch("""
            SELECT i.product_id, i.on_hand, i.reserved, i.sold
            FROM inventory i
            LEFT JOIN (SELECT product_id,
                              sum(quantity) FILTER (WHERE status = 'reserved') AS reserved,
                              sum(quantity) FILTER (WHERE status = 'committed') AS sold
                       FROM inventory_reservations GROUP BY product_id) r USING (product_id)
            WHERE i.on_hand < 0 OR i.reserved < 0 OR i.reserved > i.on_hand
               OR i.reserved <> coalesce(r.reserved, 0) OR i.sold <> coalesce(r.sold, 0)
        """)
        return rows
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["prepared", "extended"])
async def test_pgbench_runs_the_script_as_paid_checkouts(
    scratch_url: str, script: str, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "checkout.sql"
    path.write_text(script)
    await top_up_stock(scratch_url, 1_000)
    before = await _counts(scratch_url)

    tps = run_pgbench_checkout(scratch_url, path, clients=CLIENTS, transactions=PER_CLIENT,
                               mode=mode)

    after = await _counts(scratch_url)
    checkouts = CLIENTS * PER_CLIENT
    lines = len(CART_QUANTITIES)
    assert tps > 0
    assert {key: after[key] - before[key] for key in after} == {
        "paid_orders": checkouts, "other_orders": 0, "captured": checkouts,
        "items": checkouts * lines, "committed": checkouts * lines, "open_reservations": 0,
        "events": checkouts * EVENTS_PER_CHECKOUT, "sold": checkouts * sum(CART_QUANTITIES),
        "unlisted_items": 0,  # only listed products were drawn
    }
    assert await _stock_violations(scratch_url) == []


def test_simple_query_mode_is_refused(tmp_path: Path) -> None:
    # Simple mode pastes variables into the SQL unquoted: the script cannot work there.
    with pytest.raises(ValueError, match="mode"):
        run_pgbench_checkout("postgresql:///x", tmp_path / "x.sql", clients=1,
                             transactions=1, mode="simple")


def test_tps_is_read_from_pgbench_output() -> None:
    output = ("number of failed transactions: 0 (0.000%)\n"
              "latency average = 4.2 ms\n"
              "initial connection time = 3.1 ms\n"
              "tps = 1893.412345 (without initial connection time)\n")
    assert parse_tps(output) == pytest.approx(1893.412345)
    with pytest.raises(CheckoutSqlFailed):
        parse_tps("pgbench: error: connection refused\n")
