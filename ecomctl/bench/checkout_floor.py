"""The "checkout SQL" floor: pgbench running the exact SQL of one ecomctl checkout.

The script is never written by hand. ``capture_checkout`` runs real checkouts through
``CheckoutService.checkout`` (order placement with its stock reservation, payment through
ecomctl's client and payment simulator, settlement, outbox rows) and records, with asyncpg's
query logger, every statement the connection sends: BEGIN/COMMIT included, asyncpg's type
introspection excluded (the shop's pool sends no reset query on release). ``checkout_script`` turns
that into a pgbench script with the same SQL text, so a changed statement in the checkout path
changes the floor with it.

Which parameters change per checkout is learnt, not guessed: two checkouts with different
users and products are captured and compared parameter by parameter. A parameter equal in
both is a constant (quantities, currency, status...); one that differs is the order id, the
user id, the product ids, a text holding the order id (idempotency key, aggregate id, event
payloads), a fresh id or token (event ids, the payment claim's holder, the cart revision,
the gateway's charge id: one per checkout, the same wherever the checkout sent the same
value), or else a value kept as captured (prices, totals).

Not SQL, so not in the script: the cart read from Redis, the payment gateway's HTTP call, and
the product prices (read from the product cache, which is warm in steady state; here they are
read before recording starts). The script's first command (fresh ids and the values as
pgbench variables) is one extra round trip per checkout that ecomctl does not make.

Stock is not topped up by the script (that would be a statement the checkout does not run):
call ``adapters.postgres.bench_shop.top_up_stock`` before a run. The outbox rows accumulate;
nothing publishes them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from opentelemetry import trace

from ecomctl.adapters.payment_gateway import PaymentGatewayClient
from ecomctl.adapters.postgres.bench_shop import (
    LISTED_TABLE,
    count_listed_products,
    number_listed_products,
    stocked_products,
    user_id_range,
)
from ecomctl.adapters.postgres.database import Database, connect_single
from ecomctl.adapters.postgres.products import ProductRepository
from ecomctl.adapters.postgres.statement_log import LoggedStatement, StatementLog, logged_database
from ecomctl.adapters.postgres.unit_of_work import postgres_units
from ecomctl.bench.commands import BenchFailed, run_command
from ecomctl.domain.models import Cart, CartLine, CheckoutOutcome, Product
from ecomctl.services.checkout import CheckoutService
from ecomctl.services.inventory import InventoryService
from ecomctl.services.order import OrderService
from ecomctl.services.payment import PaymentService
from ecomctl.simulators.payment_gateway import PaymentGatewaySimulator, SimulatorConfig
from ecomctl.telemetry.spans import ServiceTracer

# The captured cart: two lines, so the array parameters really are arrays.
CART_QUANTITIES = (2, 1)
PGBENCH_MODES = ("prepared", "extended")
_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_PARAMETER = re.compile(r"\$(\d+)")
_QUOTED = re.compile(r"'(?:[^']|'')*'")


class CheckoutSqlFailed(BenchFailed):
    """The checkout could not be captured, turned into a script, or run by pgbench."""


@dataclass(frozen=True)
class CapturedCheckout:
    """The statements of one paid checkout, and the values that identify it."""

    statements: tuple[LoggedStatement, ...]
    order_id: UUID
    user_id: int
    product_ids: tuple[int, ...]  # sorted, as the order's lines are


@dataclass(frozen=True)
class IdRange:
    """Contiguous ids ``first..last`` (both included)."""

    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class ShopIds:
    users: IdRange
    listed: int
    """Listed, stocked products, numbered 1..listed in id order in ``LISTED_TABLE`` (a real
    seed leaves unlisted products between them, so their ids are not a range)."""


# -- capture -----------------------------------------------------------------------------------


class _FixedCarts:
    """The carts the capture checks out (the real ones live in Redis: not SQL)."""

    def __init__(self) -> None:
        self.carts: dict[int, Cart] = {}

    async def get(self, user_id: int) -> Cart:
        return self.carts.get(user_id, Cart(user_id))

    async def clear(self, user_id: int) -> None:
        self.carts.pop(user_id, None)

    async def clear_if_holds(self, user_id: int, items: Mapping[int, int]) -> bool:
        if self.carts.get(user_id, Cart(user_id)).items != items:
            return False
        self.carts.pop(user_id, None)
        return True


class _WarmPrices:
    """Prices read before recording: in steady state the product cache answers, with no SQL."""

    def __init__(self, products: Mapping[int, Product]) -> None:
        self._products = dict(products)

    async def get_many(self, product_ids: Sequence[int]) -> Mapping[int, Product]:
        return {pid: self._products[pid] for pid in product_ids if pid in self._products}


async def capture_checkouts(database_url: str) -> tuple[CapturedCheckout, CapturedCheckout]:
    """Two recorded paid checkouts (different users and products) on a migrated, seeded
    database; they must send the same statements."""
    simulator = PaymentGatewaySimulator(SimulatorConfig(latency_mean_ms=0, latency_jitter_ms=0))
    gateway = PaymentGatewayClient("http://payment-gateway",
                                   transport=httpx.ASGITransport(app=simulator))
    try:
        async with logged_database(database_url) as (db, log):
            ids = await _shop_ids_on(db.pool)
            users, products = await _capture_subjects(db.pool, ids)
            carts = _FixedCarts()
            checkout = _checkout_service(db, carts, gateway,
                                         await ProductRepository(db).get_many(products))
            await _one_checkout(checkout, carts, users[0], products[:2])  # warm-up, not kept
            first = await _recorded_checkout(checkout, carts, log, users[0], products[:2])
            second = await _recorded_checkout(checkout, carts, log, users[1], products[2:])
    finally:
        await gateway.aclose()
    if [s.query for s in first.statements] != [s.query for s in second.statements]:
        raise CheckoutSqlFailed("two checkouts sent different statements; cannot make one "
                                "script of them")
    return first, second


def _checkout_service(
    db: Database, carts: _FixedCarts, gateway: PaymentGatewayClient,
    products: Mapping[int, Product],
) -> CheckoutService:
    """Wired as bootstrap wires it, with tracing off (spans send no SQL)."""

    def tracer(service: str) -> ServiceTracer:
        return ServiceTracer(service, trace.NoOpTracer())

    units = postgres_units(db)
    inventory = InventoryService(tracer("inventory"))
    orders = OrderService(units, inventory, tracer("order"))
    payments = PaymentService(gateway, tracer("payment"))
    return CheckoutService(units, carts, _WarmPrices(products), orders, payments,
                           tracer("checkout"))


async def _recorded_checkout(
    checkout: CheckoutService, carts: _FixedCarts, log: StatementLog, user_id: int,
    product_ids: Sequence[int],
) -> CapturedCheckout:
    await asyncio.sleep(0)  # deliver the loggers' pending calls before marking the start
    start = len(log.statements)
    order_id = await _one_checkout(checkout, carts, user_id, product_ids)
    await asyncio.sleep(0)
    return CapturedCheckout(tuple(log.statements[start:]), order_id, user_id,
                            tuple(sorted(product_ids)))


async def _one_checkout(
    checkout: CheckoutService, carts: _FixedCarts, user_id: int, product_ids: Sequence[int]
) -> UUID:
    lines = tuple(CartLine(pid, qty) for pid, qty in zip(product_ids, CART_QUANTITIES,
                                                          strict=True))
    carts.carts[user_id] = Cart(user_id, lines, revision=secrets.token_hex(8))  # as Redis's
    result = await checkout.checkout(user_id)
    if result.outcome is not CheckoutOutcome.PAID:
        raise CheckoutSqlFailed(f"the captured checkout was not paid: {result.message}")
    return result.order_id


async def _capture_subjects(
    pool: Any, ids: ShopIds
) -> tuple[list[int], list[int]]:
    """Two users from the top of the id range and four stocked, listed products from the
    bottom, so that a user id is unlikely to equal a product id or a quantity."""
    users = [ids.users.last, ids.users.last - 1]
    products = await stocked_products(pool, max(CART_QUANTITIES) * 2, 4)
    if ids.users.size < 2 or len(products) < 4:
        raise CheckoutSqlFailed("the capture needs 2 users and 4 stocked, listed products")
    return users, products


# -- the shop's ids ----------------------------------------------------------------------------


async def shop_ids(database_url: str) -> ShopIds:
    """The seeded users the script draws from, and the listed products numbered in
    ``LISTED_TABLE`` (created here: the script picks products by slot through it)."""
    conn = await connect_single(database_url)
    try:
        return await _shop_ids_on(conn, number_listed=True)
    finally:
        await conn.close()


async def _shop_ids_on(conn: Any, number_listed: bool = False) -> ShopIds:
    users = await user_id_range(conn)
    if number_listed:
        await number_listed_products(conn)
    return ShopIds(_contiguous("users", *users), await count_listed_products(conn))


def _contiguous(what: str, first: int | None, last: int | None, count: int) -> IdRange:
    # A random id must exist: the script has no way to skip holes.
    if not count or first is None or last is None or count != last - first + 1:
        raise CheckoutSqlFailed(f"{what}: ids must be contiguous and not empty "
                                f"(min {first}, max {last}, {count} rows)")
    return IdRange(first, last)


# -- the pgbench script ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """What a ``$n`` becomes: ``:name`` or, when ``name`` is None, ``NULL``. ``column`` is
    the SQL that sets the variable in the script's first SELECT (None: set elsewhere)."""

    name: str | None
    column: str | None = None

    @property
    def sql(self) -> str:
        return "NULL" if self.name is None else f":{self.name}"


