"""``--fault`` and ``--fault-schedule``: one spelling for `checkout simulate` and `load run`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from ecomctl.faults.catalogue import FAULTS

if TYPE_CHECKING:
    from ecomctl.faults.catalogue import FaultSpec
    from ecomctl.faults.schedule import FaultWindow


def fault_option() -> Any:
    return typer.Option(None, "--fault", metavar="NAME[=VALUE]",
                        help="A fault for the whole run, repeatable (the faults are listed "
                        "below).")


def fault_schedule_option() -> Any:
    return typer.Option(
        None, "--fault-schedule", metavar="SCHEDULE",
        help="Faults in windows of the run, START+LENGTH:FAULT,... e.g. "
        "\"20s+15s:payment-slow=800, 60s+10s:kafka-down\". The result gets figures before, "
        "during and after each, and the recovery time (p95 back within 20% or 5 ms).")


def faults_epilog() -> str:
    """Every fault, one per line, for the epilog of a command that takes ``--fault``: the
    option's help column is too narrow for the list (rich cut it with "…" at 80 columns)."""
    lines = ["[bold]Faults[/bold] (--fault NAME[=VALUE]; RATE: 30% or 0.3; "
             "`ecomctl faults list` shows them too)"]
    for name, kind in FAULTS.items():
        value = "" if kind.value_help is None else f"[={kind.value_help}]"
        default = f" (default {kind.default})" if kind.default else ""
        lines.append(f"• {escape(name + value)}: {escape(kind.summary)}{default}")
    return "\n".join(lines)


def parse_fault_options(
    faults: list[str] | None, schedule: str | None, duration_s: float | None
) -> tuple[tuple[FaultSpec, ...], tuple[FaultWindow, ...]]:
    from ecomctl.faults.catalogue import parse_fault
    from ecomctl.faults.schedule import check_fits, parse_schedule

    specs = tuple(parse_fault(text) for text in faults or [])
    windows = parse_schedule(schedule) if schedule else ()
    check_fits(windows, duration_s)
    return specs, windows
