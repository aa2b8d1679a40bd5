"""Deterministic shop data: the same plan (counts, seed, locale) gives the same rows, byte for
byte, on every run and machine with the same Faker version.

Nothing here reads the clock or does I/O. Faker (``Faker(locale).seed_instance(seed)``) only
builds small word lists once; every row is then drawn from per-table ``random.Random``
streams, so the rows of one table do not change when another table's count does, and
generation costs microseconds per row. Timestamps count back from ``BASE_TIME``.

``generate()`` streams ``Batch``es in an order that satisfies the foreign keys (users,
categories, products, then each chunk of orders with its items, reservations, payments and
shipments, and inventory last, once the orders have said how much of each product was sold),
so a loader can COPY each batch as it comes with bounded memory.

The past orders have structure, so that recommendations and best sellers have signal:
product popularity is Zipf-like, a customer's second and later lines favour the first line's
category and each product's two "companions" (bought together often), and a few customers
order much more than others. Every past order is paid, shipped or delivered (by its age),
with one captured payment of exactly its total, its committed stock reservations and one
shipment; ``sold`` counts exactly the units of those orders and no product sells more than
its initial stock (``on_hand = initial - sold >= 0``, ``reserved = 0``).
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import accumulate
from random import Random
from uuid import UUID

from argon2.low_level import Type, hash_secret

from ecomctl.adapters.seeding.tables import Batch, Row
from ecomctl.seed.plan import SeedPlan, validate
from ecomctl.seed.vocabulary import ADJECTIVES, DEPARTMENTS, EMAIL_DOMAINS, Department
from ecomctl.services.payment import idempotency_key
from ecomctl.services.shipment import CARRIER

HashMap = Callable[[Callable[[int], str], Iterable[int]], Iterable[str]]
"""``map``-shaped: how to run the password hashes (builtin ``map``, or an executor's)."""

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
"""Every seeded timestamp is before this instant."""
ORDER_HISTORY = timedelta(days=365)
USER_SIGNUP_SPAN = timedelta(days=365)  # accounts open in the year before the order history
CURRENCY = "USD"
DEFAULT_CHUNK_ROWS = 10_000

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


def generate(
    plan: SeedPlan, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, hash_map: HashMap = map
) -> Iterator[Batch]:
    """The shop's rows as batches of at most ``chunk_rows`` (an order chunk also yields its
    items, reservations, payments and shipments). ``hash_map`` may run the argon2 hashes in
    an executor; the rows do not depend on it, nor on ``chunk_rows``."""
    return ShopGenerator(plan, hash_map).batches(chunk_rows)


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


class ShopGenerator:
    """One pass over the shop's rows (``batches``); afterwards ``initial_stock`` says what each
    product had before the past orders."""

    def __init__(self, plan: SeedPlan, hash_map: HashMap = map) -> None:
        validate(plan)
        self.plan = plan
        self._hash_map = hash_map
        self._categories = category_specs(plan.categories)
        self._words = _Words.build(plan.locale, plan.seed)
        # Per-product arrays (index = product id - 1), filled by _shape_catalogue.
        self._product_category = array("l")
        self._price_cents = array("q")
        self._prices: list[Decimal] = []  # the same, as money: order lines reuse them
        self._initial = array("l")
        self._remaining = array("l")
        self._popularity: list[float] = []  # cumulative weights over all products
        self._by_category: list[list[int]] = []  # product indexes per category
        self._category_popularity: list[list[float]] = []  # cumulative, per category
        self._companions = array("l")
        self._started = False

    def _rng(self, stream: str) -> Random:
        # A string seed is hashed with SHA-512 by Random: stable across runs and platforms.
        return Random(f"ecomctl:{self.plan.seed}:{stream}")

    @property
    def initial_stock(self) -> dict[int, int]:
        """Units of each product (by id) before the past orders; known once products are."""
        return {index + 1: units for index, units in enumerate(self._initial)}

    # -- the stream of batches ------------------------------------------------------------

    def batches(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Batch]:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        if self._started:
            raise RuntimeError("a ShopGenerator makes one pass; build another for more")
        self._started = True
        return self._batches(chunk_rows)

    def _batches(self, chunk_rows: int) -> Iterator[Batch]:
        plan = self.plan
        users = self._rng("users")
        for start in range(1, plan.users + 1, chunk_rows):
            yield Batch("users", self._users(users, start, min(start + chunk_rows, plan.users + 1)))
        yield Batch("categories", [
            (c.id, c.slug, c.name, c.parent_id) for c in self._categories
        ])
        self._shape_catalogue()
        products = self._rng("products")
        for start in range(1, plan.products + 1, chunk_rows):
            stop = min(start + chunk_rows, plan.products + 1)
            yield Batch("products", self._products(products, start, stop))
        yield from self._order_batches(chunk_rows)
        for start in range(1, plan.products + 1, chunk_rows):
            stop = min(start + chunk_rows, plan.products + 1)
            yield Batch("inventory", self._inventory(start, stop))

    # -- users ----------------------------------------------------------------------------

    def _users(self, rng: Random, start: int, stop: int) -> list[Row]:
        words = self._words
        ids = range(start, stop)
        hashes = list(self._hash_map(partial(shopper_password_hash, self.plan.seed), ids))
        signup_start = _BASE_S - int((ORDER_HISTORY + USER_SIGNUP_SPAN).total_seconds())
        signup_span = int(USER_SIGNUP_SPAN.total_seconds())
        rows: list[Row] = []
        for user_id, password_hash in zip(ids, hashes, strict=True):
            first = rng.choice(words.first_names)
            last = rng.choice(words.last_names)
            local = ".".join(w for w in (_ascii_word(first), _ascii_word(last)) if w)
            email = f"{local or 'shopper'}{user_id}@{rng.choice(EMAIL_DOMAINS)}"
            created = timestamp(signup_start + rng.randrange(signup_span))
            rows.append((user_id, email, f"{first} {last}", password_hash, created))
        return rows

    # -- catalogue ------------------------------------------------------------------------

    def _shape_catalogue(self) -> None:
        """Category, popularity and initial stock of every product, before any row."""
        plan, rng = self.plan, self._rng("catalogue")
        count = plan.products
        category_weights = list(accumulate(rng.uniform(0.5, 2.0) for _ in self._categories))
        # The first products give every category one product; the rest follow the weights.
        self._product_category = array("l", (
            i if i < len(self._categories)
            else bisect(category_weights, rng.random() * category_weights[-1])
            for i in range(count)
        ))
        ranks = list(range(count))
        rng.shuffle(ranks)
        weights = [(rank + 5) ** -_PRODUCT_POPULARITY_EXPONENT for rank in ranks]
        self._popularity = list(accumulate(weights))
        total_weight = self._popularity[-1]
        self._by_category = [[] for _ in self._categories]
        for index, category in enumerate(self._product_category):
            self._by_category[category].append(index)
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

    def _products(self, rng: Random, start: int, stop: int) -> list[Row]:
        words, seed = self._words, self.plan.seed
        updated_span = int(ORDER_HISTORY.total_seconds())
        rows: list[Row] = []
        for product_id in range(start, stop):
            category = self._categories[self._product_category[product_id - 1]]
            dept = category.department
            kind = dept.types[
                category.type_index if category.type_index is not None
                else rng.randrange(len(dept.types))
            ]
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
            cents = _price_cents(rng, kind.typical_price)
            price = money_from_cents(cents)
            self._price_cents.append(cents)
            self._prices.append(price)
            rows.append((
                product_id,
                f"{dept.slug[:3].upper()}-{letters}{digits:03d}",
                f"{brand} {adjective} {kind.name} {model}",
                description,
                category.id,
                price,
                CURRENCY,
                rng.random() >= _INACTIVE_SHARE,
                1,
                timestamp(_BASE_S - rng.randrange(updated_span)),
            ))
        return rows

    def _inventory(self, start: int, stop: int) -> list[Row]:
        rows: list[Row] = []
        for product_id in range(start, stop):
            on_hand = self._remaining[product_id - 1]
            rows.append((product_id, on_hand, 0, self._initial[product_id - 1] - on_hand))
        return rows

    # -- orders ---------------------------------------------------------------------------

    def _order_batches(self, chunk_rows: int) -> Iterator[Batch]:
        orders = self.plan.orders
        if orders == 0:
            return
        rng = self._rng("orders")
        self._pick_companions(rng)
        user_weights = [(rank + 1) ** -_USER_ACTIVITY_EXPONENT for rank in range(self.plan.users)]
        rng.shuffle(user_weights)
        users = list(accumulate(user_weights))
        for start in range(0, orders, chunk_rows):
            specs = [self._order(rng, users, i) for i in range(start, min(start + chunk_rows,
                                                                          orders))]
            yield Batch("orders", [
                (s.id, s.user_id, s.status, money_from_cents(s.total_cents), CURRENCY,
                 timestamp(s.created_s), timestamp(s.updated_s))
                for s in specs
            ])
            yield Batch("order_items", [
                (s.id, product + 1, quantity, self._prices[product])
                for s in specs for product, quantity in s.lines
            ])
            yield Batch("inventory_reservations", [
                (s.id, product + 1, quantity, "committed", timestamp(s.paid_s))
                for s in specs for product, quantity in s.lines
            ])
            yield Batch("payments", [
                (s.number, s.id, idempotency_key(s.id), 1, "captured",
                 money_from_cents(s.total_cents), CURRENCY, s.gateway_ref, None,
                 timestamp(s.paid_s))
                for s in specs
            ])
            yield Batch("shipments", [
                (s.number, s.id, s.tracking_number, CARRIER, s.shipment_status,
                 timestamp(s.shipped_s), timestamp(s.updated_s))
                for s in specs
            ])

    def _pick_companions(self, rng: Random) -> None:
        """Two products of the same category per product: its "bought together" partners."""
        companions = array("l")
        for category in self._product_category:
            members = self._by_category[category]
            for _ in range(2):
                companions.append(members[rng.randrange(len(members))])
        self._companions = companions

    def _order(self, rng: Random, users: list[float], index: int) -> _OrderSpec:
        history_s = int(ORDER_HISTORY.total_seconds())
        step = history_s / self.plan.orders
        created = _BASE_S - history_s + int((index + rng.random()) * step)
        order_id = UUID(int=rng.getrandbits(128), version=4)
        user_id = bisect(users, rng.random() * users[-1]) + 1
        lines = self._lines(rng)
        total = sum(self._price_cents[product] * quantity for product, quantity in lines)
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
        return _OrderSpec(
            number=index + 1, id=order_id, user_id=user_id, lines=lines, total_cents=total,
            status=status, shipment_status=shipment_status, created_s=created, paid_s=paid,
            shipped_s=shipped, updated_s=updated,
            gateway_ref=f"ch_{rng.getrandbits(96):024x}",
            tracking_number=f"EC{rng.getrandbits(64):016X}",
        )

    def _lines(self, rng: Random) -> tuple[tuple[int, int], ...]:
        count = bisect(_LINES_CUMULATIVE, rng.random()) + 1
        lines: list[tuple[int, int]] = []
        picked: set[int] = set()
        for position in range(count):
            for _ in range(_DRAW_ATTEMPTS):
                product = self._draw(rng, lines) if position else self._draw_popular(rng)
                if product in picked or self._remaining[product] <= 0:
                    continue
                quantity = min(bisect(_QUANTITY_CUMULATIVE, rng.random()) + 1,
                               self._remaining[product])
                self._remaining[product] -= quantity
                picked.add(product)
                lines.append((product, quantity))
                break
        if not lines:  # every draw hit sold-out stock: take the next product that has some
            start = rng.randrange(len(self._remaining))
            for offset in range(len(self._remaining)):
                product = (start + offset) % len(self._remaining)
                if self._remaining[product] > 0:
                    self._remaining[product] -= 1
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


@dataclass(frozen=True, slots=True)
class _OrderSpec:
    number: int  # 1-based position in the history: also the payment and shipment id
    id: UUID
    user_id: int
    lines: tuple[tuple[int, int], ...]  # (product index, quantity)
    total_cents: int
    status: str
    shipment_status: str
    created_s: int
    paid_s: int
    shipped_s: int
    updated_s: int
    gateway_ref: str
    tracking_number: str


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