_NULL = _Value(None)  # pgbench cannot send a NULL parameter (it would send ''): inlined


def checkout_script(
    first: CapturedCheckout, second: CapturedCheckout, ids: ShopIds
) -> str:
    """A pgbench script: one script run = one checkout, with the captured SQL text."""
    lines = len(second.product_ids)
    if ids.listed < lines:
        raise CheckoutSqlFailed(f"need at least {lines} listed products, the shop has "
                                f"{ids.listed}")
    columns: dict[str, str] = {"order_id": "fresh.order_id"}
    fresh: dict[Any, str] = {}  # a value fresh per checkout -> its variable
    body: list[str] = []
    for number, (one, other) in enumerate(zip(first.statements, second.statements,
                                              strict=True), start=1):
        values = [_value(f"s{number}_p{position}", a, b, first, second, fresh)
                  for position, (a, b) in enumerate(zip(one.args, other.args, strict=True),
                                                    start=1)]
        columns.update({v.name: v.column for v in values
                        if v.name is not None and v.column is not None})
        body.append(_statement(other, values))
    return "\n".join([*_header(ids, lines), *_first_select(columns, lines), *body, ""])


def _header(ids: ShopIds, lines: int) -> list[str]:
    width = ids.listed // lines
    stripes = [(1 + i * width, ids.listed if i == lines - 1 else (i + 1) * width)
               for i in range(lines)]
    return [
        "-- One ecomctl checkout (CheckoutService.checkout), generated from the SQL it sent:",
        "-- ecomctl/bench/checkout_floor.py. sN_pM is statement N's parameter $M.",
        f"\\set user_id random({ids.users.first}, {ids.users.last})",
        # One product per stripe of the listed slots: sorted and distinct, as the code's.
        *(f"\\set slot_{i} random({lo}, {hi})" for i, (lo, hi) in enumerate(stripes, 1)),
    ]


