"""``PYTHONUNBUFFERED=1`` must not cost output: a signal arriving while a pipe is full made
the unbuffered stdout drop everything after the pipe's first 64 KiB (a ``--json`` result cut
short, exit code 0: CI saw it)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

# The command's body: a signal lands while the reader is away and the pipe is full.
_CHILD = """
import os, signal, sys, threading, time
from ecomctl.cli import main

def app():
    signal.signal(signal.SIGUSR1, lambda *_: None)
    threading.Thread(target=lambda: (time.sleep(0.3), os.kill(os.getpid(), signal.SIGUSR1)),
                     daemon=True).start()
    sys.stdout.write("x" * 200_000 + "\\n")

main.app = app
main.run()
"""


def test_the_entry_point_writes_all_of_a_large_output_through_a_signal() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(1.0)  # the pipes fill up and the signal arrives before anything is read
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err[-2000:]
    assert len(out) == 200_001


_PARTIAL_LINE_CHILD = """
import sys
from ecomctl.cli import main

def app():
    sys.stdout.write("ready")  # no newline, no flush
    sys.stdin.readline()

main.app = app
main.run()
"""


def test_output_still_goes_out_at_once() -> None:
    """Unbuffered stays unbuffered: what is written is readable before any newline or flush."""
    child = subprocess.Popen(
        [sys.executable, "-c", _PARTIAL_LINE_CHILD], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    try:
        readable, _, _ = select.select([child.stdout], [], [], 30)
        assert readable and os.read(child.stdout.fileno(), 5) == b"ready"
    finally:
        child.communicate(b"\n", timeout=30)
    assert child.returncode == 0
