"""Calls in threads that yield the CPU to the event loop: for password hashing.

argon2 keeps the cores busy while it hashes (``parallelism`` lane threads per hash). At the
same priority the event loop gets only its share of a core beside them, so every request in
flight, a shopper's login from another address included, waits for CPU behind a login
flood's hashes. Each call here runs in a thread of its own (a thread costs microseconds, a
hash a hundred milliseconds) at a higher niceness: on Linux niceness is per thread and the
lane threads argon2 starts for each slice of its work inherit it, so the loop runs first
whenever it has work. A call can be demoted while it runs (a client's backlog appeared):
the next slices run at ``BACKGROUND_NICENESS``. Raising niceness needs no privilege;
lowering it would, which is why a demoted thread is never reused. Elsewhere (no per-thread
niceness) these are ordinary threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

NICENESS = 10
"""CFS weight 110 against the event loop's 1024: the loop is served first, and the hashes
still get the CPU whenever it idles."""
BACKGROUND_NICENESS = 19
"""CFS weight 15: work that can wait (a client's backlog) against ``NICENESS`` work."""

T = TypeVar("T")


def _set_niceness(thread_id: int, niceness: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, thread_id, niceness)


class NicedCall(Generic[T]):
    """``await NicedCall(fn, *args).run(niceness)``: ``fn(*args)`` in a new thread at that
    niceness; ``demote()`` (from the event loop, any time) moves it to the background."""

    def __init__(self, call: Callable[..., T], *args: object, name: str = "niced") -> None:
        self._call, self._args, self._name = call, args, name
        self._thread_id: int | None = None
        self._demoted = False
        self._lock = threading.Lock()  # the thread learns its id while the loop may demote

    async def run(self, niceness: int = NICENESS) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def settle(result: T | None, error: BaseException | None) -> None:
            if done.cancelled():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]  # T, when no error

        def work() -> None:
            with self._lock:
                self._thread_id = threading.get_native_id()
                _set_niceness(self._thread_id,
                              BACKGROUND_NICENESS if self._demoted else niceness)
            try:
                outcome: tuple[T | None, BaseException | None] = (self._call(*self._args), None)
            except BaseException as error:  # handed to the awaiting task
                outcome = (None, error)
            finally:
                with self._lock:  # its id may go to another thread once this one ends
                    self._thread_id = None
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                loop.call_soon_threadsafe(settle, *outcome)

        threading.Thread(target=work, name=self._name, daemon=True).start()
        return await done

    def demote(self) -> None:
        with self._lock:
            self._demoted = True
            if self._thread_id is not None:
                _set_niceness(self._thread_id, BACKGROUND_NICENESS)
