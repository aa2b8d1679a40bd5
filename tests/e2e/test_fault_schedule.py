"""Faults on a schedule during a run: the result records each window as it happened, cuts
the run into before / during / after with figures per endpoint (or journey), measures the
recovery time, and gates can hold a phase and the recovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

pytestmark = pytest.mark.long  # fault windows through whole runs (`pytest -m long`)


def _read(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(path.read_text()))


def _p95(window: dict[str, Any], phase: str, target: str) -> float:
    return float(window[phase]["targets"][target]["p95_ms"])


def _phase_exemplars_hold(window: dict[str, Any], target: str) -> None:
    """The traces behind the "during" p95 of ``target`` come from that phase: slower than
    anything near the p95 before it (the fault slows every one)."""
    figures = window["during"]["targets"][target]
    found = figures["exemplars"]["p95"]
    assert 1 <= len(found) <= 3, figures
    for exemplar in found:
        assert len(exemplar["trace_id"]) == 32
        assert exemplar["duration_ms"] > _p95(window, "before", target), (exemplar, window)
    assert window["during"]["exemplars"]  # the phase overall has its own


def test_load_run_with_a_payment_slow_window_shows_it_and_recovers(
    ecomctl: Any, seeded: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "load.json"
    # Few users: the shop is not saturated, so what the window adds is the gateway's delay.
    run = ecomctl("load", "run", "--profile", "checkout", "--users", "4", "--duration", "40s",
                  "--fault-schedule", "15s+10s:payment-slow=800", "--credentials", str(seeded),
                  "--max-error-rate", "1", "--no-live", "--out", str(out), timeout=400)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = _read(out)
    assert result["config"]["fault_schedule"] == ["15s+10s:payment-slow=800"]
    [window] = result["fault_windows"]
    # Applied on time (the clock starts with the load; the gateway polls the flag file).
    assert 14.0 <= window["start_s"] <= 17.0, window
    assert 9.5 <= window["end_s"] - window["start_s"] <= 10.5, window
    checkout = "POST /api/checkout"
    before, during = _p95(window, "before", checkout), _p95(window, "during", checkout)
    assert during > before + 500, (before, during)  # the effect, where it happens
    assert checkout in window["slowed"]
    assert window["recovery_s"] is not None and window["recovery_s"] < 10, window
    assert result["recovery_s"] == window["recovery_s"]
    assert _p95(window, "after", checkout) < during
    _phase_exemplars_hold(window, checkout)
    assert "fault windows" in run.stdout

    passing = tmp_path / "gates.yaml"
    passing.write_text(f'version: 1\nrecovery: "< 10s"\nphases:\n'
                       f'  "during {checkout}": {{p95: "> {before + 300:.0f}ms"}}\n')
    gate = ecomctl("gate", "check", str(out), "--gates", str(passing))
    assert gate.exit_code == 0, gate.stdout + gate.stderr
    tighter = tmp_path / "tight.yaml"
    tighter.write_text(f'version: 1\nrecovery: "< {window["recovery_s"] * 1000:.0f}ms"\n')
    gate = ecomctl("gate", "check", str(out), "--gates", str(tighter))
    assert gate.exit_code == 3, gate.stdout + gate.stderr
    assert "recovery" in gate.stdout


def test_simulation_with_a_db_slow_window_slows_checkout_only_meanwhile(
    ecomctl: Any, seeded: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "sim.json"
    run = ecomctl("checkout", "simulate", "--shoppers", "8", "--duration", "24s",
                  "--weights", "checkout=10", "--fault-schedule", "8s+8s:db-slow=400",
                  "--credentials", str(seeded), "--no-live", "--out", str(out), timeout=400)
    assert run.exit_code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [window] = _read(out)["fault_windows"]
    assert 7.5 <= window["start_s"] <= 9.0 and 7.5 <= window["end_s"] - window["start_s"] <= 8.5
    before, during = _p95(window, "before", "checkout"), _p95(window, "during", "checkout")
    assert during > before + 300, (before, during)
    assert window["after"]["targets"]["checkout"]["count"] > 0
    _phase_exemplars_hold(window, "checkout")
