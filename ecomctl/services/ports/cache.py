"""The read-through cache the catalogue reads go through (``adapters/cache.TieredCache``
implements it: L1 in-process, L2 Redis, L3 the loader)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import Protocol, TypeVar

T = TypeVar("T")


class CacheLevel(StrEnum):
    """Which level answered a lookup (the ``ecom.cache.level`` span attribute)."""

    L1 = "l1"  # this process's memory
    L2 = "l2"  # the shared cache (Redis)
    L3 = "l3"  # the source of truth (the loader)


class ReadThroughCache(Protocol[T]):
    """A cache that never fails a lookup: when its shared level is unreachable it answers
    from memory and the loader, and says so through ``degraded``."""

    @property
    def degraded(self) -> bool: ...

    async def get(
        self, key: str, load: Callable[[], Awaitable[T | None]]
    ) -> tuple[T | None, CacheLevel]:
        """The value and the level that answered; (None, L3) if the loader has none.
        Negative results are not cached."""
        ...

    async def get_many(
        self,
        keys: Iterable[str],
        load_many: Callable[[list[str]], Awaitable[dict[str, T]]],
    ) -> dict[str, tuple[T, CacheLevel]]:
        """Values for the keys that exist, in the order asked, with ONE ``load_many`` call
        for what no level held. Absent keys are left out."""
        ...

    async def invalidate(self, key: str) -> None:
        """Forget ``key`` everywhere (every process's memory too). Best effort."""
        ...
