"""Failure and lifecycle: a backend killed by hand, ``down`` and ``up`` again.

Each test leaves the stack as it found it (all up), so the order of tests does not matter.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psutil
import pytest

from ecomctl.stack.manager import LocalStack
from ecomctl.stack.process import listener_pid

pytestmark = pytest.mark.long  # chaos: the stack stopped, killed and restarted (`pytest -m long`)


def _pids(ecomctl: Any) -> dict[str, int]:
    result = ecomctl("stack", "status", "--json")
    return {s["name"]: s["pid"] for s in result.json()}


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, f"pid {pid} still alive"
        time.sleep(0.1)


def test_backend_killed_by_hand_is_reported_and_brought_back(ecomctl: Any) -> None:
    pid = _pids(ecomctl)["redis"]
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)

    status = ecomctl("stack", "status", "--json")
    assert status.exit_code == 1
    by_name = {s["name"]: s for s in status.json()}
    assert by_name["redis"]["healthy"] is False
    assert by_name["postgres"]["healthy"] is True

    doctor = ecomctl("doctor")
    assert doctor.exit_code == 1
    assert "redis" in doctor.stderr
    assert by_name["redis"]["log_file"] in doctor.stderr.replace("\n", "")

    up = ecomctl("stack", "up", "redis", "--json")
    assert up.exit_code == 0, up.stderr
    assert [s["healthy"] for s in up.json()] == [True]
    assert ecomctl("doctor").exit_code == 0


def test_down_stops_everything_it_started_and_up_restores_it(ecomctl: Any) -> None:
    before = _pids(ecomctl)
    stack = LocalStack()
    children = {
        pid: [c.pid for c in psutil.Process(pid).children(recursive=True)]
        for pid in before.values()
    }
    down = ecomctl("stack", "down")
    assert down.exit_code == 0, down.stderr
    for pid in before.values():
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        for child in children[pid]:
            assert not psutil.pid_exists(child), f"child {child} of {pid} left behind"
    for backend in stack.backends.values():
        for port in backend.ports:
            assert listener_pid(port) is None, f"{backend.name} port {port} still open"
    status = ecomctl("stack", "status", "--json")
    assert status.exit_code == 1
    assert not any(s["running"] for s in status.json())

    up = ecomctl("stack", "up", "--json")
    assert up.exit_code == 0, up.stderr
    assert all(s["healthy"] for s in up.json())
    assert ecomctl("doctor").exit_code == 0