def _first_select(columns: Mapping[str, str], lines: int) -> list[str]:
    """One round trip (not the checkout's) that sets every variable: fresh ids, the drawn
    products (slot -> id through an index), and the constants."""
    rendered = [f"  {expression} AS {name}" for name, expression in columns.items()]
    products = "".join(f", (SELECT product_id FROM {LISTED_TABLE} WHERE slot = :slot_{i}) "
                       f"AS product_{i}" for i in range(1, lines + 1))
    return ["SELECT", ",\n".join(rendered),
            f"FROM (SELECT gen_random_uuid() AS order_id{products}) AS fresh \\gset"]


def _value(
    name: str, a: Any, b: Any, first: CapturedCheckout, second: CapturedCheckout,
    fresh: dict[Any, str],
) -> _Value:
    """How one parameter gets its value per checkout (see the module docstring)."""
    if b is None and a is None:
        return _NULL
    if a == b:
        return _Value(name, _literal(_pg_text(b)))
    if isinstance(b, UUID) and b == second.order_id:
        return _Value("order_id")
    if _is_int(a) and _is_int(b) and (a, b) == (first.user_id, second.user_id):
        return _Value("user_id")
    if _ints(a) == list(first.product_ids) and _ints(b) == list(second.product_ids):
        products = ", ".join(f"fresh.product_{i}" for i in range(1, len(b) + 1))
        return _Value("product_ids", f"ARRAY[{products}]::text")
    text = _pg_text(b)
    if str(second.order_id) in text:
        return _Value(name, f"replace({_literal(text)}, '{second.order_id}', "
                            "fresh.order_id::text)")
    if isinstance(b, UUID | str):  # one per checkout, the same variable wherever it recurs
        if b in fresh:
            return _Value(fresh[b])
        fresh[b] = name
        return _Value(name, "gen_random_uuid()" if isinstance(b, UUID)
                      else "substr(md5(random()::text), 1, 16)")
    if isinstance(b, list | tuple) and b and all(isinstance(x, UUID) for x in b):
        return _Value(name, f"ARRAY[{', '.join(['gen_random_uuid()'] * len(b))}]::text")
    return _Value(name, _literal(text))  # prices, totals: as captured


