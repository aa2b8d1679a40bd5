"""``seed_shop``: the whole seed, backend by backend.

1. PostgreSQL, in ONE transaction under an advisory lock: ``--reset`` truncates the shop
   tables; otherwise a shop that has products is left alone (reported, not an error). Then
   every table is generated and COPYed, and the identity sequences are moved past the ids.
2. After the commit only (a failed load must leave the old shop whole): the shop's Redis keys
   are removed, the search index is recreated and filled, the product cache optionally warmed,
   and the shoppers' credentials written.

Progress goes to a callback; nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.seeding import bulk_load as load
from ecomctl.adapters.seeding import cache_reset as seed_cache
from ecomctl.adapters.seeding import search_reindex as seed_index
from ecomctl.adapters.seeding.connections import (
    Connection,
    Redis,
    SeedConnections,
    check_reachable,
    postgres_errors,
    seed_connections,
)
from ecomctl.adapters.seeding.tables import SEEDED_TABLES, EncodedBatch
from ecomctl.config import Settings
from ecomctl.errors import ConfigError
from ecomctl.seed.credentials import Shopper, write_credentials
from ecomctl.seed.generate import GenerationContext, ShopGenerator, shopper_password
from ecomctl.seed.pipeline import (
    BLOCKS_AHEAD_PER_WORKER,
    BuiltBlock,
    block_executor,
    built_blocks,
    default_workers,
    effective_workers,
)
from ecomctl.seed.plan import SeedPlan

DEFAULT_SEARCH_ALIAS = "ecomctl-products"
DEFAULT_WARM_PRODUCTS = 1_000


@dataclass(frozen=True)
class SeedProgress:
    """One step moved on: a table being loaded, the search index, the product cache."""

    step: str
    done: int
    total: int | None  # None while unknown


ProgressCallback = Callable[[SeedProgress], None]


@dataclass(frozen=True)
class StepStats:
    step: str
    rows: int
    seconds: float
    generate_s: float = 0.0  # tables only: building and encoding the rows (in the workers)
    copy_s: float = 0.0  # tables only: in COPY

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SeedReport:
    plan: SeedPlan
    seeded: bool
    existing_products: int = 0
    tables: tuple[StepStats, ...] = ()
    load_seconds: float = 0.0
    """Wall time of the PostgreSQL load, generation to COMMIT. Less than the sum of the
    tables' seconds, because generation overlaps the COPY."""
    search: StepStats | None = None
    cache: StepStats | None = None
    redis_keys_removed: int = 0
    credentials_path: Path | None = None
    workers: int = 0
    """Worker processes that built the rows (0: one thread of the seeding process)."""

    @property
    def total_rows(self) -> int:
        return sum(table.rows for table in self.tables)

    @property
    def rows_per_s(self) -> float:
        return self.total_rows / self.load_seconds if self.load_seconds > 0 else 0.0

    @property
    def message(self) -> str:
        if not self.seeded:
            return f"already seeded: {self.existing_products} products; use --reset"
        return (f"seeded {self.total_rows:,} rows in {self.load_seconds:.2f}s "
                f"({self.rows_per_s:,.0f} rows/s)")

    def to_json(self) -> dict[str, Any]:
        def step(stats: StepStats | None) -> dict[str, Any] | None:
            if stats is None:
                return None
            return {**asdict(stats), "rows_per_s": round(stats.rows_per_s, 1)}

        return {
            "version": 1,
            "seeded": self.seeded,
            "message": self.message,
            "plan": asdict(self.plan),
            "existing_products": self.existing_products,
            "tables": [step(table) for table in self.tables],
            "total": {"rows": self.total_rows, "seconds": round(self.load_seconds, 3),
                      "rows_per_s": round(self.rows_per_s, 1)},
            "search_index": step(self.search),
            "product_cache": step(self.cache),
            "redis_keys_removed": self.redis_keys_removed,
            "credentials": None if self.credentials_path is None else str(self.credentials_path),
            "workers": self.workers,
        }


