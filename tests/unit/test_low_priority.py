"""Calls in threads of their own at a lower CPU priority (Linux: per-thread niceness)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from ecomctl.services.low_priority import BACKGROUND_NICENESS, NICENESS, NicedCall


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_the_call_runs_in_another_thread_at_the_given_niceness() -> None:
    here, before = threading.get_native_id(), _own_niceness()
    thread, niceness = await NicedCall(
        lambda: (threading.get_native_id(), _own_niceness())).run()
    # (A process already nicer than NICENESS stays so: lowering niceness needs privilege.)
    assert thread != here and niceness == max(NICENESS, before)
    assert _own_niceness() == before  # the event loop's thread is untouched


async def test_demoted_while_running_the_thread_moves_to_the_background() -> None:
    started, go_on = threading.Event(), threading.Event()

    def work() -> int:
        started.set()
        go_on.wait(10)
        return _own_niceness()

    call = NicedCall(work)
    running = asyncio.create_task(call.run())
    assert await asyncio.to_thread(started.wait, 10)
    call.demote()
    go_on.set()
    assert await running == BACKGROUND_NICENESS


async def test_demoted_before_it_starts_it_starts_in_the_background() -> None:
    call = NicedCall(_own_niceness)
    call.demote()
    assert await call.run() == BACKGROUND_NICENESS


async def test_an_error_in_the_call_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await NicedCall(fail).run()
