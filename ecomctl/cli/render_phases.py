"""The fault windows of a result in the terminal: before / during / after, and recovery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _phase_cells(phase: Mapping[str, Any] | None) -> list[str]:
    if not phase:
        return ["-", "-", "-"]
    return [_ms(phase.get("p95_ms")), f"{phase.get('error_rate', 0):.1%}",
            f"{phase.get('checkouts_per_s', 0):.2f}"]


def _recovery(value: Any) -> str:
    return "[red]not recovered[/red]" if value is None else f"{value:g}s"


def render_fault_windows(result: Mapping[str, Any], console: Console) -> None:
    """A table per run with ``--fault-schedule`` windows; nothing otherwise."""
    windows = result.get("fault_windows")
    if not windows:
        return
    table = Table(title="fault windows (p95 ms / error rate / checkouts per s)",
                  title_justify="left")
    table.add_column("fault", overflow="fold")
    table.add_column("window", no_wrap=True)
    for phase in ("before", "during", "after"):
        table.add_column(f"{phase}", justify="right", overflow="fold")
    table.add_column("recovery", justify="right")
    for window in windows:
        start, end = window.get("start_s"), window.get("end_s")
        when = "not reached" if start is None else f"{start:.1f}-{end:.1f}s"
        cells = ["\n".join(_phase_cells(window.get(p))) for p in ("before", "during", "after")]
        table.add_row(str(window.get("fault")), when, *cells,
                      _recovery(window.get("recovery_s")) if start is not None else "-")
    console.print(table)
    for window in windows:
        for name in window.get("slowed") or []:
            p95 = [_ms(((window.get(p) or {}).get("targets") or {}).get(name, {}).get("p95_ms"))
                   for p in ("before", "during", "after")]
            console.print(f"  {window.get('fault')} slowed {name}: p95 "
                          f"{' -> '.join(p95)} ms (before -> during -> after)")
        if window.get("recovery_of") and window.get("start_s") is not None:
            console.print(f"  recovery measured on: {window['recovery_of']}")
    phases = result.get("phases") or {}
    if len(windows) > 1 and phases:
        overall = "  ".join(f"{name} p95 {_ms((phases.get(name) or {}).get('p95_ms'))} ms"
                            for name in ("before", "during", "after"))
        console.print(f"all windows: {overall}; recovery {_recovery(result.get('recovery_s'))}")
