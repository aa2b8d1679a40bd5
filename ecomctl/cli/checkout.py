"""``ecomctl checkout simulate``: traced shopper journeys against the stack, with faults."""

from __future__ import annotations

import contextlib
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.live import Live
from rich.table import Table

from ecomctl import event_loop
from ecomctl.cli.fault_options import (
    fault_option,
    fault_schedule_option,
    faults_epilog,
    parse_fault_options,
)
from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import err_console
from ecomctl.cli.result_output import ResultCommand, emit_run_result, json_option, out_option
from ecomctl.cli.units import DurationType, duration_option

if TYPE_CHECKING:
    from ecomctl.sim.recorder import LiveView

app = Typer(help="Traced checkout simulations.", no_args_is_help=True)


class Via(StrEnum):
    inprocess = "inprocess"
    http = "http"


EPILOG = examples(
    "ecomctl checkout simulate --duration 2m --shoppers 20 --out run.json",
    "ecomctl checkout simulate --fault db-slow=50 --fault payment-decline=5%",
    "ecomctl checkout simulate --fault-schedule 20s+15s:payment-slow=800",
    "ecomctl checkout simulate --sessions 500 --via http --no-live",
) + "\n\n" + faults_epilog()


@app.command(cls=ResultCommand, epilog=EPILOG)
def simulate(
    shoppers: int = typer.Option(10, min=1, max=10_000, metavar="N",
                                 help="Virtual shoppers (concurrency)."),
    duration: float | None = duration_option(None, help="How long to run (default 60s)."),
    sessions: int = typer.Option(None, min=1, metavar="N",
                                 help="Stop after this many journeys instead."),
    think_time: float = duration_option(
        "0.5s", help="Mean think time between journeys.",
        kind=DurationType(allow_zero=True)),
    arrival_rate: float = typer.Option(
        None, metavar="PER_S", help="Open loop: journeys per second (Poisson arrivals); "
        "latency counts from each intended start."),
    seed: int = typer.Option(1, help="Seed of the shoppers' choices (same seed, same "
                             "journeys)."),
    via: Via = typer.Option(Via.inprocess, metavar="MODE", help="inprocess: call the "
                            "services; http: through the gateway on a local port."),
    weights: str = typer.Option(
        None, metavar="WEIGHTS", help="Journey weights over the defaults, e.g. "
        "browse=10,checkout=5, of: browse, search, recommendations, cart, checkout, "
        "pay-order (an order paid with a double-click; 0 by default)."),
    fault: list[str] = fault_option(),
    fault_schedule: str = fault_schedule_option(),
    credentials: Path = typer.Option(None, metavar="FILE",
                                     help="Shoppers file written by `ecomctl seed`."),
    out: Path = out_option(),
    json_output: bool = json_option(),
    trace_file: Path = typer.Option(None, metavar="FILE", help="Capture the spans here "
                                    "(OTLP JSON lines); default: a new file in the trace "
                                    "store."),
    processes: int = typer.Option(1, min=1, max=64, metavar="N", help="Shopper processes, "
                                  "to use more cores; this one runs the relay and the "
                                  "consumers. Histograms merge exactly."),
    no_live: bool = typer.Option(False, "--no-live", help="No live dashboard (there is one "
                                 "with one process only)."),
) -> None:
    """Drive virtual shoppers through browse, search, recommendation, cart and checkout
    journeys, then report latency, errors, cache hit rates, Kafka lag, trace findings and
    the business invariants.

    Needs a seeded shop (ecomctl seed). Exit 0 when every invariant holds, 1 when one is
    broken (or a backend fails), 2 for bad options.
    """
    from ecomctl.config import Settings
    from ecomctl.seed.credentials import default_credentials_path
    from ecomctl.sim.journeys import parse_weights
    from ecomctl.sim.runner import SimulationPlan
    from ecomctl.sim.simulate import simulate as run
    from ecomctl.telemetry.trace_store import trace_store_dir

    if duration is not None and sessions is not None:
        raise typer.BadParameter("give --duration or --sessions, not both")
    duration_s = None if sessions is not None else duration or 60.0
    faults, windows = parse_fault_options(fault, fault_schedule, duration_s)
    plan = SimulationPlan(
        shoppers=shoppers, duration_s=duration_s,
        sessions=sessions, think_time_s=think_time, arrival_rate=arrival_rate, seed=seed,
        via=via.value, weights=tuple(parse_weights(weights).items()),
        faults=faults, fault_schedule=windows,
    )
    stamp = time.strftime("%Y%m%dT%H%M%S")
    trace_path = trace_file or trace_store_dir() / f"simulate-{stamp}.otlp.jsonl"
    settings = Settings.from_env()

    def on_phase(phase: str) -> None:
        err_console.print(f"[dim]{phase}...[/dim]")

    shoppers_file = credentials or default_credentials_path()
    if processes > 1:
        from ecomctl.sim.processes import simulate_processes

        with err_console.status(f"{processes} shopper processes"):
            result = event_loop.run(simulate_processes(
                settings, plan, processes, credentials=shoppers_file, trace_file=trace_path,
                on_phase=on_phase,
            ))
    else:
        dashboard = None if no_live else _Dashboard(plan.duration_s)
        with dashboard.live if dashboard else contextlib.nullcontext():
            result = event_loop.run(run(
                settings, plan, credentials=shoppers_file, trace_file=trace_path,
                on_tick=dashboard.update if dashboard else None, on_phase=on_phase,
            ))
    emit_run_result(result, json_output=json_output, out=out,
                    extra=lambda: err_console.print(f"spans captured in {trace_path}"))


class _Dashboard:
    def __init__(self, duration_s: float | None) -> None:
        self._duration_s = duration_s
        self.live = Live(self._table(None), console=err_console, refresh_per_second=2,
                         transient=True)

    def update(self, view: LiveView) -> None:
        self.live.update(self._table(view))

    def _table(self, view: LiveView | None) -> Table:
        table = Table(title="checkout simulate (live)")
        for column in ("elapsed", "journeys", "rate/s", "errors", "p50 ms", "p95 ms", "p99 ms",
                       "cache hits"):
            table.add_column(column, justify="right")
        if view is None:
            table.add_row("starting", "-", "-", "-", "-", "-", "-", "-")
        else:
            total = f"/{self._duration_s:.0f}s" if self._duration_s else "s"
            table.add_row(f"{view.elapsed_s:.0f}{total}", f"{view.journeys:,}",
                          f"{view.rate_per_s:.1f}", f"{view.errors:,}", f"{view.p50_ms:.1f}",
                          f"{view.p95_ms:.1f}", f"{view.p99_ms:.1f}",
                          "-" if view.cache_hit_ratio is None else f"{view.cache_hit_ratio:.0%}")
        return table
