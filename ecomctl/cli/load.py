"""``ecomctl load run``: a Locust load profile against the gateway, exact HDR percentiles."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from ecomctl.cli.output import console, err_console
from ecomctl.cli.units import parse_duration
from ecomctl.load.profiles import PROFILES, ProfileName

if TYPE_CHECKING:
    from rich.status import Status

    from ecomctl.load.runner import Progress

app = typer.Typer(help="Locust load profiles against the shop's gateway.", no_args_is_help=True)



@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    profile: ProfileName = typer.Option(None, help="A load profile (default mixed)."),
    locustfile: Path = typer.Option(None, help="Your own locustfile instead of a profile; "
                                    "it must `import hdr_hook` (scenarios/ is on its path; "
                                    "`from shop import ShopUser` works too)."),
    users: int = typer.Option(None, min=1, max=100_000,
                              help="Concurrent users (default: the profile's)."),
    spawn_rate: float = typer.Option(None, min=0.01, help="Users started per second."),
    duration: str = typer.Option(None, help="How long to run, e.g. 60s, 2m (default: the "
                                 "profile's)."),
    workers: int = typer.Option(0, min=0, max=64, help="Locust worker processes under a "
                                "master (0: one local process)."),
    master: bool = typer.Option(False, "--master", help="Run only Locust's master and wait "
                                "for --expect-workers workers that `ecomctl load worker` starts, "
                                "on this host or others (Locust's distributed mode)."),
    expect_workers: int = typer.Option(None, min=1, max=1024, help="--master: how many "
                                       "workers to wait for before starting."),
    master_bind_host: str = typer.Option("127.0.0.1", help="--master: the address workers "
                                         "connect to (also where the gateway ecomctl starts "
                                         "listens; '*' binds all, then give --host)."),
    master_bind_port: int = typer.Option(5557, min=1, max=65535,
                                         help="--master: the port workers connect to."),
    rate: float = typer.Option(None, min=0.001, help="constant-rate only: journeys per second "
                               "over all users (default: one per user per second)."),
    host: str = typer.Option(None, help="A running gateway, e.g. http://127.0.0.1:8000 "
                             "(default: start one on a free local port, capture its spans and "
                             "check the invariants after the run)."),
    credentials: Path = typer.Option(None, help="Shoppers file written by `ecomctl seed`."),
    json_file: Path = typer.Option(None, "--json", help="Write the result document here."),
    live: bool = typer.Option(True, help="Show live progress while running."),
    max_error_rate: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Exit 1 when more than this share of requests failed "
        "(0: any failed request fails the run, as Locust's own exit code does; 1: never)."),
) -> None:
    """Run a load profile with Locust (in its own processes) and report per-endpoint
    latency percentiles from HdrHistograms merged exactly across workers, plus, when ecomctl
    starts the gateway, the server-side spans, cache hit ratios and business invariants.

    Locust's own options go after `--`, e.g. `ecomctl load run --profile mixed -- --tags
    checkout --csv out/stats --html out/locust.html` (ecomctl sets the locustfile, host,
    users, spawn rate, run time, headless and distributed options itself).

    Exit 0 on success, 1 when the run fails, the error rate passes --max-error-rate or an
    invariant breaks, 2 for bad options.
    """
    from ecomctl.config import Settings
    from ecomctl.load.profiles import locustfile_of
    from ecomctl.load.runner import (
        LoadRequest,
        RemoteWorkers,
        owned_locust_options,
        run_load,
    )
    from ecomctl.sim.result import write_result

    if profile is not None and locustfile is not None:
        raise typer.BadParameter("give --profile or --locustfile, not both")
    if master and not expect_workers:
        raise typer.BadParameter("--master needs --expect-workers N", param_hint="--master")
    if expect_workers and not master:
        raise typer.BadParameter("only with --master", param_hint="--expect-workers")
    if master and workers:
        raise typer.BadParameter("--workers starts local workers; with --master, workers join "
                                 "from `ecomctl load worker`", param_hint="--workers")
    chosen = PROFILES[profile or "mixed"]
    if rate is not None and not chosen.constant_rate:
        raise typer.BadParameter("--rate needs --profile constant-rate")
    if locustfile is not None and not locustfile.is_file():
        raise typer.BadParameter(f"{locustfile}: no such file", param_hint="--locustfile")
    owned = owned_locust_options(ctx.args)
    if owned:
        raise typer.BadParameter(f"{', '.join(owned)}: set by ecomctl; use `ecomctl load run`'s "
                                 "own options for these", param_hint="-- LOCUST_ARGS")
    n_users = users or chosen.users
    request = LoadRequest(
        locustfile=locustfile.resolve() if locustfile else locustfile_of(chosen),
        users=n_users,
        spawn_rate=spawn_rate or chosen.spawn_rate,
        duration_s=parse_duration(duration) if duration else chosen.duration_s,
        workers=workers,
        remote=RemoteWorkers(expect_workers, master_bind_host, master_bind_port)
        if master else None,
        host=host.rstrip("/") if host else None,
        profile=None if locustfile else chosen.name,
        shape=None if locustfile else chosen.shape,
        pacing_s=(n_users / rate if rate else 1.0) if chosen.constant_rate and not locustfile
        else None,
        credentials=credentials,
        locust_args=tuple(ctx.args),
    )
    progress = _LiveLine(err_console.status("starting")) if live else None
    with progress.status if progress else contextlib.nullcontext():
        result = run_load(
            request, Settings.from_env(),
            on_phase=progress.phase if progress else _print_phase,
            on_tick=progress.tick if progress else None,
        )
    render_load_result(result)
    if json_file is not None:
        write_result(result, json_file)
        err_console.print(f"result written to {json_file}")
    if not result["ok"]:
        err_console.print("[bold red]a business invariant is broken[/bold red]")
        raise typer.Exit(1)
    error_rate = result["totals"]["error_rate"]
    if error_rate > max_error_rate:
        err_console.print(f"[bold red]{result['totals']['failures']:,} requests failed: error "
                          f"rate {error_rate:.2%} > --max-error-rate {max_error_rate:.2%}"
                          "[/bold red]")
        raise typer.Exit(1)


@app.command()
def worker(
    master_host: str = typer.Option(..., help="The host of `ecomctl load run --master` (its "
                                    "--master-bind-host)."),
    master_port: int = typer.Option(5557, min=1, max=65535, help="Its --master-bind-port."),
    profile: ProfileName = typer.Option(None, help="The master's profile (default mixed)."),
    locustfile: Path = typer.Option(None, help="The master's own locustfile, when it runs one "
                                    "(the same file on this host)."),
    credentials: Path = typer.Option(None, help="The shoppers file `ecomctl seed` wrote on the "
                                     "shop's host (default: this host's ecomctl home)."),
) -> None:
    """Join a Locust master started with `ecomctl load run --master` as one worker process
    (start one per core). The master sends the host, users and pacing, and receives this
    worker's HdrHistograms, so its result merges every worker exactly.

    Exit 0 when the master ends the run, 2 for bad options, Locust's code otherwise.
    """
    from ecomctl.load.profiles import locustfile_of
    from ecomctl.load.runner import run_worker

    if profile is not None and locustfile is not None:
        raise typer.BadParameter("give --profile or --locustfile, not both")
    if locustfile is not None and not locustfile.is_file():
        raise typer.BadParameter(f"{locustfile}: no such file", param_hint="--locustfile")
    chosen = locustfile.resolve() if locustfile else locustfile_of(PROFILES[profile or "mixed"])
    err_console.print(f"[dim]Locust worker for {master_host}:{master_port} ({chosen.name})"
                      "...[/dim]")
    code = run_worker(chosen, master_host, master_port, credentials)
    if code != 0:
        err_console.print(f"[red]the Locust worker exited with {code}[/red]")
        raise typer.Exit(code)


def _print_phase(phase: str) -> None:
    err_console.print(f"[dim]{phase}...[/dim]")


class _LiveLine:
    """One status line: the phase, then elapsed / requests / failures while Locust runs."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def phase(self, text: str) -> None:
        err_console.print(f"[dim]{text}...[/dim]")
        self.status.update(text)

    def tick(self, p: Progress) -> None:
        rate = p.requests / p.elapsed_s if p.elapsed_s else 0.0
        self.status.update(f"{p.elapsed_s:.0f}/{p.duration_s:.0f}s  {p.requests:,} requests "
                           f"({rate:,.0f}/s)  {p.failures:,} failures")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def render_load_result(result: dict[str, Any]) -> None:
    totals, config = result["totals"], result["config"]
    console.print(
        f"[bold]{result['kind']}[/bold] {config['profile'] or config['locustfile']}: "
        f"{totals['requests']:,} requests in {result['duration_s']:.1f}s "
        f"({totals['rps']:,}/s), {totals['failures']:,} failed ({totals['error_rate']:.2%}); "
        f"{config['users']} users, {config['workers'] or 'no'} workers"
        + (f" (remote, master {config['master']})" if config.get("master") else "")
        + f", {config['host']}"
    )
    console.print(f"latency from {result['latency_origin']}")
    table = Table(title="endpoints (HdrHistogram, merged across Locust processes)")
    table.add_column("endpoint", no_wrap=True)
    for column in ("count", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, e in result["endpoints"].items():
        table.add_row(name, f"{e['count']:,}", f"{e['errors']:,}", f"{e.get('rps', 0):,}",
                      _ms(e["p50_ms"]), _ms(e["p95_ms"]), _ms(e["p99_ms"]), _ms(e["max_ms"]))
    console.print(table)
    if result["journeys"]:
        journeys = Table(title="journeys")
        for column in ("journey", "count", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms"):
            journeys.add_column(column, justify="left" if column == "journey" else "right")
        for name, j in result["journeys"].items():
            journeys.add_row(name, f"{j['count']:,}", f"{j['errors']:,}", _ms(j["p50_ms"]),
                             _ms(j["p95_ms"]), _ms(j["p99_ms"]), _ms(j["max_ms"]))
        console.print(journeys)
    for kind, counts in result["outcomes"].items():
        console.print(f"{kind} outcomes: "
                      + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    if result["errors"]:
        console.print("failed requests by cause: "
                      + ", ".join(f"{k} {v:,}" for k, v in result["errors"].items()))
    _render_server_side(result)


def _render_server_side(result: dict[str, Any], top: int = 10) -> None:
    if "spans" not in result:
        return
    spans = Table(title=f"server side: top {top} operations by self time")
    spans.add_column("service")
    spans.add_column("operation", overflow="fold")
    for column in ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "self ms"):
        spans.add_column(column, justify="right")
    for op in result["spans"][:top]:
        spans.add_row(op["service"], op["name"], f"{op['count']:,}", f"{op['errors']:,}",
                      _ms(op["p50_ms"]), _ms(op["p95_ms"]), _ms(op["p99_ms"]),
                      _ms(op["self_ms"]))
    console.print(spans)
    context = result.get("trace_context", {})
    console.print(f"gateway server spans: {context.get('server_spans', 0):,}, continuing a "
                  f"load request's traceparent: {context.get('remote_parent', 0):,}")
    for service, c in result.get("cache", {}).items():
        console.print(f"cache {service}: hit ratio {c['hit_ratio']:.1%} over "
                      f"{c['requests']:,} lookups ({c['served_by']})")
    console.print(f"spans captured in {result.get('trace_file')}")
    if result.get("drained") is False:
        console.print("[yellow]the outbox or the consumers did not drain in time: invariants "
                      "may report work still in flight[/yellow]")
    for inv in result.get("invariants", []):
        mark = "[green]ok[/green]" if inv["ok"] else "[red]BROKEN[/red]"
        console.print(f"invariant {inv['name']}: {mark} ({inv['detail']})")
