"""``serve``'s stop deadline: a stop that hangs ends in exit 1 with a report of what hung,
after the deadline or at a second signal (a real process, real signals)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

# A process whose graceful stop never finishes: after the stop signal it waits on a future
# nobody resolves, in a task named like a consumer's close.
_STUCK = """
import asyncio, signal, sys
from ecomctl.cli.shutdown import StopDeadline

async def main():
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    deadline = StopDeadline(loop, stop, float(sys.argv[1]), "serve --role events")
    loop.add_signal_handler(signal.SIGTERM, deadline.request)
    print("ready", flush=True)
    await stop.wait()
    await asyncio.create_task(asyncio.Event().wait(), name="consumer-close")

asyncio.run(main())
"""


def _stuck_process(deadline_s: float) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _STUCK, str(deadline_s)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_a_stop_that_hangs_exits_1_at_the_deadline_saying_what_it_waited_on() -> None:
    child = _stuck_process(1.0)
    started = time.monotonic()
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 1 and time.monotonic() - started < 20
    assert "no clean stop within 1s" in stderr and "consumer-close" in stderr, stderr


def test_a_second_signal_gives_up_at_once() -> None:
    child = _stuck_process(600.0)
    child.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 1 and "a second stop signal" in stderr, stderr
