"""Long steps with their elapsed time while they run (`stack install`, `stack up`, `bench`).

The core reports its steps through callbacks and never prints; this renders them. A step
runs in a lane (a backend, or the bench) until the lane's next step starts or the lane is
done. On a terminal, each running step is a live line with a spinner and its elapsed time,
and a step that ends becomes a plain line with the time it took. Anywhere else (a pipe, a
file, ``CI=true``) there are plain lines only, readable one by one in a log: the step when
it starts, the time it took when it ends, and, every ``heartbeat_s``, a line saying that a
long step still runs (a 4-minute build is not silence).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.text import Text

HEARTBEAT_S = 30.0
"""Plain lines: how often a step that still runs says so."""


def format_elapsed(seconds: float) -> str:
    """``4.2s``, ``3m07s``, ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def live_terminal(console: Console) -> bool:
    """Whether ``console`` can redraw a live display: a terminal, and not a CI job (whose
    log keeps every redraw, or none of them)."""
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return console.is_terminal and not console.is_dumb_terminal and not in_ci


class _Elapsed(ProgressColumn):
    """A running step's elapsed time, in the format its end line uses."""

    def render(self, task: Task) -> RenderableType:
        return Text(format_elapsed(task.elapsed or 0.0), style="progress.elapsed")


@dataclass
class _Step:
    text: str
    started: float
    said: float
    """When a line last said this step runs (plain lines)."""
    task: TaskID | None = None


class Steps:
    """Steps in lanes, as a context manager: ``start`` a lane's step, ``finish`` the lane
    (with what it came to); leaving ends the steps still running."""

    def __init__(self, console: Console, *, live: bool | None = None, lane_width: int = 0,
                 clock: Callable[[], float] = time.monotonic,
                 heartbeat_s: float = HEARTBEAT_S, tick_s: float | None = 1.0) -> None:
        self._console = console
        self._clock = clock
        self._lane_width = lane_width
        self._heartbeat_s = heartbeat_s
        self._tick_s = tick_s
        self._lock = threading.RLock()
        self._running: dict[str, _Step] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.fields[lane]}", style="cyan"),
            TextColumn("{task.description}"), _Elapsed(),
            console=console, get_time=clock, transient=True,
        ) if (live_terminal(console) if live is None else live) else None

    # -- the callbacks ---------------------------------------------------------------------

    def start(self, lane: str, text: str) -> None:
        """A new step in ``lane``; the lane's step before it ends."""
        with self._lock:
            now = self._clock()
            if lane in self._running:
                self._end(lane, now)
            step = _Step(text, started=now, said=now)
            if self._progress is not None:
                step.task = self._progress.add_task(escape(text), lane=self._lane(lane))
            else:
                self._say(lane, f"{escape(text)}...")
            self._running[lane] = step

    def finish(self, lane: str, text: str | None = None) -> None:
        """``lane`` is done: its step ends, and ``text`` says what it came to."""
        with self._lock:
            if lane in self._running:
                self._end(lane, self._clock())
            if text:
                self._say(lane, escape(text))

    def report(self, lane: str, text: str, /, *, done: bool = False) -> None:
        """The stack's progress callback (``ecomctl.stack.manager.StackProgress``)."""
        if done:
            self.finish(lane, text)
        else:
            self.start(lane, text)

    def beat(self) -> None:
        """Plain lines: say which steps have run ``heartbeat_s`` since the last line about
        them (the ticker thread calls this; a live display shows the time itself)."""
        if self._progress is not None:
            return
        with self._lock:
            now = self._clock()
            for lane, step in self._running.items():
                if now - step.said >= self._heartbeat_s:
                    step.said = now
                    self._say(lane, f"{escape(step.text)}: "
                                    f"[dim]{format_elapsed(now - step.started)} so far[/dim]")

    def renderable(self) -> RenderableType | None:
        """What the live display shows now (None for plain lines)."""
        return self._progress.get_renderable() if self._progress is not None else None

    # -- context -----------------------------------------------------------------------------

    def __enter__(self) -> Steps:
        if self._progress is not None:
            self._progress.start()
        elif self._tick_s is not None:
            self._ticker = threading.Thread(target=self._tick, name="steps-heartbeat",
                                            daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        with self._lock:
            now = self._clock()
            for lane in list(self._running):
                self._end(lane, now, stopped=kind is not None)
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._progress is not None:
            self._progress.stop()

    # -- inside ------------------------------------------------------------------------------

    def _tick(self) -> None:
        assert self._tick_s is not None
        while not self._stop.wait(self._tick_s):
            self.beat()

    def _end(self, lane: str, now: float, *, stopped: bool = False) -> None:
        step = self._running.pop(lane)
        if step.task is not None and self._progress is not None:
            self._progress.remove_task(step.task)
        took = format_elapsed(now - step.started)
        self._say(lane, f"{escape(step.text)}: "
                        + (f"[yellow]stopped after {took}[/yellow]" if stopped
                           else f"[dim]{took}[/dim]"))

    def _lane(self, lane: str) -> str:
        return f"{escape(lane):>{self._lane_width}}"

    def _say(self, lane: str, markup: str) -> None:
        self._console.print(f"[cyan]{self._lane(lane)}[/cyan]  {markup}", soft_wrap=True,
                            highlight=False)
