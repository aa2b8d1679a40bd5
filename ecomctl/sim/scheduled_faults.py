"""``checkout simulate --fault-schedule``: windows applied straight to this process's stack.

The simulation owns its services, so it needs no flag file: each process (the one process,
or with ``--processes`` every shopper process and the parent) turns on the windows' faults
that act in it (``ecomctl.faults.catalogue.Role``), timed from the start of its measured run,
which the start barrier makes common to all of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ecomctl.faults.catalogue import FAULTS, FaultSpec, Role, Undo
from ecomctl.faults.schedule import FaultWindow, WindowRecord, run_schedule

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack


class ScheduledFaults:
    def __init__(self, shop: ShopStack, windows: Iterable[FaultWindow],
                 roles: frozenset[Role]) -> None:
        self._shop = shop
        self.windows = tuple(w for w in windows if FAULTS[w.fault.name].role in roles)
        self._undo: dict[str, Undo] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[list[WindowRecord]] | None = None

    def start(self) -> None:
        """Start the clock: windows count from now."""
        if self.windows and self._task is None:
            self._task = asyncio.create_task(run_schedule(self.windows, self._turn, self._stop),
                                             name="fault-schedule")

    async def _turn(self, fault: FaultSpec, on: bool) -> None:
        if on:
            self._undo[fault.name] = await FAULTS[fault.name].apply(self._shop, fault.value)
        elif fault.name in self._undo:
            await self._undo.pop(fault.name)()

    async def stop(self) -> list[WindowRecord]:
        """Close any open window; what happened."""
        self._stop.set()
        return await self._task if self._task is not None else []


def records_to_json(records: Sequence[WindowRecord]) -> list[dict[str, Any]]:
    """For a shopper process to hand its windows to the parent (unix times)."""
    return [{"window": str(r.window), "applied_at": r.applied_at, "cleared_at": r.cleared_at}
            for r in records]


def combined_windows(schedule: Sequence[FaultWindow], origin: float,
                     *recorded: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scheduled window once, as it happened in the processes that applied it: on at
    the first process's apply, off at the last one's clear; offsets from ``origin`` (unix)."""
    out = []
    for window in schedule:
        seen = [r for rows in recorded for r in rows if r["window"] == str(window)]
        applied = [r["applied_at"] for r in seen if r["applied_at"] is not None]
        cleared = [r["cleared_at"] for r in seen if r["cleared_at"] is not None]
        record = WindowRecord(window, min(applied, default=None), max(cleared, default=None))
        out.append(record.to_dict(origin))
    return out