async def seed_shop(
    settings: Settings,
    plan: SeedPlan,
    *,
    reset: bool = False,
    credentials_path: Path,
    search_alias: str = DEFAULT_SEARCH_ALIAS,
    warm_cache: int = 0,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> SeedReport:
    """Seed the shop on the configured backends (see the module docstring). ``warm_cache``
    is how many best sellers to put in the product cache (0: none); ``workers`` how many
    processes may build rows (default: one per core; small plans use none). The data does
    not depend on it."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, not {workers}")
    processes = effective_workers(plan, workers or default_workers())

    def report(step: str, done: int, total: int | None) -> None:
        if progress is not None:
            progress(SeedProgress(step, done, total))

    async with seed_connections(settings) as backends:
        with postgres_errors():
            loaded = await _load_postgres(
                backends.postgres, plan, reset=reset, report=report, workers=processes,
                before_load=lambda: check_reachable(backends),
            )
        if isinstance(loaded, SeedReport):
            return loaded
        loads, load_seconds, shoppers = loaded
        removed = await _clear_caches(backends)
        with postgres_errors():
            search = await _index(backends, search_alias, report)
            cache = (await _warm(settings, backends.cache_redis, warm_cache, report)
                     if warm_cache else None)
        path = write_credentials(credentials_path, plan.seed, shoppers)
        return SeedReport(
            plan, seeded=True,
            tables=tuple(
                StepStats(t.table, t.rows, t.seconds, t.generate_s, t.copy_s)
                for t in loads.values()
            ),
            load_seconds=load_seconds, search=search, cache=cache,
            redis_keys_removed=removed, credentials_path=path, workers=processes,
        )


async def _clear_caches(backends: SeedConnections) -> int:
    removed = await seed_cache.clear_shop_keys(backends.redis)
    if backends.separate_cache_redis:
        removed += await seed_cache.clear_shop_keys(backends.cache_redis)
    return removed


async def _load_postgres(
    conn: Connection,
    plan: SeedPlan,
    *,
    reset: bool,
    report: Callable[[str, int, int | None], None],
    workers: int,
    before_load: Callable[[], Awaitable[None]],
) -> SeedReport | tuple[dict[str, load.TableLoad], float, list[Shopper]]:
    """The one transaction: a report when the shop is already seeded, else what the load
    cost, its wall time, and the shoppers to write down."""
    shoppers: list[Shopper] = []
    async with conn.transaction():
        await load.lock_for_seeding(conn)
        if reset:
            await load.truncate_shop(conn)
        else:
            counts = await load.row_counts(conn, load.SHOP_TABLES)
            if counts["products"]:
                return SeedReport(plan, seeded=False, existing_products=counts["products"])
            if any(counts.values()):
                rows = ", ".join(f"{t}: {n}" for t, n in counts.items() if n)
                raise ConfigError(
                    f"the shop has no products but is not empty ({rows}); "
                    "use --reset to start over"
                )
        await before_load()
        started = time.perf_counter()
        triggers_skipped = await load.skip_row_triggers(conn)
        generator = ShopGenerator(plan, GenerationContext.build(plan))
        with block_executor(generator.context, workers) as executor:
            blocks = built_blocks(generator, executor,
                                  ahead=BLOCKS_AHEAD_PER_WORKER * max(1, workers))
            loads = await load.copy_batches(conn, _collect_shoppers(blocks, plan.seed, shoppers),
                                            _expected_rows(plan), report)
        if triggers_skipped:
            await load.verify_foreign_keys(conn, SEEDED_TABLES)
        await load.advance_identities(conn)
    return loads, time.perf_counter() - started, shoppers


async def _warm(
    settings: Settings, redis: Redis, limit: int,
    report: Callable[[str, int, int | None], None],
) -> StepStats:
    started = time.perf_counter()
    db = await Database.connect(settings.database_url, min_size=1, max_size=4)
    try:
        warmed = await seed_cache.warm_product_cache(redis, db, limit)
    finally:
        await db.close()
    report("product cache", warmed, warmed)
    return StepStats("product cache", warmed, time.perf_counter() - started)


def _expected_rows(plan: SeedPlan) -> dict[str, int | None]:
    expected: dict[str, int | None] = dict.fromkeys(SEEDED_TABLES)
    expected.update(users=plan.users, categories=plan.categories, products=plan.products,
                    inventory=plan.products, orders=plan.orders, payments=plan.orders,
                    shipments=plan.orders)
    return expected


async def _collect_shoppers(
    blocks: AsyncGenerator[BuiltBlock, None], seed: int, into: list[Shopper]
) -> AsyncIterator[EncodedBatch]:
    """The blocks' batches, noting each user's id and email for the credentials."""
    async with aclosing(blocks):
        async for block in blocks:
            into.extend(Shopper(user_id, email, shopper_password(seed, user_id))
                        for user_id, email in block.shoppers)
            for batch in block.batches:
                yield batch


async def _index(
    backends: SeedConnections,
    alias: str,
    report: Callable[[str, int, int | None], None],
) -> StepStats:
    started = time.perf_counter()
    search = await seed_index.recreate_index(backends.search, alias)
    indexed = await seed_index.index_active_products(
        backends.postgres, search, lambda done, total: report("search index", done, total)
    )
    report("search index", indexed, indexed)
    return StepStats("search index", indexed, time.perf_counter() - started)

