"""``PYTHONUNBUFFERED=1`` must not cost output: a signal arriving while a pipe is full made
the unbuffered stdout drop everything after the pipe's first 64 KiB (a ``--json`` result cut
short, exit code 0: CI saw it)."""

from __future__ import annotations

import os
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
