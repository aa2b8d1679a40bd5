"""``ecomctl serve payment-gateway``: the payment gateway simulator as a standalone server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import typer

from ecomctl.cli.help import examples
from ecomctl.cli.output import console, err_console
from ecomctl.cli.units import percent_option

PAYMENT_GATEWAY_EXAMPLES = examples(
    "ecomctl serve payment-gateway --port 18080 --decline-rate 10% --latency-ms 80",
    "ecomctl serve payment-gateway --error-rate 5% --timeout-rate 1% --seed 7",
)


def payment_gateway(
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST",
                             help="Address to listen on."),
    port: int = typer.Option(
        18080, "--port", min=0, max=65535, metavar="PORT",
        help="Port to listen on (0 picks a free one)."
    ),
    latency_ms: float = typer.Option(
        50.0, "--latency-ms", min=0.0, metavar="MS", help="Mean response latency."
    ),
    latency_jitter_ms: float = typer.Option(
        20.0, "--latency-jitter-ms", min=0.0, metavar="MS",
        help="Standard deviation of the latency (0: fixed)."
    ),
    latency_distribution: str = typer.Option(
        "lognormal",
        "--latency-distribution",
        metavar="NAME",
        help="[bold]lognormal[/bold] (long right tail, never negative) or "
        "[bold]normal[/bold] (clamped at 0).",
    ),
    decline_rate: float = percent_option(
        "0%", "--decline-rate", help="Share of the cards that are declined (402)."
    ),
    error_rate: float = percent_option(
        "0%", "--error-rate", help="Share of the requests answered 500/502/503."
    ),
    timeout_rate: float = percent_option(
        "0%", "--timeout-rate",
        help="Share of the requests that hang for --timeout-delay-s (the client gives up).",
    ),
    timeout_capture_rate: float = percent_option(
        "0%", "--timeout-capture-rate",
        help="Share of the timed-out charges captured anyway (a retry with the key replays it).",
    ),
    timeout_delay_s: float = typer.Option(
        30.0, "--timeout-delay-s", min=0.0, metavar="SECONDS",
        help="How long a simulated timeout hangs."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Make the sequence of outcomes and latencies reproducible."
    ),
    flags_file: Path = typer.Option(
        None, "--flags-file", metavar="FILE",
        help="Watch this fault flag file (flagd JSON) and apply its "
        "payment faults (payment-decline, payment-slow, payment-timeout-after-capture) while "
        "running; `serve --workers` passes its own."
    ),
) -> None:
    """Run the payment gateway simulator until Ctrl-C.

    A rate is a percentage: 10% or 0.1. Faults apply in order, each to what the previous one
    let through: timeouts, then errors, then declines; the rest are captured. Change them
    while it runs with [bold]PATCH /v1/config[/bold]; read the counts at [bold]GET
    /v1/stats[/bold].
    """
    from ecomctl.errors import ConfigError
    from ecomctl.simulators.payment_gateway import SimulatorConfig, run_payment_gateway

    try:
        config = SimulatorConfig.from_spec(
            {
                "latency_mean_ms": latency_ms,
                "latency_jitter_ms": latency_jitter_ms,
                "latency_distribution": latency_distribution,
                "decline_rate": decline_rate,
                "error_rate": error_rate,
                "timeout_rate": timeout_rate,
                "timeout_capture_rate": timeout_capture_rate,
                "timeout_delay_s": timeout_delay_s,
                "seed": seed,
            }
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Ctrl-C and SIGTERM both mean "stop cleanly"; the server's own handlers are off.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with (run_payment_gateway(config, host=host, port=port) as server,
                    _watching_faults(server.simulator, flags_file)):
            where = server.url
            if host in ("0.0.0.0", "::", ""):
                where += f" (all interfaces, {host or '*'}:{server.port})"
            summary = (
                f"latency {config.latency_distribution.value} "
                f"{config.latency_mean_ms:g}±{config.latency_jitter_ms:g} ms, "
                f"decline {_percent(config.decline_rate)}, error {_percent(config.error_rate)}, "
                f"timeout {_percent(config.timeout_rate)}"
            )
            console.print(
                f"payment gateway simulator listening on {where} ({summary}); Ctrl-C to stop",
                markup=False,
                soft_wrap=True,
            )
            await stop.wait()

    from ecomctl import event_loop

    event_loop.run(serve())
    err_console.print("payment gateway simulator stopped")


def _watching_faults(simulator: Any,
                     flags_file: Path | None) -> AbstractAsyncContextManager[object]:
    """The payment faults of the flag file on this simulator (``serve --workers`` runs it
    as its own process, so the shop's flags reach it here)."""
    if flags_file is None:
        return contextlib.nullcontext()
    from ecomctl.cli.output import print_fault_change
    from ecomctl.faults.watcher import simulator_applier, watching_faults

    return watching_faults(flags_file, simulator_applier(simulator),
                           on_change=print_fault_change)


def _percent(rate: float) -> str:
    return f"{rate * 100:g}%"
