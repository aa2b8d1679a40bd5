"""``ecomctl serve`` processes for end-to-end tests, started as a user starts them, their
output collected (the ``serving`` fixture in conftest.py stops them at the end of a test)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request


class Served:
    """One ``ecomctl serve ...`` process, its output collected line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ecomctl.cli.main", "serve", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, marker: str, timeout_s: float = 120.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if marker in line:
                    return line
            assert self.process.poll() is None, f"exited early:\n{self.output[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {marker!r} after {timeout_s:.0f}s:\n{self.output[-3000:]}")

    def stop(self, timeout_s: float = 120.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout_s)
        self._reader.join(5)
        return code


def payment_gateway(serving: list[Served], *args: str) -> str:
    """A payment gateway simulator process of its own; its URL."""
    simulator = Served("payment-gateway", "--port", "0", *args)
    serving.append(simulator)
    match = re.search(r"listening on (http://\S+)", simulator.wait_for("listening on"))
    assert match, simulator.output
    return match.group(1)


def pids_answering(url: str, requests: int = 60) -> set[int]:
    """The processes that answer ``url``'s /healthz; a fresh connection per request, so
    SO_REUSEPORT gets a chance to spread them."""
    pids = set()
    for _ in range(requests):
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            pids.add(int(json.loads(response.read())["pid"]))
    return pids
