"""One window of the soak schedule: Locust load (two Locust workers) through two API
processes (`--serve-workers 2`: `serve --workers 2`) while the chaos fault, in the events
process, kills the Kafka broker, then Redis, then PostgreSQL's connections. Every invariant
holds after the drain, no event is lost, and the shop serves again once the window is over.
(The 10-minute run is `ecomctl load run --duration 10m` with the same fault every two
minutes; its figures are in the issue's closing note.)

The run goes on 22 s after the 40 s window: an endpoint has recovered when 5 of its requests
in a row are back near their p95 from before, and 12 s held only 11 searches, too few to
tell a slow search from a slow shop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_load_run import load_run

pytestmark = pytest.mark.long  # a soak (`pytest -m long`)


def test_a_minute_of_load_through_two_api_processes_while_the_backends_die(
    ecomctl: Any, seeded: Path, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    doc = load_run(ecomctl, seeded, tmp_path / "soak.json", "--profile", "mixed",
                   "--users", "8", "--spawn-rate", "8", "--duration", "70s", "--workers", "2",
                   "--serve-workers", "2",
                   "--fault-schedule", "8s+40s:chaos=3", "--max-error-rate", "0.5")
    # load_run asserted: drained, every invariant holds (stock, money, the gateway's ledger
    # equal to the database, every event consumed once by each group that reads it).
    [window] = doc["fault_windows"]
    before, during, after = window["before"], window["during"], window["after"]
    assert during["count"] > 0 and after["count"] > 0
    # Whatever the outages cost, the shop serves again after them.
    assert after["error_rate"] <= 0.05, after
    assert window["recovery_s"] is not None, window
    figures = {phase: {k: window[phase].get(k) for k in ("count", "errors", "p95_ms")}
               for phase in ("before", "during", "after")}
    figures["recovery_s"] = window["recovery_s"]
    record_property("soak_minute", str(figures))
    print("\nsoak minute:", figures, "totals:", doc["totals"])  # noqa: T201 - the figures
    assert before["count"] > 0