def _statement(statement: LoggedStatement, values: Sequence[_Value]) -> str:
    sql = normalize_sql(statement.query).rstrip(";")
    # One statement per line: safe only if that changes no literal and hides nothing.
    if "--" in sql or _QUOTED.findall(sql) != _QUOTED.findall(statement.query):
        raise CheckoutSqlFailed(f"cannot write this statement on one line: {sql}")
    return _PARAMETER.sub(lambda match: values[int(match.group(1)) - 1].sql, sql) + ";"


def normalize_sql(sql: str) -> str:
    """One line, single spaces: how the script writes a statement."""
    return " ".join(sql.split())


def _pg_text(value: Any) -> str:
    """PostgreSQL's text input for ``value`` (what a pgbench variable holds)."""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | Decimal | UUID):
        return str(value)
    if isinstance(value, float):  # seconds (a payment's lease)
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, timedelta):  # an interval (a Pending order's hold)
        return f"{value.total_seconds():g} seconds"
    if isinstance(value, list | tuple):
        return "{" + ",".join(_array_element(v) for v in value) + "}"
    raise CheckoutSqlFailed(f"no pgbench form for a {type(value).__name__} parameter")


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        return _pg_text(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(text: str) -> str:
    """An SQL string literal pgbench leaves alone: it would read ``:name`` inside quotes
    as a variable, so colons (and anything unusual) go through an E'' escape."""
    if re.fullmatch(r"[^':\\\n\r\t]*", text):
        return f"'{text}'"
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\x3a")
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f"E'{escaped}'"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, list | tuple) and value and all(_is_int(v) for v in value):
        return list(value)
    return None


async def pgbench_checkout_script(database_url: str) -> str:
    """Capture checkouts on ``database_url`` (a migrated, seeded scratch database: the
    capture places three orders there) and return the pgbench script."""
    first, second = await capture_checkouts(database_url)
    return checkout_script(first, second, await shop_ids(database_url))


# -- running pgbench ---------------------------------------------------------------------------


def run_pgbench_checkout(
    database_url: str,
    script_path: Path,
    *,
    clients: int,
    seconds: int | None = None,
    transactions: int | None = None,
    mode: str = "prepared",
    env: Mapping[str, str] | None = None,
) -> float:
    """Checkouts per second of pgbench running the script, for ``seconds`` or for
    ``transactions`` per client (exactly one of them)."""
    if (seconds is None) == (transactions is None):
        raise ValueError("give either seconds or transactions")
    if mode not in PGBENCH_MODES:
        raise ValueError(f"mode must be one of {PGBENCH_MODES}, not {mode!r}")
    length = ["-T", str(seconds)] if seconds is not None else ["-t", str(transactions)]
    argv = ["pgbench", "-n", "-M", mode, "-c", str(clients), "-j", str(clients), *length,
            "-f", str(script_path), database_url]
    # pgbench exits 2 when a client aborted on an error: run_command refuses that too.
    return parse_tps(run_command(argv, env, name="pgbench", timeout_s=(seconds or 0) + 300))


def parse_tps(output: str) -> float:
    """pgbench's "tps = N (without initial connection time)"."""
    match = _TPS.search(output)
    if match is None:
        raise CheckoutSqlFailed(f"no tps in pgbench's output: {output.strip()[-400:]}")
    return float(match.group(1))
