from __future__ import annotations

from decimal import Decimal

import pytest

from ecomctl.adapters.cache import L1Cache
from ecomctl.adapters.product_cache import decode_product, encode_product
from ecomctl.domain.models import Product


class FakeClock:
    """A hand-driven monotonic clock (time is not a backend; this is not a mock of one)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    cache: L1Cache[str] = L1Cache(max_size=10, ttl_s=30, clock=clock)
    cache.set("a", "apple")
    clock.now += 29.9
    assert cache.get("a") == "apple"
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0  # an expired entry is removed when it is found


def test_ttl_counts_from_the_last_set_not_the_last_get() -> None:
    clock = FakeClock()
    cache: L1Cache[str] = L1Cache(max_size=10, ttl_s=10, clock=clock)
    cache.set("a", "v1")
    clock.now += 8
    assert cache.get("a") == "v1"  # reading does not extend the lifetime
    clock.now += 3
    assert cache.get("a") is None
    cache.set("a", "v2")
    clock.now += 9
    assert cache.get("a") == "v2"


def test_least_recently_used_is_evicted_first() -> None:
    cache: L1Cache[int] = L1Cache(max_size=3, ttl_s=60, clock=FakeClock())
    for i, key in enumerate("abc"):
        cache.set(key, i)
    assert cache.get("a") == 0  # "a" is now the most recently used; "b" the least
    cache.set("d", 3)
    assert "b" not in cache
    assert [k for k in "abcd" if k in cache] == ["a", "c", "d"]
    cache.set("c", 20)  # overwriting also counts as a use
    cache.set("e", 4)
    assert [k for k in "acde" if k in cache] == ["c", "d", "e"]
    assert cache.get("c") == 20


def test_size_never_exceeds_the_bound() -> None:
    cache: L1Cache[int] = L1Cache(max_size=100, ttl_s=60, clock=FakeClock())
    for i in range(1000):
        cache.set(f"k{i}", i)
        assert len(cache) <= 100
    assert len(cache) == 100
    assert cache.get("k899") is None
    assert cache.get("k900") == 900 and cache.get("k999") == 999


def test_delete_and_clear() -> None:
    cache: L1Cache[int] = L1Cache(max_size=10, ttl_s=60, clock=FakeClock())
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.delete("a") is True
    assert cache.delete("a") is False
    assert cache.get("a") is None and cache.get("b") == 2
    cache.clear()
    assert len(cache) == 0


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        L1Cache(max_size=0, ttl_s=1)


def test_product_codec_keeps_the_price_exact() -> None:
    product = Product(
        id=7, sku="SKU-7", name="Mug «café»", description="", category_id=3,
        category_slug="kitchen", price=Decimal("0.10"), currency="USD", active=False, version=4,
    )
    raw = encode_product(product)
    assert '"price":"0.10"' in raw
    decoded = decode_product(raw)
    assert decoded == product
    assert isinstance(decoded.price, Decimal) and str(decoded.price) == "0.10"
