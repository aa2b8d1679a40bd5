"""The fault windows of a result in the terminal: before / during / after, and recovery."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ecomctl.results import LoadRunResult, SimulationResult
from ecomctl.results.common import PHASES, PhaseFigures


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _phase_cells(phase: PhaseFigures | None) -> list[str]:
    if phase is None:
        return ["-", "-", "-"]
    return [_ms(phase.p95_ms), f"{phase.error_rate or 0:.1%}",
            f"{phase.checkouts_per_s or 0:.2f}"]


def _recovery(value: float | None) -> str:
    return "[red]not recovered[/red]" if value is None else f"{value:g}s"


def render_fault_windows(result: SimulationResult | LoadRunResult, console: Console) -> None:
    """A table per run with ``--fault-schedule`` windows; nothing otherwise."""
    windows = result.fault_windows
    if not windows:
        return
    table = Table(title="fault windows (p95 ms / error rate / checkouts per s)",
                  title_justify="left")
    table.add_column("fault", overflow="fold")
    table.add_column("window", no_wrap=True)
    for phase in PHASES:
        table.add_column(f"{phase}", justify="right", overflow="fold")
    table.add_column("recovery", justify="right")
    for window in windows:
        start, end = window.start_s, window.end_s
        when = "not reached" if start is None or end is None else f"{start:.1f}-{end:.1f}s"
        cells = ["\n".join(_phase_cells(window.phase(p))) for p in PHASES]
        table.add_row(escape(window.fault), when, *cells,
                      _recovery(window.recovery_s) if start is not None else "-")
    console.print(table)
    for window in windows:
        for name in window.slowed or []:
            p95 = [_ms(None if phase is None else
                       ((phase.targets or {}).get(name) or PhaseFigures()).p95_ms)
                   for phase in (window.phase(p) for p in PHASES)]
            console.print(f"  {escape(window.fault)} slowed {escape(name)}: p95 "
                          f"{' -> '.join(p95)} ms (before -> during -> after)")
        if window.recovery_of and window.start_s is not None:
            console.print(f"  recovery measured on: {escape(window.recovery_of)}")
    phases = result.phases or {}
    if len(windows) > 1 and phases:
        overall = "  ".join(
            f"{name} p95 {_ms(phases[name].p95_ms if name in phases else None)} ms"
            for name in PHASES)
        console.print(f"all windows: {overall}; recovery {_recovery(result.recovery_s)}")
