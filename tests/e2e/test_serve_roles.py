"""The shop as several processes: API processes sharing one port, the events role on its
own, and the business invariants across them after a load run through HTTP."""

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ecomctl.adapters.postgres.database import Database
from ecomctl.config import Settings
from ecomctl.load.runner import free_port
from ecomctl.sim.invariants import check_invariants


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


@pytest.fixture
def serving() -> Iterator[list[Served]]:
    """Every process a test starts; whatever is still running at the end is killed."""
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)


def _pids_answering(url: str, requests: int = 60) -> set[int]:
    """A fresh connection per request, so SO_REUSEPORT gets a chance to spread them."""
    pids = set()
    for _ in range(requests):
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            pids.add(int(json.loads(response.read())["pid"]))
    return pids


async def _paid_orders(db: Database) -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE status IN ('paid', 'shipped', 'delivered')"
        )
        return count


async def test_two_api_processes_and_an_events_process_keep_every_invariant(
    ecomctl: Any, seeded: Path, tmp_path: Path, serving: list[Served], settings: Settings
) -> None:
    simulator = Served("payment-gateway", "--port", "0", "--latency-ms", "5")
    serving.append(simulator)
    match = re.search(r"listening on (http://\S+)", simulator.wait_for("listening on"))
    assert match
    common = ("--workers", "1", "--payment-gateway-url", match.group(1))
    events = Served("--role", "events", "--drain-on-exit", *common)
    port = free_port()
    api = [Served("--role", "api", "--port", str(port), *common) for _ in range(2)]
    serving.extend([events, *api])
    events.wait_for("events role running")
    for process in api:
        process.wait_for("listening on")
    url = f"http://127.0.0.1:{port}"
    assert _pids_answering(url) == {p.process.pid for p in api}

    db = await Database.connect(settings.database_url, max_size=2)
    try:
        paid_before = await _paid_orders(db)
        out = tmp_path / "load.json"
        load = ecomctl("load", "run", "--host", url, "--profile", "checkout", "--users", "8",
                       "--spawn-rate", "8", "--duration", "8s", "--credentials", str(seeded),
                       "--no-live", "--out", str(out))
        assert load.exit_code == 0, load.stdout[-3000:] + load.stderr[-3000:]
        assert json.loads(out.read_text())["totals"]["requests"] > 50

        for process in api:
            assert process.stop() == 0, process.output[-3000:]
        assert events.stop() == 0, events.output[-3000:]
        assert "outbox and consumers drained" in events.output
        assert await _paid_orders(db) > paid_before
        results = await check_invariants(db)
    finally:
        await db.close()
    assert results and all(r.ok for r in results), results


def test_serve_workers_runs_api_processes_and_the_events_role(serving: list[Served]) -> None:
    port = free_port()
    parent = Served("--workers", "2", "--port", str(port), "--drain-on-exit")
    serving.append(parent)
    parent.wait_for("(2 api processes, events, payment gateway")
    assert "[events] ecomctl events role running" in parent.output
    assert "[payment-gateway]" in parent.output
    pids = _pids_answering(f"http://127.0.0.1:{port}")
    assert len(pids) == 2 and parent.process.pid not in pids
    for pid in pids:  # two API processes share 120 PostgreSQL connections
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--db-pool-size") + 1] == b"60", argv
    assert parent.stop() == 0, parent.output[-3000:]
    assert "outbox and consumers drained" in parent.output
    assert parent.output.rstrip().endswith("gateway stopped")
    for pid in pids:  # the API processes are gone with their parent
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
