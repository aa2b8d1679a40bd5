"""``ecomctl serve``: the shop's HTTP gateway (all services in-process), or a simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from ecomctl import event_loop
from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import err_console, print_fault_change
from ecomctl.cli.serve_payment_gateway import PAYMENT_GATEWAY_EXAMPLES, payment_gateway
from ecomctl.faults.catalogue import Role as FaultRole

if TYPE_CHECKING:
    from ecomctl.bootstrap import ShopStack

app = Typer(
    invoke_without_command=True,
    epilog=examples(
        "ecomctl serve",
        "ecomctl serve --workers 2 --port 8000 --drain-on-exit",
        "ecomctl serve --role api --host 0.0.0.0   # on each web host",
        "ecomctl serve --role events               # on one or more others",
    ),
)
app.command("payment-gateway", epilog=PAYMENT_GATEWAY_EXAMPLES)(payment_gateway)


DB_POOL_SIZE = 20
DB_CONNECTIONS_FOR_API = 120
"""What N API processes share by default (plus the events role's 20): within the local
PostgreSQL's max_connections of 200 whatever the number of cores."""


class Role(StrEnum):
    all = "all"
    api = "api"
    events = "events"


@app.callback()
def gateway(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", metavar="HOST", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, metavar="PORT",
                             help="Port to listen on (0: any free)."),
    role: Role = typer.Option(
        Role.all, case_sensitive=False,
        help="[bold]api[/bold]: the HTTP gateway and the services (no Kafka work; several "
        "api processes may share one port); [bold]events[/bold]: the outbox relay, the Kafka "
        "consumers and the carrier, no HTTP; [bold]all[/bold]: both.",
    ),
    workers: int = typer.Option(
        None, min=1, max=64, metavar="N", show_default="the number of cores",
        help="API processes on the port (each with its own pools). With --role all and more "
        "than one worker, one more process runs the events role (and one the payment gateway "
        "simulator, unless --payment-gateway-url).",
    ),
    payment_gateway_url: str = typer.Option(
        None, metavar="URL",
        help="A running payment gateway; default: start the simulator (in-process, or "
        "one process shared by the workers)."
    ),
    trace_file: Path = typer.Option(
        None, metavar="FILE",
        help="Also capture every span to this file (OTLP JSON lines, beside the OTLP "
        "export); with several processes, each writes NAME.<process>.jsonl beside it."
    ),
    drain_on_exit: bool = typer.Option(
        False, "--drain-on-exit",
        help="On stop, publish every outbox row and wait for the Kafka consumers "
        "before exiting (so invariants can be checked right after; roles all and events)."
    ),
    db_pool_size: int = typer.Option(
        None, "--db-pool-size", min=1, max=500, metavar="N",
        show_default=f"{DB_POOL_SIZE}; with N API processes {DB_CONNECTIONS_FOR_API}/N each",
        help="PostgreSQL connections per process. Every process has its own pool, so the "
        "default shares a budget among API processes to stay within the server's "
        "max_connections (200 on the local stack).",
    ),
    payment_ledger: Path = typer.Option(
        None, metavar="FILE",
        help="When the server stops (after the drain), write the payment gateway's "
        "ledger, every capture it made, to this JSON file: what `load run` checks the "
        "database's paid orders against. Needs the events role (--role all or events)."
    ),
    flags_file: Path = typer.Option(
        None, "--flags-file", metavar="FILE",
        show_default="$ECOMCTL_FLAGS_FILE or flags.json in the state dir",
        help="The fault flag file (flagd's JSON format) every process of the shop watches: "
        "`ecomctl faults set payment-decline=0.5` turns a fault on while the shop runs, "
        "`faults clear` turns it off.",
    ),
    limit_concurrency: int = typer.Option(
        None, "--limit-concurrency", min=0, max=1_000_000, metavar="N",
        show_default="$ECOMCTL_LIMIT_CONCURRENCY or 1024",
        help="Requests in flight per API process before the gateway answers 503 at once "
        "instead of queueing (0: no limit). Open connections do not count: one that sends "
        "no request is closed after 5 s.",
    ),
    forwarded_allow_ips: str = typer.Option(
        None, "--forwarded-allow-ips", metavar="LIST",
        show_default="$ECOMCTL_FORWARDED_ALLOW_IPS or none",
        help="Proxies in front of the gateway (comma separated addresses or networks, * for "
        "any) whose X-Forwarded-For names the client: what the per-address limits count. "
        "By default the header is ignored, since any client can send it.",
    ),
) -> None:
    """Serve the shop: the HTTP API (gateway plus all nine services) and its event workers;
    or the payment gateway simulator alone.

    Needs the backends (ecomctl stack up) and the schema (ecomctl db migrate). The OpenAPI
    document is at /openapi.json; /healthz and /readyz are for probes. Stops on Ctrl-C.

    One process uses one core. [bold]--workers N[/bold] runs N API processes on the port
    (SO_REUSEPORT) and the events role in a process of its own, so Kafka work never takes
    the API's event loop. The roles share nothing but PostgreSQL, Redis, Kafka and
    Elasticsearch, so they also spread over hosts: `serve --role api` on each web host,
    `serve --role events` on one or more others (the consumers form a Kafka consumer group).
    """
    if ctx.invoked_subcommand is not None:
        return
    from ecomctl.faults.flag_file import default_flags_file

    flags = flags_file or default_flags_file()
    _raise_open_files_limit()
    if forwarded_allow_ips is not None:
        from ecomctl.config import forwarded_allow_ips as parse_allow_ips

        parse_allow_ips(forwarded_allow_ips)  # a bad value: exit 2 before anything starts
        # Through the environment, so every process of the shop (workers too) reads it.
        os.environ["ECOMCTL_FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    count = workers or os.cpu_count() or 1
    if role is Role.events or count == 1:
        event_loop.run(_serve(host, port, role, payment_gateway_url, trace_file,
                              drain_on_exit, db_pool_size or DB_POOL_SIZE, limit_concurrency,
                              payment_ledger, flags))
        return
    if payment_ledger is not None and role is not Role.all:
        raise typer.BadParameter("--payment-ledger needs the events role (--role all or "
                                 "events): it writes the ledger after the drain")
    from ecomctl.gateway.workers import WorkerPlan, supervise

    plan = WorkerPlan(host=host, port=port, api_workers=count, events=role is Role.all,
                      payment_gateway_url=payment_gateway_url, trace_file=trace_file,
                      drain_on_exit=drain_on_exit,
                      api_pool_size=db_pool_size or max(2, DB_CONNECTIONS_FOR_API // count),
                      limit_concurrency=limit_concurrency, flags_file=flags,
                      payment_ledger=payment_ledger)
    asyncio.run(supervise(plan, _print_worker_line,
                          lambda notice: err_console.print(escape(notice), soft_wrap=True)))


def _print_worker_line(name: str, line: str) -> None:
    err_console.print(f"[dim]\\[{name}][/dim] {escape(line)}", highlight=False, soft_wrap=True)


DRAIN_TIMEOUT_S = 60.0
STOP_DEADLINE_S = DRAIN_TIMEOUT_S + 30.0
"""From the stop signal to exit 1 with a report of what hung (a second signal: at once)."""


def _raise_open_files_limit() -> None:
    """Every socket is a file: a soft limit of 1,024 (many distributions' default) would let
    a thousand idle clients stop the gateway from accepting. Up to the hard limit, which
    the children inherit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _serve(
    host: str,
    port: int,
    role: Role,
    payment_gateway_url: str | None,
    trace_file: Path | None,
    drain_on_exit: bool,
    db_pool_size: int,
    limit_concurrency: int | None = None,
    payment_ledger: Path | None = None,
    flags_file: Path | None = None,
) -> None:
    from ecomctl.bootstrap import StackOptions, running_stack
    from ecomctl.cli.shutdown import StopDeadline
    from ecomctl.config import Settings
    from ecomctl.gateway.server import running_gateway
    from ecomctl.telemetry.setup import Telemetry

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline = StopDeadline(loop, stop, STOP_DEADLINE_S, f"serve --role {role.value}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, deadline.request)
    telemetry = None
    if trace_file is not None:
        from ecomctl.telemetry.trace_store import capture_processor

        telemetry = Telemetry(Settings.from_env(), span_processors=[capture_processor(trace_file)])
    options = StackOptions(payment_gateway_url=payment_gateway_url, telemetry=telemetry,
                           db_pool_size=db_pool_size)
    if role is Role.api:  # the events role does the Kafka and carrier work
        options = replace(options, workers=False, carrier=None)
    try:
        async with (running_stack(options=options) as shop,
                    _watching_faults(shop, role, flags_file)):
            if role is Role.events:
                names = ", ".join(c.name for c in shop.consumers)
                err_console.print(f"ecomctl events role running: outbox relay, consumers "
                                  f"{names}, carrier (Ctrl-C stops)")
                await stop.wait()
            else:
                async with running_gateway(shop, host, port, reuse_port=role is Role.api,
                                           limit_concurrency=limit_concurrency) as at:
                    err_console.print(
                        f"ecomctl gateway listening on [bold]{at.url}[/bold] "
                        f"(role {role.value}, {event_loop.chosen_loop()} loop, "
                        f"{event_loop.http_parser()}; Ctrl-C stops)"
                    )
                    await stop.wait()
            if drain_on_exit and role is not Role.api:
                # The gateway is closed: nothing new arrives while the consumers catch up.
                await _drain(shop)
            if payment_ledger is not None:
                ledger = await shop.payment_ledger()
                if ledger is not None:
                    payment_ledger.write_text(json.dumps(ledger.to_json()))
    finally:
        if telemetry is not None:  # running_stack leaves a telemetry it was given alone
            telemetry.shutdown()
        deadline.cancel()
    err_console.print("events role stopped" if role is Role.events else "gateway stopped")


_ROLES = {
    Role.all: frozenset(FaultRole),
    Role.api: frozenset({FaultRole.API}),
    Role.events: frozenset({FaultRole.EVENTS, FaultRole.PAYMENT_GATEWAY}),
}


def _watching_faults(shop: ShopStack, role: Role,
                     flags_file: Path | None) -> AbstractAsyncContextManager[object]:
    """The flag file's faults on this process's part of the shop, while it serves."""
    if flags_file is None:
        return contextlib.nullcontext()
    from ecomctl.faults.watcher import shop_applier, watching_faults

    return watching_faults(flags_file, shop_applier(shop, _ROLES[role]),
                           on_change=print_fault_change)


async def _drain(shop: ShopStack) -> None:
    """Publish the outbox, then wait for each consumer; say plainly which one lagged."""
    behind = await shop.drain(DRAIN_TIMEOUT_S)
    if behind:
        err_console.print(f"[yellow]consumers not caught up: {', '.join(behind)}[/yellow]")
    else:
        err_console.print("outbox and consumers drained")
