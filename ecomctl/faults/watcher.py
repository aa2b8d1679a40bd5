"""Applying the flag file's faults to a running process, and undoing them when cleared.

A ``FaultWatcher`` polls its ``FaultFlagSource`` and diffs what is on against what it applied:
a fault turned off is undone, one whose value changed is undone and applied again, a new one
applied. Each process applies only what acts in it (``apply`` returns None for the rest), so
one flag file drives a shop split into API, events and payment gateway processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecomctl.errors import ConfigError
from ecomctl.faults.catalogue import FAULTS, FaultSpec, Role, Undo, change_simulator

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack
    from ecomctl.faults.flag_source import FaultFlagSource

WATCH_INTERVAL_S = 0.25
log = logging.getLogger(__name__)

Apply = Callable[[FaultSpec], Awaitable[Undo | None]]
"""Apply a fault here and return its undo; None when the fault does not act in this process."""


@dataclass(frozen=True)
class FaultChange:
    at: float
    """Unix time."""
    fault: str
    action: str
    """``applied``, ``cleared`` or ``failed``."""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "fault": self.fault, "action": self.action,
                "detail": self.detail}


def shop_applier(shop: ShopStack, roles: frozenset[Role]) -> Apply:
    """Faults of ``roles`` on this process's stack (those it cannot host are skipped: no
    outbox relay here for kafka-down, no in-process simulator for the payment faults)."""

    async def apply(spec: FaultSpec) -> Undo | None:
        kind = FAULTS[spec.name]
        if kind.role not in roles:
            return None
        try:
            return await kind.apply(shop, spec.value)
        except ConfigError:
            return None

    return apply


def simulator_applier(simulator: Any) -> Apply:
    """The payment faults on a payment gateway simulator of its own (``serve
    payment-gateway``)."""

    async def apply(spec: FaultSpec) -> Undo | None:
        changes = FAULTS[spec.name].simulator_changes
        return None if changes is None else change_simulator(simulator, changes(spec.value))

    return apply


class FaultWatcher:
    def __init__(
        self,
        source: FaultFlagSource,
        apply: Apply,
        *,
        interval_s: float = WATCH_INTERVAL_S,
        on_change: Callable[[FaultChange], None] | None = None,
    ) -> None:
        self._source = source
        self._apply = apply
        self._interval_s = interval_s
        self._on_change = on_change
        self._applied: dict[str, tuple[FaultSpec, Undo]] = {}
        self._passed: dict[str, FaultSpec] = {}
        """Faults seen that do not act here (or failed): not retried until they change."""
        self.changes: list[FaultChange] = []

    @property
    def applied(self) -> list[FaultSpec]:
        return [spec for spec, _ in self._applied.values()]

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.sync()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval_s)
        finally:
            for name in list(self._applied):
                await self._undo(name)

    async def sync(self) -> None:
        """One round: make what is applied match what the flags say."""
        wanted = {spec.name: spec for spec in self._source.active()}
        for name, (spec, _) in list(self._applied.items()):
            if wanted.get(name) != spec:
                await self._undo(name)
        self._passed = {n: s for n, s in self._passed.items() if wanted.get(n) == s}
        for name, spec in wanted.items():
            if name in self._applied or name in self._passed:
                continue
            try:
                undo = await self._apply(spec)
            except Exception as exc:  # a fault that cannot apply must not stop the watch
                log.warning("fault %s failed to apply: %s", spec, exc)
                self._passed[name] = spec
                self._record(name, "failed", f"{spec}: {exc}")
                continue
            if undo is None:
                self._passed[name] = spec
                continue
            self._applied[name] = (spec, undo)
            self._record(name, "applied", str(spec))

    async def _undo(self, name: str) -> None:
        spec, undo = self._applied.pop(name)
        try:
            await undo()
        finally:
            self._record(name, "cleared", str(spec))

    def _record(self, name: str, action: str, detail: str) -> None:
        change = FaultChange(time.time(), name, action, detail)
        self.changes.append(change)
        if self._on_change is not None:
            self._on_change(change)


@contextlib.asynccontextmanager
async def watching_faults(
    path: Path,
    apply: Apply,
    *,
    on_change: Callable[[FaultChange], None] | None = None,
    interval_s: float = WATCH_INTERVAL_S,
) -> AsyncIterator[FaultWatcher]:
    """Apply the faults of the flag file at ``path`` while the block runs; undo them after."""
    from ecomctl.faults.flag_source import FaultFlagSource

    source = await asyncio.to_thread(FaultFlagSource, path)
    watcher = FaultWatcher(source, apply, interval_s=interval_s, on_change=on_change)
    stop = asyncio.Event()
    await watcher.sync()  # faults already on apply before the process serves anything
    task = asyncio.create_task(watcher.run(stop), name="fault-watcher")
    try:
        yield watcher
    finally:
        stop.set()
        try:
            await task
        finally:
            source.close()
