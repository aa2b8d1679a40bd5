"""The product service's business rules against in-memory ports: cache-aside reads, what is
(not) cached, and writes that raise their event with the row and invalidate after it."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ecomctl.domain.flags import FaultFlags
from ecomctl.domain.models import Category
from ecomctl.errors import InfraError, NotFound, ValidationFailed
from ecomctl.services.product import ProductService
from tests.unit.catalogue_fakes import InMemoryCache, InMemoryCatalogue, Spans, product


def _shop(
    *products: int, inactive: tuple[int, ...] = (), flags: FaultFlags | None = None
) -> tuple[ProductService, InMemoryCatalogue, InMemoryCache, Spans]:
    log: list[str] = []
    repo = InMemoryCatalogue(log=log, category_list=[Category(1, "tea", "Tea")])
    for pid in products:
        repo.products[pid] = product(pid, price=f"{pid}.50")
    for pid in inactive:
        repo.products[pid] = product(pid, active=False)
    cache = InMemoryCache(log=log)
    spans = Spans("product")
    return ProductService(repo, cache, spans.tracer, flags), repo, cache, spans


async def test_get_loads_a_miss_from_the_catalogue_then_serves_it_from_the_cache() -> None:
    service, repo, cache, spans = _shop(7)

    first = await service.get(7)
    assert first.price == Decimal("7.50")
    assert repo.get_calls == [7]
    assert spans.last("product.get") == {
        "ecom.product.id": 7, "ecom.cache.hit": False, "ecom.cache.level": "l3",
    }
    assert cache.entries["7"] == first

    assert await service.get(7) == first
    assert repo.get_calls == [7]  # not asked again
    assert spans.last("product.get")["ecom.cache.hit"] is True
    assert spans.last("product.get")["ecom.cache.level"] == "l1"


@pytest.mark.parametrize("bad_id", [0, -5, 2**63, 2**70, True, "7"])
async def test_invalid_ids_are_not_found_without_asking_the_cache_or_catalogue(
    bad_id: object,
) -> None:
    service, repo, cache, spans = _shop(7)
    with pytest.raises(NotFound):
        await service.get(bad_id)  # type: ignore[arg-type]
    assert repo.get_calls == [] and cache.entries == {}
    assert spans.last("product.get")["ecom.outcome"] == "NotFound"


async def test_unknown_products_are_not_cached_and_inactive_ones_are_not_found() -> None:
    service, repo, cache, _ = _shop(7, inactive=(9,))
    for _ in range(2):
        with pytest.raises(NotFound):
            await service.get(8)
    assert repo.get_calls == [8, 8]  # a negative answer is asked again, never cached
    with pytest.raises(NotFound):
        await service.get(9)
    assert "8" not in cache.entries


async def test_get_many_loads_every_miss_in_one_call_and_counts_levels() -> None:
    service, repo, _, spans = _shop(1, 2, 3, inactive=(4,))
    await service.get(1)

    found = await service.get_many([1, 2, 3, 99, 1, 0])

    assert sorted(found) == [1, 2, 3]
    assert repo.get_many_calls == [[2, 3, 99]]  # one call, misses only, no duplicates
    attrs = spans.last("product.get_many")
    assert attrs["ecom.product.requested_count"] == 4  # 0 is dropped, 1 counted once
    assert (attrs["ecom.cache.l1_count"], attrs["ecom.cache.l2_count"],
            attrs["ecom.cache.l3_count"]) == (1, 0, 2)
    assert attrs["ecom.product.found_count"] == 3

    assert await service.get_many([1, 2, 3]) == found
    assert len(repo.get_many_calls) == 1  # all cached now
    assert 4 not in await service.get_many([4])
    assert (await service.get_many([4], include_inactive=True))[4].active is False
    assert await service.get_many([]) == {}


async def test_a_degraded_cache_is_marked_on_the_span() -> None:
    service, _, cache, spans = _shop(7)
    cache.degraded = True
    await service.get(7)
    await service.get_many([7])
    assert spans.last("product.get")["ecom.cache.degraded"] is True
    assert spans.last("product.get_many")["ecom.cache.degraded"] is True


async def test_update_price_raises_its_event_with_the_row_then_invalidates() -> None:
    service, repo, _, spans = _shop(7)
    await service.get(7)

    updated = await service.update_price(7, "24.5")

    assert updated.price == Decimal("24.50") and updated.version == 2
    assert repo.log == ["write 7", "invalidate 7"]  # the cache is dropped after the write
    (event,) = repo.outbox
    assert (event.event_type, event.topic, event.aggregate_type, event.aggregate_id) == (
        "product.changed", "product-events", "product", "7",
    )
    assert event.payload == {"product_id": 7, "version": 2, "change": "price",
                             "price": "24.50", "active": True}
    json.dumps(event.payload)  # no Decimal left: the outbox stores JSON
    assert spans.last("product.update") == {
        "ecom.product.id": 7, "ecom.product.change": "price", "ecom.product.version": 2,
    }
    assert (await service.get(7)).price == Decimal("24.50")  # reloaded, not the stale copy

    delisted = await service.set_active(7, False)
    assert delisted.version == 3 and repo.outbox[-1].payload["change"] == "active"
    with pytest.raises(NotFound):
        await service.get(7)


async def test_refused_changes_write_nothing_and_keep_the_cache() -> None:
    service, repo, cache, _ = _shop(7)
    await service.get(7)
    for price in ("-1", Decimal("NaN"), "1.001x"):
        with pytest.raises(ValidationFailed):
            await service.update_price(7, price)
    with pytest.raises(ValidationFailed):
        await service.set_active(7, "no")  # type: ignore[arg-type]
    for call in (service.update_price(8, "1.00"), service.set_active(8, True),
                 service.update_price(0, "1.00")):
        with pytest.raises(NotFound):
            await call
    assert repo.outbox == [] and repo.log == []
    assert "7" in cache.entries


async def test_a_failed_write_does_not_invalidate() -> None:
    service, repo, cache, _ = _shop(7)
    await service.get(7)
    repo.fail_writes = True
    with pytest.raises(InfraError):
        await service.update_price(7, "3.00")
    assert cache.log == [] and "7" in cache.entries


async def test_the_catalogue_fault_flag_fails_reads_of_those_products() -> None:
    service, repo, _, _ = _shop(7, 8, flags=FaultFlags(failing_product_ids=frozenset({8})))
    assert (await service.get(7)).id == 7
    with pytest.raises(InfraError):
        await service.get(8)
    with pytest.raises(InfraError):
        await service.get_many([7, 8])
    assert repo.get_calls == [7]


async def test_list_by_category_validates_paging_and_knows_unknown_categories() -> None:
    service, _, _, spans = _shop(1, 2, 3, inactive=(4,))
    page = await service.list_by_category("tea", page=1, page_size=2)
    assert [p.id for p in page.items] == [1, 2] and page.total == 3
    assert spans.last("product.list")["ecom.product.total"] == 3
    with pytest.raises(NotFound):
        await service.list_by_category("coffee")
    for page_number, size in ((0, 10), (1, 0), (1, 101), (True, 5)):
        with pytest.raises(ValidationFailed):
            await service.list_by_category("tea", page_number, size)
