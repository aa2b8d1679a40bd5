"""Deterministic shop data: the same plan (counts, seed, locale) gives the same rows, byte for
byte, on every run and machine with the same Faker version, whatever the number of worker
processes that build them.

Nothing here reads the clock or does I/O. Faker (``Faker(locale).seed_instance(seed)``) only
builds small word lists once; every row is then drawn from ``random.Random`` streams seeded
by (seed, table, block), so generation costs microseconds per row.

The work is cut into **blocks** of a fixed number of rows (``*_PER_BLOCK``: part of what the
data is, like the seed). ``ShopGenerator.blocks()`` plans them in order, in one process: the
few decisions that depend on everything before them (each product's category, price and
initial stock; each past order's customer and lines, which spend the stock) are made there,
sequentially. ``build_block`` then turns one block into rows using only the block and the
shared ``GenerationContext``: blocks can be built in any process, in any order, and the rows
do not change. Rows are *raw* (money in integer cents, timestamps in Unix seconds, UUIDs as
128-bit ints: see ``adapters/seeding/tables.TABLE_KINDS``), which the bulk load encodes
straight into binary COPY; ``generate()`` gives them as Python values (``Decimal``,
``datetime``, ``UUID``) instead.

Blocks come in an order that satisfies the foreign keys (users, categories, products, then
each block of orders with its items, reservations, payments and shipments, and inventory last,
once the orders have said how much of each product was sold), so a loader can COPY each block
as it comes with bounded memory.

The past orders have structure, so that recommendations and best sellers have signal:
product popularity is Zipf-like, a customer's second and later lines favour the first line's
category and each product's two "companions" (bought together often), and a few customers
order much more than others. Every past order is paid, shipped or delivered (by its age),
with one captured payment of exactly its total, its committed stock reservations and one
shipment; ``sold`` counts exactly the units of those orders and no product sells more than
its initial stock (``on_hand = initial - sold >= 0``, ``reserved = 0``). Order ids are
time-ordered UUIDs (version 7, from the order's creation time), as many shops use: they also
keep the orders' B-tree indexes appending at their right edge during the load.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import unicodedata
from array import array
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from random import Random
from uuid import UUID

from argon2.low_level import Type, hash_secret

from ecomctl.adapters.seeding.tables import TABLE_KINDS, Batch, Row
from ecomctl.seed.plan import SeedPlan, validate
from ecomctl.seed.vocabulary import ADJECTIVES, DEPARTMENTS, EMAIL_DOMAINS, Department
from ecomctl.services.payment import idempotency_key
from ecomctl.services.shipment import CARRIER

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
"""Every seeded timestamp is before this instant."""
ORDER_HISTORY = timedelta(days=365)
USER_SIGNUP_SPAN = timedelta(days=365)  # accounts open in the year before the order history
CURRENCY = "USD"

# Rows per block, per table. Each block draws from its own random stream, so these are part
# of the data's definition: changing one changes the rows (not their number or shape).
USERS_PER_BLOCK = 1_000  # smaller: a user's password hash is the costliest cell
PRODUCTS_PER_BLOCK = 2_500
ORDERS_PER_BLOCK = 2_500
INVENTORY_PER_BLOCK = 10_000

# argon2id for seeded shoppers: 1 pass over 64 KiB, 1 lane: about 40 us a hash here (10,000
# users in ~0.2 s on two threads), versus 50-100 ms for UserService's default (3 passes over
# 64 MiB, 4 lanes). Cheap on purpose: the password is written in clear to the credentials file
# anyway, and UserService.login sees, through check_needs_rehash, that these parameters are
# not its own and rehashes the password with the default ones at the first login.
SEED_HASH_TIME_COST = 1
SEED_HASH_MEMORY_KIB = 64
SEED_HASH_PARALLELISM = 1
SEED_HASH_LEN = 32
SEED_SALT_LEN = 16

# Shape of the catalogue and of the order history.
_INACTIVE_SHARE = 0.02  # delisted products: in the database and old orders, not in search
_LOW_STOCK_SHARE = 0.03  # stocked below demand: these sell out during the history
_PRODUCT_POPULARITY_EXPONENT = 0.9  # Zipf-like: weight = (rank + 5) ** -exponent
_USER_ACTIVITY_EXPONENT = 0.6
_LINES_CUMULATIVE = (0.45, 0.75, 0.90, 1.0)  # P(1..4 lines)
_QUANTITY_CUMULATIVE = (0.80, 0.95, 1.0)  # P(1..3 units)
_EXPECTED_UNITS = 1.9 * 1.25  # E[lines] * E[quantity]
_COMPANION_SHARE = 0.40  # later lines: a companion of an earlier line...
_SAME_CATEGORY_SHARE = 0.35  # ...or the first line's category; otherwise anything popular
_DRAW_ATTEMPTS = 4

# Model numbers ("QXA-417") come from an affine permutation of the product id over 26^3 *
# 1000 values, so they never repeat and names and SKUs are unique without bookkeeping.
MODEL_SPACE = 26**3 * 1000
_MODEL_MULTIPLIER = 7_368_787  # coprime with MODEL_SPACE (= 2^6 * 5^3 * 13^3)
_BASE_S = int(BASE_TIME.timestamp())
_HISTORY_S = int(ORDER_HISTORY.total_seconds())
_SIGNUP_START_S = _BASE_S - int((ORDER_HISTORY + USER_SIGNUP_SPAN).total_seconds())
_SIGNUP_SPAN_S = int(USER_SIGNUP_SPAN.total_seconds())
_UUID7_VERSION_VARIANT = (7 << 76) | (0b10 << 62)


def generate(plan: SeedPlan) -> Iterator[Batch]:
    """The shop's rows as Python values (``Decimal`` money, aware ``datetime``s, ``UUID``s),
    one batch per table per block, built in this process."""
    return ShopGenerator(plan).batches()


def shopper_password(seed: int, user_id: int) -> str:
    """The demo shopper's password: 16 URL-safe characters derived from (seed, user id)."""
    digest = hmac.new(b"ecomctl-seed-password", f"{seed}:{user_id}".encode(), "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode()[:16]


def shopper_password_hash(seed: int, user_id: int) -> str:
    """argon2id of ``shopper_password`` with a salt derived from (seed, user id): the same
    hash on every run, so seeded tables checksum identically."""
    salt = hashlib.sha256(f"ecomctl-seed-salt:{seed}:{user_id}".encode()).digest()
    return hash_secret(
        shopper_password(seed, user_id).encode(),
        salt[:SEED_SALT_LEN],
        time_cost=SEED_HASH_TIME_COST,
        memory_cost=SEED_HASH_MEMORY_KIB,
        parallelism=SEED_HASH_PARALLELISM,
        hash_len=SEED_HASH_LEN,
        type=Type.ID,
    ).decode()


def money_from_cents(cents: int) -> Decimal:
    """Exact: ``Decimal(1999).scaleb(-2)`` is ``Decimal('19.99')``, with two places always."""
    return Decimal(cents).scaleb(-2)


def timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_PYTHON_VALUE: dict[str, Callable[[int], object]] = {
    "uuid": lambda value: UUID(int=value),
    "ts": timestamp,
    "money": money_from_cents,
}


def python_rows(table: str, rows: Sequence[Row]) -> list[Row]:
    """Raw rows (``TABLE_KINDS``) as Python values: cents as ``Decimal``, Unix seconds as
    aware ``datetime``s, 128-bit ints as ``UUID``s."""
    converters = [_PYTHON_VALUE.get(kind) for kind in TABLE_KINDS[table]]
    return [
        tuple(value if convert is None or value is None else convert(value)
              for convert, value in zip(converters, row, strict=True))
        for row in rows
    ]


@dataclass(frozen=True)
class _CategorySpec:
    id: int
    slug: str
    name: str
    parent_id: int | None
    department: Department
    type_index: int | None  # None: a department (its products may be of any of its types)


@dataclass(frozen=True)
class _Words:
    """Locale-dependent words, drawn once from Faker."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    brands: tuple[str, ...]
    slogans: tuple[str, ...]

    @classmethod
    def build(cls, locale: str, seed: int) -> _Words:
        from faker import Faker  # imported here: slow to import, and only needed here

        fake = Faker(locale)
        fake.seed_instance(seed)
        slogan = getattr(fake, "catch_phrase", fake.sentence)
        return cls(
            first_names=_distinct(fake.first_name, 300),
            last_names=_distinct(fake.last_name, 300),
            brands=_distinct(fake.last_name, 120),
            slogans=_distinct(lambda: str(slogan()).rstrip("."), 200),
        )


def _distinct(draw: Callable[[], str], wanted: int) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for _ in range(wanted * 4):
        seen.setdefault(draw(), None)
        if len(seen) == wanted:
            break
    return tuple(seen)


def category_specs(count: int) -> list[_CategorySpec]:
    """Departments first, then one sub-category per product type, round-robin over the
    departments so that any count spreads evenly."""
    specs: list[_CategorySpec] = []
    for index, dept in enumerate(DEPARTMENTS[:count]):
        specs.append(_CategorySpec(index + 1, dept.slug, dept.name, None, dept, None))
    for type_index in range(max(len(d.types) for d in DEPARTMENTS)):
        for dept_index, dept in enumerate(DEPARTMENTS):
            if len(specs) >= count:
                return specs
            if type_index < len(dept.types):
                name = dept.types[type_index].name
                specs.append(_CategorySpec(
                    len(specs) + 1, _slug(name), name, dept_index + 1, dept, type_index
                ))
    return specs


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", folded.lower())


def model_code(product_id: int, seed: int) -> tuple[str, int]:
    """Three letters and a three-digit number, unique per product id for a given seed."""
    offset = int.from_bytes(hashlib.sha256(f"model:{seed}".encode()).digest()[:8], "big")
    value = (_MODEL_MULTIPLIER * product_id + offset) % MODEL_SPACE
    letters, digits = divmod(value, 1000)
    a, rest = divmod(letters, 26 * 26)
    b, c = divmod(rest, 26)
    return chr(65 + a) + chr(65 + b) + chr(65 + c), digits


# -- blocks: what one unit of work needs, small enough to send to another process ------------


@dataclass(frozen=True)
class GenerationContext:
    """What every block needs: built once, then shared with every worker process."""

    plan: SeedPlan
    words: _Words
    categories: tuple[_CategorySpec, ...]

    @classmethod
    def build(cls, plan: SeedPlan) -> GenerationContext:
        validate(plan)
        return cls(plan, _Words.build(plan.locale, plan.seed),
                   tuple(category_specs(plan.categories)))

    def rng(self, stream: str, block: int | None = None) -> Random:
        # A string seed is hashed with SHA-512 by Random: stable across runs and platforms.
        suffix = "" if block is None else f":{block}"
        return Random(f"ecomctl:{self.plan.seed}:{stream}{suffix}")


@dataclass(frozen=True)
class UserBlock:
    index: int
    start: int  # first user id
    stop: int  # past the last


@dataclass(frozen=True)
class CategoryBlock:
    pass


@dataclass(frozen=True)
class ProductBlock:
    index: int
    start: int  # first product id
    categories: array[int]  # per product of the block: index into the categories
    kinds: array[int]  # index of its type in its department
    price_cents: array[int]


@dataclass(frozen=True)
class OrderBlock:
    index: int
    start: int  # number (1-based position in the history) of the block's first order
    users: array[int]  # per order: its customer's id
    line_counts: array[int]  # per order: how many of the lines below are its own
    products: array[int]  # per line: product id, quantity and unit price in cents
    quantities: array[int]
    price_cents: array[int]


@dataclass(frozen=True)
class InventoryBlock:
    start: int  # first product id
    on_hand: array[int]
    sold: array[int]


Block = UserBlock | CategoryBlock | ProductBlock | OrderBlock | InventoryBlock
RawBatch = tuple[str, list[Row]]


def build_block(context: GenerationContext, block: Block) -> list[RawBatch]:
    """The raw rows of one block, table by table in load order: a function of the context
    and the block alone."""
    if isinstance(block, UserBlock):
        return [("users", _user_rows(context, block))]
    if isinstance(block, CategoryBlock):
        return [("categories", [(c.id, c.slug, c.name, c.parent_id)
                                for c in context.categories])]
    if isinstance(block, ProductBlock):
        return [("products", _product_rows(context, block))]
    if isinstance(block, OrderBlock):
        return _order_rows(context, block)
    return [("inventory", [
        (block.start + i, on_hand, 0, sold)
        for i, (on_hand, sold) in enumerate(zip(block.on_hand, block.sold, strict=True))
    ])]


def _user_rows(context: GenerationContext, block: UserBlock) -> list[Row]:
    words, seed = context.words, context.plan.seed
    rng = context.rng("users", block.index)
    rows: list[Row] = []
    for user_id in range(block.start, block.stop):
        first = rng.choice(words.first_names)
        last = rng.choice(words.last_names)
        local = ".".join(w for w in (_ascii_word(first), _ascii_word(last)) if w)
        email = f"{local or 'shopper'}{user_id}@{rng.choice(EMAIL_DOMAINS)}"
        created = _SIGNUP_START_S + rng.randrange(_SIGNUP_SPAN_S)
        rows.append((user_id, email, f"{first} {last}", shopper_password_hash(seed, user_id),
                     created))
    return rows


def _product_rows(context: GenerationContext, block: ProductBlock) -> list[Row]:
    words, seed = context.words, context.plan.seed
    rng = context.rng("products", block.index)
    rows: list[Row] = []
    for offset, (category_index, kind_index, cents) in enumerate(
        zip(block.categories, block.kinds, block.price_cents, strict=True)
    ):
        product_id = block.start + offset
        category = context.categories[category_index]
        dept = category.department
        kind = dept.types[kind_index]
        brand = rng.choice(words.brands)
        adjective = rng.choice(ADJECTIVES)
        letters, digits = model_code(product_id, seed)
        model = f"{letters}-{digits:03d}"
        first, second = rng.sample(dept.features, 2)
        description = (
            f"The {brand} {kind.name} {model} is a {adjective.lower()} "
            f"{kind.name.lower()} {dept.material_verb} {rng.choice(dept.materials)}. "
            f"It {first}, and it {second}. {rng.choice(words.slogans)}."
        )
        rows.append((
            product_id,
            f"{dept.slug[:3].upper()}-{letters}{digits:03d}",
            f"{brand} {adjective} {kind.name} {model}",
            description,
            category.id,
            cents,
            CURRENCY,
            rng.random() >= _INACTIVE_SHARE,
            1,
            _BASE_S - rng.randrange(_HISTORY_S),
        ))
    return rows


def _order_rows(context: GenerationContext, block: OrderBlock) -> list[RawBatch]:
    rng = context.rng("orders", block.index)
    step = _HISTORY_S / context.plan.orders
    orders: list[Row] = []
    items: list[Row] = []
    reservations: list[Row] = []
    payments: list[Row] = []
    shipments: list[Row] = []
    line = 0
    for offset, (user_id, count) in enumerate(
        zip(block.users, block.line_counts, strict=True)
    ):
        number = block.start + offset
        created = _BASE_S - _HISTORY_S + int((number - 1 + rng.random()) * step)
        order_id = ((created * 1000 + rng.randrange(1000)) << 80) | _UUID7_VERSION_VARIANT \
            | (rng.getrandbits(12) << 64) | rng.getrandbits(62)
        paid = created + rng.randint(1, 5)
        shipped = paid + rng.randint(5, 120)
        in_transit = shipped + rng.randint(2 * 3600, 24 * 3600)
        delivered = in_transit + rng.randint(86_400, 3 * 86_400)
        if in_transit > _BASE_S:
            status, shipment_status, updated = "paid", "created", paid
        elif delivered > _BASE_S:
            status, shipment_status, updated = "shipped", "in_transit", in_transit
        else:
            status, shipment_status, updated = "delivered", "delivered", delivered
        total = 0
        for product, quantity, cents in zip(block.products[line:line + count],
                                            block.quantities[line:line + count],
                                            block.price_cents[line:line + count], strict=True):
            total += cents * quantity
            items.append((order_id, product, quantity, cents))
            reservations.append((order_id, product, quantity, "committed", paid))
        line += count
        orders.append((order_id, user_id, status, total, CURRENCY, created, updated))
        payments.append((number, order_id, idempotency_key(UUID(int=order_id)), 1, "captured",
                         total, CURRENCY, f"ch_{rng.getrandbits(96):024x}", None, paid))
        shipments.append((number, order_id, f"EC{rng.getrandbits(64):016X}", CARRIER,
                          shipment_status, shipped, updated))
    return [("orders", orders), ("order_items", items),
            ("inventory_reservations", reservations), ("payments", payments),
            ("shipments", shipments)]


# -- planning: the sequential decisions ------------------------------------------------------


class ShopGenerator:
    """Plans the blocks in load order (``blocks``), in one pass; afterwards
    ``initial_stock`` says what each product had before the past orders."""

    def __init__(self, plan: SeedPlan, context: GenerationContext | None = None) -> None:
        validate(plan)
        self.plan = plan
        self.context = context if context is not None else GenerationContext.build(plan)
        self._categories = self.context.categories
        # Per-product arrays (index = product id - 1), filled by _shape_catalogue.
        self._product_category = array("l")
        self._kinds = array("l")
        self._price_cents = array("q")
        self._initial = array("l")
        self._remaining = array("l")
        self._popularity: list[float] = []  # cumulative weights over all products
        self._by_category: list[list[int]] = []  # product indexes per category
        self._category_popularity: list[list[float]] = []  # cumulative, per category
        self._companions = array("l")
        self._started = False

    @property
    def initial_stock(self) -> dict[int, int]:
        """Units of each product (by id) before the past orders; known once products are."""
        return {index + 1: units for index, units in enumerate(self._initial)}

    def blocks(self) -> Iterator[Block]:
        if self._started:
            raise RuntimeError("a ShopGenerator makes one pass; build another for more")
        self._started = True
        return self._blocks()

    def batches(self) -> Iterator[Batch]:
        """Every block built here, as batches of Python values."""
        for block in self.blocks():
            for table, rows in build_block(self.context, block):
                yield Batch(table, python_rows(table, rows))

    def _blocks(self) -> Iterator[Block]:
        plan = self.plan
        for index, start in enumerate(range(1, plan.users + 1, USERS_PER_BLOCK)):
            yield UserBlock(index, start, min(start + USERS_PER_BLOCK, plan.users + 1))
        yield CategoryBlock()
        self._shape_catalogue()
        for index, start in enumerate(range(0, plan.products, PRODUCTS_PER_BLOCK)):
            stop = min(start + PRODUCTS_PER_BLOCK, plan.products)
            yield ProductBlock(index, start + 1, self._product_category[start:stop],
                               self._kinds[start:stop], self._price_cents[start:stop])
        yield from self._order_blocks()
        for start in range(0, plan.products, INVENTORY_PER_BLOCK):
            stop = min(start + INVENTORY_PER_BLOCK, plan.products)
            on_hand = self._remaining[start:stop]
            sold = array("l", (initial - left for initial, left
                               in zip(self._initial[start:stop], on_hand, strict=True)))
            yield InventoryBlock(start + 1, on_hand, sold)

    # -- catalogue ------------------------------------------------------------------------

    def _shape_catalogue(self) -> None:
        """Category, type, price, popularity and initial stock of every product."""
        plan, rng = self.plan, self.context.rng("catalogue")
        count = plan.products
        categories = self._categories
        category_weights = list(accumulate(rng.uniform(0.5, 2.0) for _ in categories))
        # The first products give every category one product; the rest follow the weights.
        self._product_category = array("l", (
            i if i < len(categories)
            else bisect(category_weights, rng.random() * category_weights[-1])
            for i in range(count)
        ))
        for category_index in self._product_category:
            category = categories[category_index]
            kind_index = (category.type_index if category.type_index is not None
                          else rng.randrange(len(category.department.types)))
            self._kinds.append(kind_index)
            self._price_cents.append(
                _price_cents(rng, category.department.types[kind_index].typical_price)
            )
        ranks = list(range(count))
        rng.shuffle(ranks)
        weights = [(rank + 5) ** -_PRODUCT_POPULARITY_EXPONENT for rank in ranks]
        self._popularity = list(accumulate(weights))
        total_weight = self._popularity[-1]
        self._by_category = [[] for _ in categories]
        for index, category_index in enumerate(self._product_category):
            self._by_category[category_index].append(index)
        self._category_popularity = [
            list(accumulate(weights[i] for i in members)) for members in self._by_category
        ]
        # Initial stock follows expected demand (with headroom), so best sellers rarely sell
        # out; a few products are deliberately stocked short and do.
        units = plan.orders * _EXPECTED_UNITS
        initial = array("l")
        for weight in weights:
            demand = units * weight / total_weight
            if rng.random() < _LOW_STOCK_SHARE:
                initial.append(int(demand * rng.uniform(0.3, 1.0)) + rng.randrange(6))
            else:
                initial.append(math.ceil(demand * rng.uniform(1.3, 2.0)) + rng.randint(20, 500))
        self._initial = initial
        self._remaining = array("l", initial)

    # -- orders ---------------------------------------------------------------------------

    def _order_blocks(self) -> Iterator[OrderBlock]:
        """Each block's customers and lines, spending the stock order by order."""
        orders = self.plan.orders
        if orders == 0:
            return
        rng = self.context.rng("orders")
        self._pick_companions(rng)
        user_weights = [(rank + 1) ** -_USER_ACTIVITY_EXPONENT for rank in range(self.plan.users)]
        rng.shuffle(user_weights)
        users = list(accumulate(user_weights))
        total_weight = users[-1]
        prices = self._price_cents
        for index, start in enumerate(range(0, orders, ORDERS_PER_BLOCK)):
            block = OrderBlock(index, start + 1, array("l"), array("l"), array("l"),
                               array("l"), array("q"))
            for _ in range(start, min(start + ORDERS_PER_BLOCK, orders)):
                block.users.append(bisect(users, rng.random() * total_weight) + 1)
                lines = self._lines(rng)
                block.line_counts.append(len(lines))
                for product, quantity in lines:
                    block.products.append(product + 1)
                    block.quantities.append(quantity)
                    block.price_cents.append(prices[product])
            yield block

    def _pick_companions(self, rng: Random) -> None:
        """Two products of the same category per product: its "bought together" partners."""
        companions = array("l")
        for category in self._product_category:
            members = self._by_category[category]
            for _ in range(2):
                companions.append(members[rng.randrange(len(members))])
        self._companions = companions

    def _lines(self, rng: Random) -> tuple[tuple[int, int], ...]:
        count = bisect(_LINES_CUMULATIVE, rng.random()) + 1
        lines: list[tuple[int, int]] = []
        picked: set[int] = set()
        remaining = self._remaining
        for position in range(count):
            for _ in range(_DRAW_ATTEMPTS):
                product = self._draw(rng, lines) if position else self._draw_popular(rng)
                if product in picked or remaining[product] <= 0:
                    continue
                quantity = min(bisect(_QUANTITY_CUMULATIVE, rng.random()) + 1,
                               remaining[product])
                remaining[product] -= quantity
                picked.add(product)
                lines.append((product, quantity))
                break
        if not lines:  # every draw hit sold-out stock: take the next product that has some
            start = rng.randrange(len(remaining))
            for offset in range(len(remaining)):
                product = (start + offset) % len(remaining)
                if remaining[product] > 0:
                    remaining[product] -= 1
                    return ((product, 1),)
            raise RuntimeError("no stock left for the past orders")  # initial stock >= orders
        return tuple(lines)

    def _draw_popular(self, rng: Random) -> int:
        return bisect(self._popularity, rng.random() * self._popularity[-1])

    def _draw(self, rng: Random, lines: Sequence[tuple[int, int]]) -> int:
        roll = rng.random()
        if roll < _COMPANION_SHARE:
            anchor = lines[rng.randrange(len(lines))][0]
            return self._companions[2 * anchor + rng.randrange(2)]
        if roll < _COMPANION_SHARE + _SAME_CATEGORY_SHARE:
            category = self._product_category[lines[0][0]]
            weights = self._category_popularity[category]
            return self._by_category[category][bisect(weights, rng.random() * weights[-1])]
        return self._draw_popular(rng)


def _price_cents(rng: Random, typical_dollars: int) -> int:
    """Scattered around the type's typical price, ending in .99 mostly, else .49 or .00."""
    dollars = typical_dollars * rng.lognormvariate(0, 0.45)
    dollars = max(1, round(min(max(dollars, typical_dollars / 4), typical_dollars * 4)))
    ending = rng.random()
    if ending < 0.70:
        return dollars * 100 - 1
    if ending < 0.85:
        return dollars * 100 - 51 if dollars > 1 else 49
    return dollars * 100
