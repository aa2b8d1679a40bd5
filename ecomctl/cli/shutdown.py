"""A stop that cannot hang: after the first Ctrl-C/SIGTERM, ``serve`` has ``deadline_s`` to
drain and close. Past it, or on a second signal, it writes what every asyncio task and
thread was waiting on and exits 1.

Without it one stuck close (a client library waiting on a connection that died in a chaos
run) kept an events process alive for good after its parent had given up on it: an orphan
still in the Kafka consumer groups, taking the partitions of the next shop's consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import os
import sys
import threading

from ecomctl.cli.output import err_console


class StopDeadline:
    """``request()`` is the signal handler: the first call runs ``on_stop`` (the graceful
    path) and arms the deadline, a second call gives up at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_stop: asyncio.Event,
                 deadline_s: float, name: str) -> None:
        self._loop, self._stop, self._deadline_s, self._name = loop, on_stop, deadline_s, name
        self._timer: threading.Timer | None = None

    def request(self) -> None:
        if self._timer is not None:
            self._give_up("a second stop signal")
            return
        self._stop.set()
        # A thread, not the event loop: the loop itself may be what is stuck.
        self._timer = threading.Timer(self._deadline_s, self._give_up,
                                      (f"no clean stop within {self._deadline_s:.0f}s",))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _give_up(self, why: str) -> None:
        err_console.print(f"[red]{self._name}: {why}; exiting. What it was waiting on:[/red]")
        sys.stderr.write(self._tasks_report())
        with contextlib.suppress(Exception):
            faulthandler.dump_traceback(all_threads=True)
        sys.stderr.flush()
        os._exit(1)

    def _tasks_report(self) -> str:
        """Each asyncio task's stack, read from this thread (best effort: the set of tasks
        may change under us, then we try again)."""
        for _ in range(3):
            try:
                tasks = list(asyncio.all_tasks(self._loop))
                break
            except RuntimeError:
                continue
        else:
            return "(the tasks could not be listed)\n"
        out = io.StringIO()
        for task in tasks:
            out.write(f"--- {task.get_name()}\n")
            with contextlib.suppress(Exception):
                task.print_stack(limit=20, file=out)
        return out.getvalue()
