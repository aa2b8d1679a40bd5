"""The shop as several processes: API processes sharing one port, the events role on its
own, and the business invariants across them after a load run through HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ecomctl.adapters.postgres.database import Database
from ecomctl.config import Settings
from ecomctl.load.runner import free_port
from ecomctl.sim.invariants import check_invariants
from tests.e2e.served import Served, payment_gateway, pids_answering

pytestmark = pytest.mark.long  # several serve processes (`pytest -m long`)


async def _paid_orders(db: Database) -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE status IN ('paid', 'shipped', 'delivered')"
        )
        return count


async def test_two_api_processes_and_an_events_process_keep_every_invariant(
    ecomctl: Any, seeded: Path, tmp_path: Path, serving: list[Served], settings: Settings
) -> None:
    common = ("--workers", "1", "--payment-gateway-url",
              payment_gateway(serving, "--latency-ms", "5"))
    events = Served("--role", "events", "--drain-on-exit", *common)
    port = free_port()
    api = [Served("--role", "api", "--port", str(port), *common) for _ in range(2)]
    serving.extend([events, *api])
    events.wait_for("events role running")
    for process in api:
        process.wait_for("listening on")
    url = f"http://127.0.0.1:{port}"
    assert pids_answering(url) == {p.process.pid for p in api}

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
    pids = pids_answering(f"http://127.0.0.1:{port}")
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
