"""The ``ecomctl`` command run as a user runs it: a subprocess, its output captured, and a
deadline after which a run that hangs is stopped with everything it started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HUNG_AFTER_S = 280
"""Below pytest's own timeout (300 s), so the output of a command that hangs is kept."""


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ecomctl_command() -> list[str]:
    """The installed ``ecomctl`` script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("ecomctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ecomctl.cli.main"]


def run_ecomctl(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
                timeout: float = 240) -> CliResult:
    """``ecomctl *args`` to its end; ``env`` is added to this process's environment (a wide
    terminal by default, so that rich does not wrap what the assertions look for)."""
    argv = [str(arg) for arg in args]
    deadline = min(timeout, HUNG_AFTER_S)
    # Its own process group, so that a run which hangs is stopped with every process it
    # started (a child left holding the pipes would hang the test instead), and a
    # traceback of each thread first (faulthandler on SIGABRT) to say where it hung.
    child = subprocess.Popen(
        [*ecomctl_command(), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", "PYTHONFAULTHANDLER": "1", **(env or {})},
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        stdout, stderr = _stop_hung(child)
        pytest.fail(f"ecomctl {' '.join(argv)} still running after {deadline:.0f} s"
                    f"\n--- stdout\n{stdout[-4000:]}\n--- stderr\n{stderr[-12000:]}")
    return CliResult(child.returncode, stdout, stderr)


def _stop_hung(child: subprocess.Popen[str]) -> tuple[str, str]:
    for signal_ in (signal.SIGABRT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal_)
        try:
            return child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    return "", ""
