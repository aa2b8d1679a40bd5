"""``--fault`` and ``--fault-schedule``: one spelling for `checkout simulate` and `load run`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ecomctl.faults.catalogue import FAULTS

if TYPE_CHECKING:
    from ecomctl.faults.catalogue import FaultSpec
    from ecomctl.faults.schedule import FaultWindow


def _names() -> str:
    return ", ".join(name if kind.value_help is None else f"{name}[={kind.value_help}]"
                     for name, kind in FAULTS.items())


def fault_option() -> Any:
    return typer.Option(None, "--fault", help=f"A fault for the whole run, NAME[=VALUE], "
                        f"repeatable: {_names()} (`ecomctl faults list` says what each does).")


def fault_schedule_option() -> Any:
    return typer.Option(
        None, "--fault-schedule", metavar="START+LENGTH:FAULT,...",
        help="Faults in windows from the start of the run, e.g. \"20s+15s:payment-slow=800, "
        "60s+10s:kafka-down\". The result gets figures before, during and after each window "
        "and the recovery time (until p95 is back within 20% or 5 ms of before).")


def parse_fault_options(
    faults: list[str] | None, schedule: str | None, duration_s: float | None
) -> tuple[tuple[FaultSpec, ...], tuple[FaultWindow, ...]]:
    from ecomctl.faults.catalogue import parse_fault
    from ecomctl.faults.schedule import check_fits, parse_schedule

    specs = tuple(parse_fault(text) for text in faults or [])
    windows = parse_schedule(schedule) if schedule else ()
    check_fits(windows, duration_s)
    return specs, windows
