"""SIGTERM ends a command the way Ctrl-C does, with its own exit code.

Python's default SIGTERM ends the process at once, so nothing a command started in a session
of its own (``load run``'s gateway and Locust processes, ``checkout simulate``'s shopper
processes) was stopped: a CI job cancelled on a timeout left them running, ports taken.
Raised as a ``KeyboardInterrupt``, SIGTERM runs the same clean-up as Ctrl-C; the command then
exits 143 (128 + SIGTERM), the shell's convention, rather than Ctrl-C's 130. Long-running
servers (``serve``) install their own handlers on their event loop, which take precedence.
"""

from __future__ import annotations

import signal
from types import FrameType

INTERRUPTED = 130  # 128 + SIGINT
TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, on its way out through every ``finally``."""


_received = False


def stop_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise)


def interrupted_exit_code() -> int:
    """The exit code of a command stopped by a signal: 143 after SIGTERM, else 130."""
    return TERMINATED if _received else INTERRUPTED


def _raise(signum: int, frame: FrameType | None) -> None:
    global _received
    if _received:
        return  # one is enough: a second must not interrupt the clean-up it started
    _received = True
    raise Terminated()
