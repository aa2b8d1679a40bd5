"""``--fault-schedule "20s+15s:payment-slow=800, 60s+10s:kafka-down"``: faults in windows.

Each window is ``START+LENGTH:FAULT[=VALUE]``, both durations counted from the start of the
measured run (``1m30s`` works; a bare number is seconds). Windows of one fault may not overlap
(the second would undo the first); windows of different faults may.

The schedule drives an actuator: ``checkout simulate`` applies faults to its own stack, ``load
run`` edits the flag file its gateway watches. Either way each window records when it was
really turned on and off, which is what the per-phase figures are cut by.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ecomctl.durations import parse_duration
from ecomctl.errors import ConfigError
from ecomctl.faults.catalogue import FaultSpec, parse_fault

OPTION = "--fault-schedule"


@dataclass(frozen=True)
class FaultWindow:
    start_s: float
    length_s: float
    fault: FaultSpec

    @property
    def end_s(self) -> float:
        return self.start_s + self.length_s

    def __str__(self) -> str:
        return f"{self.start_s:g}s+{self.length_s:g}s:{self.fault}"


def parse_schedule(text: str) -> tuple[FaultWindow, ...]:
    """The windows of a schedule, in start order; ConfigError names the bad item."""
    windows = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        timing, sep, fault_text = item.partition(":")
        start_text, plus, length_text = timing.partition("+")
        if not sep or not plus or not fault_text.strip():
            raise ConfigError(f"{OPTION} {item!r}: expected START+LENGTH:FAULT[=VALUE], e.g. "
                              "20s+15s:payment-slow=800")
        try:
            start = parse_duration(start_text, bare_unit="s")
            length = parse_duration(length_text, bare_unit="s")
        except ValueError as exc:
            raise ConfigError(f"{OPTION} {item!r}: {exc}") from exc
        if length <= 0:
            raise ConfigError(f"{OPTION} {item!r}: the length must be positive")
        windows.append(FaultWindow(start, length, parse_fault(fault_text, OPTION)))
    if not windows:
        raise ConfigError(f"{OPTION}: no windows; e.g. 20s+15s:payment-slow=800")
    windows.sort(key=lambda w: w.start_s)
    for i, window in enumerate(windows):
        for later in windows[i + 1:]:
            if later.fault.name == window.fault.name and later.start_s < window.end_s:
                raise ConfigError(f"{OPTION}: {window} and {later} overlap (one fault, one "
                                  "window at a time)")
    return tuple(windows)


def check_fits(windows: tuple[FaultWindow, ...], duration_s: float | None) -> None:
    """A window that starts after the run ends would never happen: say so up front."""
    if duration_s is None:
        return
    for window in windows:
        if window.start_s >= duration_s:
            raise ConfigError(f"{OPTION}: {window} starts after the run ends "
                              f"({duration_s:g}s)")


@dataclass
class WindowRecord:
    """A window as it happened: unix times of the fault going on and off."""

    window: FaultWindow
    applied_at: float | None = None
    cleared_at: float | None = None

    def to_dict(self, origin: float) -> dict[str, Any]:
        """Offsets in seconds from ``origin`` (the run's start, unix time)."""
        def offset(at: float | None) -> float | None:
            return None if at is None else round(at - origin, 3)

        return {"fault": str(self.window.fault), "scheduled_start_s": self.window.start_s,
                "scheduled_length_s": self.window.length_s,
                "start_s": offset(self.applied_at), "end_s": offset(self.cleared_at)}


def _events(windows: tuple[FaultWindow, ...]) -> list[tuple[float, int, bool, int]]:
    """(time, order, turn_on, window index): clears before applies at one instant."""
    return sorted([(w.start_s, 1, True, i) for i, w in enumerate(windows)]
                  + [(w.end_s, 0, False, i) for i, w in enumerate(windows)])


Turn = Callable[[FaultSpec, bool], Awaitable[None]]


async def run_schedule(windows: tuple[FaultWindow, ...], turn: Turn,
                       stop: asyncio.Event) -> list[WindowRecord]:
    """Turn each window's fault on and off at its times from now, until ``stop``; a window
    still open when stopped is closed then. ``turn(fault, on)`` does the work."""
    records = [WindowRecord(w) for w in windows]
    origin = time.monotonic()
    try:
        for at, _, on, index in _events(windows):
            delay = at - (time.monotonic() - origin)
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            await turn(windows[index].fault, on)
            if on:
                records[index].applied_at = time.time()
            else:
                records[index].cleared_at = time.time()
    finally:
        for record in records:
            if record.applied_at is not None and record.cleared_at is None:
                await turn(record.window.fault, False)
                record.cleared_at = time.time()
    return records


class ScheduleThread:
    """The same schedule for synchronous callers (``load run`` waits on Locust in its main
    thread): a thread that calls ``turn`` at the windows' times from ``start(origin)``."""

    def __init__(self, windows: tuple[FaultWindow, ...],
                 turn: Callable[[FaultSpec, bool], None]) -> None:
        self.records = [WindowRecord(w) for w in windows]
        self._windows = windows
        self._turn = turn
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, origin: float) -> None:
        """``origin``: unix time the window offsets count from."""
        self._thread = threading.Thread(target=self._run, args=(origin,), daemon=True,
                                        name="fault-schedule")
        self._thread.start()

    def _run(self, origin: float) -> None:
        try:
            for at, _, on, index in _events(self._windows):
                if self._stop.wait(max(0.0, origin + at - time.time())):
                    break
                self._turn(self._windows[index].fault, on)
                record = self.records[index]
                if on:
                    record.applied_at = time.time()
                else:
                    record.cleared_at = time.time()
        except BaseException as exc:  # reported by stop(): a thread cannot raise to the run
            self.error = exc
        finally:
            self._close_open()

    def _close_open(self) -> None:
        for record in self.records:
            if record.applied_at is not None and record.cleared_at is None:
                self._turn(record.window.fault, False)
                record.cleared_at = time.time()

    def stop(self) -> list[WindowRecord]:
        """Stop (closing any open window) and return what happened."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        return self.records
