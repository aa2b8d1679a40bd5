"""Locust's distributed mode through ecomctl: ``load run --master`` binds a master on another
loopback address (as another host would be reached), two ``load worker`` processes join it,
and the result merges what each worker measured, exactly, from the histograms the workers
sent over Locust's own connection (no shared hdr directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ecomctl.histogram import LatencyHistogram
from ecomctl.load.runner import free_port

pytestmark = pytest.mark.long  # several processes: a Locust master and workers (`pytest -m long`)

MASTER_HOST = "127.0.0.2"


def _ecomctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecomctl.cli.main", *args]


def test_a_master_and_two_remote_workers_merge_exactly(seeded: Path, tmp_path: Path) -> None:
    port = str(free_port())
    out = tmp_path / "result.json"
    env = {**os.environ, "COLUMNS": "200", "ECOMCTL_TRACE_DIR": str(tmp_path / "traces")}
    master = subprocess.Popen(
        _ecomctl("load", "run", "--profile", "constant-rate", "--users", "6", "--rate", "6",
                 "--spawn-rate", "6", "--duration", "8s", "--master", "--expect-workers", "2",
                 "--master-bind-host", MASTER_HOST, "--master-bind-port", port,
                 "--credentials", str(seeded), "--no-live", "--out", str(out)),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    time.sleep(2)  # workers may come first or later: Locust's master waits for them
    workers = [
        subprocess.Popen(
            _ecomctl("load", "worker", "--master-host", MASTER_HOST, "--master-port", port,
                     "--profile", "constant-rate", "--credentials", str(seeded)),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        stdout, stderr = master.communicate(timeout=240)
        worker_logs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for process in (master, *workers):
            process.kill()
    assert master.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert all(w.returncode == 0 for w in workers), worker_logs
    assert all("Got quit message from master" in log for log in worker_logs), worker_logs

    doc: dict[str, Any] = json.loads(out.read_text())
    config, totals, processes = doc["config"], doc["totals"], doc["processes"]
    assert config["master"] == f"{MASTER_HOST}:{port}" and config["workers"] == 2
    assert config["host"].startswith(f"http://{MASTER_HOST}:")  # the gateway the workers reach
    # Each worker's final histograms reached the master; the merge is their exact sum.
    assert len(processes) == 2 and all(p["final"] and p["requests"] > 0 for p in processes)
    assert sorted(p["worker_index"] for p in processes) == [0, 1]
    assert sum(p["requests"] for p in processes) == totals["requests"] > 20
    assert doc["locust_stats"]["requests"] == totals["requests"]  # Locust's own count agrees
    for endpoint in doc["endpoints"].values():
        assert LatencyHistogram.decode(endpoint["hdr"]).count == endpoint["count"]
    assert sum(e["count"] for e in doc["endpoints"].values()) == totals["requests"]
    # The master handed its pacing to the workers (a Locust option, not a variable), so they
    # measured from the intended start.
    assert config["pacing_s"] == 1.0 and "coordinated omission corrected" in doc["latency_origin"]
    assert doc["ok"] is True and all(i["ok"] for i in doc["invariants"])
    assert "remote, master" in stdout


def test_distributed_options_are_checked(ecomctl: Any) -> None:
    alone = ecomctl("load", "run", "--master")
    assert alone.exit_code == 2 and "--expect-workers" in alone.stderr
    mixed = ecomctl("load", "run", "--master", "--expect-workers", "2", "--workers", "2")
    assert mixed.exit_code == 2 and "load worker" in mixed.stderr
    stray = ecomctl("load", "run", "--expect-workers", "2")
    assert stray.exit_code == 2 and "only with --master" in stray.stderr
    no_master = ecomctl("load", "worker")
    assert no_master.exit_code == 2 and "--master-host" in no_master.stderr
