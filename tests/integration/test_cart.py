"""The cart service on the real Redis of the local stack.

The product lookup is a small async function over a dict: that is the product service's
contract (``ProductService.get``), not a backend.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest
import redis.asyncio as redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ecomctl.adapters.redis_store import REVISION, CartStore, cart_key
from ecomctl.domain.models import MAX_CART_LINES, MAX_LINE_QUANTITY, Cart, CartLine, Product
from ecomctl.errors import BackendUnavailable, CartFull, NotFound, ValidationFailed
from ecomctl.services.cart import CartService
from ecomctl.telemetry.spans import ServiceTracer

DAY_S = 86_400
DELISTED = 999


def product(product_id: int, *, active: bool = True) -> Product:
    return Product(
        id=product_id, sku=f"SKU-{product_id}", name=f"Product {product_id}", description="",
        category_id=1, category_slug="things", price=Decimal("9.99"), currency="USD",
        active=active, version=1,
    )


CATALOGUE = {pid: product(pid) for pid in range(1, 71)}
CATALOGUE[DELISTED] = product(DELISTED, active=False)


async def lookup(product_id: int) -> Product:
    try:
        return CATALOGUE[product_id]
    except KeyError:
        raise NotFound("product", product_id) from None


def lines(*pairs: tuple[int, int]) -> tuple[CartLine, ...]:
    return tuple(CartLine(pid, qty) for pid, qty in pairs)


@pytest.fixture
def carts(redis_client: redis.Redis, exporter: InMemorySpanExporter) -> CartService:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = ServiceTracer("cart", provider.get_tracer("tests"))
    return CartService(CartStore(redis_client), lookup, tracer)


@pytest.fixture
async def new_user(redis_client: redis.Redis) -> AsyncIterator[Callable[[], int]]:
    """Unique user ids (no collision with other tests' carts); their carts are deleted after."""
    made: list[int] = []

    def make() -> int:
        made.append(10**12 + secrets.randbelow(10**12))
        return made[-1]

    yield make
    if made:
        await redis_client.delete(*[cart_key(uid) for uid in made])


async def test_add_merge_set_remove_clear(
    carts: CartService, new_user: Callable[[], int], redis_client: redis.Redis
) -> None:
    user = new_user()
    assert await carts.get(user) == Cart(user_id=user)

    assert (await carts.add_item(user, 7, 2)).lines == lines((7, 2))
    assert (await carts.add_item(user, 7, 3)).lines == lines((7, 5))  # merged into one line
    assert (await carts.add_item(user, 3, 1)).lines == lines((3, 1), (7, 5))  # by product id
    assert (await carts.set_quantity(user, 3, 10)).lines == lines((3, 10), (7, 5))
    assert (await carts.set_quantity(user, 9, 4)).lines == lines((3, 10), (7, 5), (9, 4))
    assert (await carts.set_quantity(user, 9, 0)).lines == lines((3, 10), (7, 5))
    assert (await carts.remove_item(user, 3)).lines == lines((7, 5))
    last = await carts.remove_item(user, 3)
    assert last.lines == lines((7, 5))  # idempotent
    assert await carts.get(user) == Cart(user_id=user, lines=lines((7, 5)),
                                         revision=last.revision)

    # The hash holds product id -> quantity and the cart's revision, nothing else (no prices).
    assert await redis_client.hgetall(cart_key(user)) == {
        b"7": b"5", REVISION.encode(): str(last.revision).encode()}

    await carts.clear(user)
    assert await redis_client.exists(cart_key(user)) == 0
    assert (await carts.get(user)).is_empty


async def test_every_change_makes_a_new_revision_and_nothing_else_does(
    carts: CartService, new_user: Callable[[], int], redis_client: redis.Redis
) -> None:
    """An order records the cart revision it was bought from, so one revision is paid once:
    a revision must never come back, not even after the cart was emptied."""
    user = new_user()
    seen: list[str | None] = [(await carts.add_item(user, 7, 2)).revision]
    change: Callable[[], Awaitable[Cart]]
    for change in (lambda: carts.add_item(user, 7, 1), lambda: carts.set_quantity(user, 3, 2),
                   lambda: carts.remove_item(user, 3)):
        seen.append((await change()).revision)
        assert (await carts.get(user)).revision == seen[-1]
    assert None not in seen and len(set(seen)) == len(seen)
    # Refused or empty-handed writes change nothing.
    assert (await carts.remove_item(user, 3)).revision == seen[-1]
    with pytest.raises(CartFull):
        await carts.add_item(user, 7, MAX_LINE_QUANTITY)
    assert (await carts.get(user)).revision == seen[-1]
    # The last line removed: the cart and its revision are gone, the next one is new.
    assert (await carts.remove_item(user, 7)).revision is None
    assert await redis_client.exists(cart_key(user)) == 0
    assert (await carts.add_item(user, 7, 2)).revision not in seen


async def test_clear_if_holds_empties_only_a_cart_holding_exactly_those_items(
    carts: CartService, new_user: Callable[[], int]
) -> None:
    user = new_user()
    await carts.add_item(user, 7, 2)
    await carts.add_item(user, 3, 1)
    for other in ({7: 2}, {7: 2, 3: 2}, {7: 2, 3: 1, 5: 1}, {7: 1, 3: 1}, {}):
        assert not await carts.clear_if_holds(user, other)
        assert (await carts.get(user)).items == {7: 2, 3: 1}
    assert await carts.clear_if_holds(user, {3: 1, 7: 2})
    assert (await carts.get(user)).is_empty
    assert not await carts.clear_if_holds(user, {3: 1, 7: 2})  # an empty cart holds nothing


async def test_every_write_renews_the_24h_ttl(
    carts: CartService, new_user: Callable[[], int], redis_client: redis.Redis
) -> None:
    user = new_user()
    key = cart_key(user)
    await carts.add_item(user, 1, 1)
    assert DAY_S - 60 < await redis_client.ttl(key) <= DAY_S
    writes: list[Callable[[], Awaitable[Cart]]] = [
        lambda: carts.add_item(user, 1, 1),
        lambda: carts.set_quantity(user, 2, 3),
        lambda: carts.set_quantity(user, 2, 0),
        lambda: carts.remove_item(user, 1),
    ]
    await carts.add_item(user, 3, 1)  # so the cart still exists after the removals
    for write in writes:
        await redis_client.expire(key, 100)
        await write()
        assert DAY_S - 60 < await redis_client.ttl(key) <= DAY_S


async def test_unknown_or_delisted_product_is_not_found_and_nothing_is_written(
    carts: CartService, new_user: Callable[[], int], redis_client: redis.Redis
) -> None:
    user = new_user()
    for product_id in (424242, DELISTED):
        with pytest.raises(NotFound):
            await carts.add_item(user, product_id, 1)
        with pytest.raises(NotFound):
            await carts.set_quantity(user, product_id, 1)
    assert await redis_client.exists(cart_key(user)) == 0


@pytest.mark.parametrize("quantity", [0, -1, MAX_LINE_QUANTITY + 1, 1.5, "2", True, None])
async def test_bad_quantities_are_refused_by_add(
    carts: CartService, new_user: Callable[[], int], redis_client: redis.Redis, quantity: object
) -> None:
    user = new_user()
    with pytest.raises(ValidationFailed):
        await carts.add_item(user, 1, quantity)  # type: ignore[arg-type]
    assert await redis_client.exists(cart_key(user)) == 0


@pytest.mark.parametrize("quantity", [-1, MAX_LINE_QUANTITY + 1, 0.0, 2.0, "0", False])
async def test_bad_quantities_are_refused_by_set(
    carts: CartService, new_user: Callable[[], int], quantity: object
) -> None:
    user = new_user()
    await carts.add_item(user, 1, 2)
    with pytest.raises(ValidationFailed):
        await carts.set_quantity(user, 1, quantity)  # type: ignore[arg-type]
    assert (await carts.get(user)).lines == lines((1, 2))


async def test_merging_past_the_line_maximum_is_refused(
    carts: CartService, new_user: Callable[[], int]
) -> None:
    user = new_user()
    await carts.add_item(user, 1, 60)
    with pytest.raises(ValidationFailed, match="at most 100"):
        await carts.add_item(user, 1, 41)
    assert (await carts.get(user)).lines == lines((1, 60))
    assert (await carts.add_item(user, 1, 40)).lines == lines((1, MAX_LINE_QUANTITY))


async def test_line_maximum_holds_under_50_concurrent_adds(
    carts: CartService, new_user: Callable[[], int]
) -> None:
    user = new_user()
    results = await asyncio.gather(
        *(carts.add_item(user, 5, 3) for _ in range(50)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, ValidationFailed) for r in refused), refused
    # 33 x 3 = 99 fits; a 34th add would make 102.
    assert len(results) - len(refused) == 33
    assert (await carts.get(user)).lines == lines((5, 99))


async def test_line_count_maximum_holds_under_concurrent_adds(
    carts: CartService, new_user: Callable[[], int]
) -> None:
    user = new_user()
    results = await asyncio.gather(
        *(carts.add_item(user, pid, 1) for pid in range(1, 71)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, ValidationFailed) for r in refused), refused
    assert len(refused) == 70 - MAX_CART_LINES
    cart = await carts.get(user)
    assert len(cart.lines) == MAX_CART_LINES
    # A line already in the full cart can still grow; a new one cannot be set either.
    existing = cart.lines[0].product_id
    assert await carts.add_item(user, existing, 1)
    missing = next(pid for pid in CATALOGUE if pid not in {ln.product_id for ln in cart.lines})
    with pytest.raises(ValidationFailed, match="at most 50"):
        await carts.set_quantity(user, missing, 1)


async def test_two_users_carts_are_independent(
    carts: CartService, new_user: Callable[[], int]
) -> None:
    alice, bob = new_user(), new_user()
    await carts.add_item(alice, 1, 2)
    await carts.add_item(bob, 1, 7)
    await carts.add_item(bob, 2, 1)
    await carts.clear(alice)
    assert (await carts.get(alice)).is_empty
    assert (await carts.get(bob)).lines == lines((1, 7), (2, 1))


async def test_spans_carry_user_product_and_line_count(
    carts: CartService, new_user: Callable[[], int], exporter: InMemorySpanExporter
) -> None:
    user = new_user()
    await carts.add_item(user, 1, 1)
    await carts.add_item(user, 2, 1)
    await carts.get(user)
    with pytest.raises(NotFound):
        await carts.add_item(user, 424242, 1)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names == ["cart.add_item", "cart.add_item", "cart.get", "cart.add_item"]
    second = dict(spans[1].attributes or {})
    assert second == {"ecom.user.id": user, "ecom.product.id": 2, "ecom.cart.lines": 2}
    assert dict(spans[3].attributes or {})["ecom.outcome"] == "NotFound"


async def test_unreachable_redis_is_backend_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        store = CartStore(client)
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get(1), lambda: store.add(1, 1, 1), lambda: store.clear(1),
        ]
        for call in calls:
            with pytest.raises(BackendUnavailable) as down:
                await call()
            assert down.value.backend == "redis"
    finally:
        await client.aclose()
