"""``ecomctl serve``: the shop's HTTP gateway (all services in-process), or a simulator."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ecomctl.cli.output import err_console
from ecomctl.cli.serve_payment_gateway import payment_gateway

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack

app = typer.Typer(
    help="Serve the shop over HTTP, or a third-party simulator on its own.",
    invoke_without_command=True,
)
app.command("payment-gateway")(payment_gateway)


@app.callback()
def gateway(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free)."),
    payment_gateway_url: str = typer.Option(
        None, help="A running payment gateway; default: start the simulator in-process."
    ),
    trace_file: Path = typer.Option(
        None, help="Also capture every span to this file (OTLP JSON lines, beside the OTLP "
        "export); `ecomctl load run` analyses it."
    ),
    drain_on_exit: bool = typer.Option(
        False, help="On stop, publish every outbox row and wait for the Kafka consumers "
        "before exiting (so invariants can be checked right after)."
    ),
) -> None:
    """Serve the shop's HTTP API (gateway plus all nine services, in-process).

    Needs the backends (ecomctl stack up) and the schema (ecomctl db migrate). The OpenAPI
    document is at /openapi.json; /healthz and /readyz are for probes. Stops on Ctrl-C.
    """
    if ctx.invoked_subcommand is not None:
        return
    asyncio.run(_serve(host, port, payment_gateway_url, trace_file, drain_on_exit))


DRAIN_TIMEOUT_S = 60.0


async def _serve(
    host: str,
    port: int,
    payment_gateway_url: str | None,
    trace_file: Path | None,
    drain_on_exit: bool,
) -> None:
    from ecomctl.bootstrap import StackOptions, running_stack
    from ecomctl.config import Settings
    from ecomctl.gateway.server import running_gateway
    from ecomctl.telemetry.setup import Telemetry

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    telemetry = None
    if trace_file is not None:
        from ecomctl.telemetry.trace_store import capture_processor

        telemetry = Telemetry(Settings.from_env(), span_processors=[capture_processor(trace_file)])
    options = StackOptions(payment_gateway_url=payment_gateway_url, telemetry=telemetry)
    try:
        async with running_stack(options=options) as shop:
            async with running_gateway(shop, host, port) as at:
                err_console.print(
                    f"ecomctl gateway listening on [bold]{at.url}[/bold] (Ctrl-C stops)"
                )
                await stop.wait()
            if drain_on_exit:
                # The gateway is closed: nothing new arrives while the consumers catch up.
                await _drain(shop)
    finally:
        if telemetry is not None:  # running_stack leaves a telemetry it was given alone
            telemetry.shutdown()
    err_console.print("gateway stopped")


async def _drain(shop: ShopStack) -> None:
    """Publish the outbox, then wait for each consumer; say plainly which one lagged."""
    behind = await shop.drain(DRAIN_TIMEOUT_S)
    if behind:
        err_console.print(f"[yellow]consumers not caught up: {', '.join(behind)}[/yellow]")
    else:
        err_console.print("outbox and consumers drained")
