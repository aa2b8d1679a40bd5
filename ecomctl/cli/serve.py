"""``ecomctl serve``: the shop's HTTP gateway (all services in-process), or a simulator."""

from __future__ import annotations

import asyncio
import signal

import typer

from ecomctl.cli.output import err_console
from ecomctl.cli.serve_payment_gateway import payment_gateway

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
) -> None:
    """Serve the shop's HTTP API (gateway plus all nine services, in-process).

    Needs the backends (ecomctl stack up) and the schema (ecomctl db migrate). The OpenAPI
    document is at /openapi.json; /healthz and /readyz are for probes. Stops on Ctrl-C.
    """
    if ctx.invoked_subcommand is not None:
        return
    asyncio.run(_serve(host, port, payment_gateway_url))


async def _serve(host: str, port: int, payment_gateway_url: str | None) -> None:
    from ecomctl.bootstrap import StackOptions, running_stack
    from ecomctl.gateway.server import running_gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = StackOptions(payment_gateway_url=payment_gateway_url)
    async with running_stack(options=options) as shop, running_gateway(shop, host, port) as at:
        err_console.print(f"ecomctl gateway listening on [bold]{at.url}[/bold] (Ctrl-C stops)")
        await stop.wait()
    err_console.print("gateway stopped")
