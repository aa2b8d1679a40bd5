"""Building the seed's blocks in worker processes, in order, a few ahead of the COPY.

The process that talks to PostgreSQL plans the blocks (``ShopGenerator.blocks``: the
sequential decisions, cheap) and forwards bytes; worker processes build each block's rows and
encode them for binary COPY, which is where the CPU goes. Results are consumed in the order
the blocks were planned, so the load order (and the foreign keys) hold whatever the number
of workers, and the rows never depend on it (each block is a function of itself and the
shared ``GenerationContext``).

With one worker, or a plan too small to pay for starting processes, the blocks are built in
one thread of this process instead: the same code, beside the COPY.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from ecomctl.adapters.seeding.binary_copy import encode_rows
from ecomctl.adapters.seeding.tables import EncodedBatch
from ecomctl.seed.generate import Block, GenerationContext, ShopGenerator, UserBlock, build_block
from ecomctl.seed.plan import SeedPlan

MIN_ROWS_PER_WORKER = 10_000
"""Below about this many users + products + orders per worker, starting worker processes
costs more than it saves: smaller plans are built in a thread of this process."""
BLOCKS_AHEAD_PER_WORKER = 2


@dataclass(frozen=True)
class BuiltBlock:
    batches: tuple[EncodedBatch, ...]
    shoppers: tuple[tuple[int, str], ...]  # (user id, email) of a block of users


def default_workers() -> int:
    return os.cpu_count() or 1


def effective_workers(plan: SeedPlan, workers: int) -> int:
    """Worker processes worth starting for ``plan`` (0: build in a thread here)."""
    rows = plan.users + plan.products + plan.orders
    useful = min(workers, rows // MIN_ROWS_PER_WORKER)
    return useful if useful >= 2 else 0


def build_encoded(context: GenerationContext, block: Block) -> BuiltBlock:
    """One block's rows, encoded for binary COPY (each table's build time included)."""
    started = time.perf_counter()
    raw = build_block(context, block)
    built_s = time.perf_counter() - started
    batches = []
    for table, rows in raw:
        encode_started = time.perf_counter()
        data = encode_rows(table, rows)
        seconds = time.perf_counter() - encode_started + built_s / len(raw)
        batches.append(EncodedBatch(table, data, len(rows), seconds))
    shoppers = (tuple((row[0], row[1]) for row in raw[0][1])
                if isinstance(block, UserBlock) else ())
    return BuiltBlock(tuple(batches), shoppers)


_context: GenerationContext | None = None


def _install(context: GenerationContext) -> None:
    global _context
    _context = context


def _build_in_worker(block: Block) -> BuiltBlock:
    assert _context is not None, "worker started without its GenerationContext"
    return build_encoded(_context, block)


@contextmanager
def block_executor(context: GenerationContext, workers: int) -> Iterator[Executor]:
    """Worker processes (``workers`` >= 2) that know ``context``, else one thread here.

    Processes are forked where the platform can (Linux): a fork starts in milliseconds
    and inherits the imported code and the context, where spawn would re-import ecomctl,
    Faker and argon2 in every worker. The seed forks before it starts any thread."""
    _install(context)
    executor: Executor
    if workers >= 2:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context(method),
            initializer=_install, initargs=(context,),
        )
        executor.submit(os.getpid).result()  # forks every worker now, before any thread
    else:
        executor = ThreadPoolExecutor(1, thread_name_prefix="seed-build")
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


async def built_blocks(
    generator: ShopGenerator, executor: Executor, ahead: int
) -> AsyncGenerator[BuiltBlock, None]:
    """Each planned block, built by ``executor``, in plan order, with up to ``ahead`` blocks
    submitted beyond the one being consumed. Planning runs in a thread (ordering the past
    orders is CPU work), one block at a time."""
    blocks = generator.blocks()
    queue: asyncio.Queue[asyncio.Future[BuiltBlock] | None] = asyncio.Queue(max(1, ahead))
    loop = asyncio.get_running_loop()

    async def submit() -> None:
        while (block := await asyncio.to_thread(next, blocks, None)) is not None:
            await queue.put(loop.run_in_executor(executor, _build_in_worker, block))
        await queue.put(None)

    submitter = asyncio.create_task(submit())
    try:
        while (pending := await queue.get()) is not None:
            yield await pending
        await submitter
    finally:
        if not submitter.done():
            submitter.cancel()
        await asyncio.gather(submitter, return_exceptions=True)
        while not queue.empty():  # a failed load: what was submitted is not awaited
            left = queue.get_nowait()
            if left is not None:
                left.cancel()
