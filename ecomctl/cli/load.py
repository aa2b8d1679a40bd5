"""``ecomctl load run``: a Locust load profile against the gateway, exact HDR percentiles."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ecomctl.cli.exit_codes import CommandFailed
from ecomctl.cli.fault_options import (
    fault_option,
    fault_schedule_option,
    faults_epilog,
    parse_fault_options,
)
from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import err_console
from ecomctl.cli.result_output import ResultCommand, emit_run_result, json_option, out_option
from ecomctl.cli.units import duration_option, percent_option
from ecomctl.load.profiles import PROFILES, ProfileName

if TYPE_CHECKING:
    from rich.status import Status

    from ecomctl.load.runner import Progress

app = Typer(help="Locust load profiles against the shop's gateway.", no_args_is_help=True)

PROFILE_HELP = f"A load profile (default mixed): {', '.join(p.value for p in ProfileName)}."
RUN_EPILOG = examples(
    "ecomctl load run --profile mixed --users 20 --spawn-rate 10 --duration 30s",
    "ecomctl load run --profile checkout --workers 2 --max-error-rate 2%",
    "ecomctl load run --profile mixed -- --tags checkout --csv out/stats",
) + "\n\n" + faults_epilog()


@app.command(cls=ResultCommand, epilog=RUN_EPILOG,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    profile: ProfileName = typer.Option(None, metavar="PROFILE", help=PROFILE_HELP),
    locustfile: Path = typer.Option(None, metavar="FILE", help="Your own locustfile instead "
                                    "of a profile; it must `import hdr_hook` (scenarios/ is "
                                    "on its path; `from shop import ShopUser` works too)."),
    users: int = typer.Option(None, min=1, max=100_000, metavar="N",
                              help="Concurrent users (default: the profile's)."),
    spawn_rate: float = typer.Option(None, min=0.01, metavar="PER_S",
                                     help="Users started per second."),
    duration: float | None = duration_option(None, help="How long to run (default: the "
                                             "profile's)."),
    workers: int = typer.Option(0, min=0, max=64, metavar="N", help="Locust worker "
                                "processes under a master (0: one local process)."),
    master: bool = typer.Option(False, "--master", help="Run only Locust's master and wait "
                                "for --expect-workers workers that `ecomctl load worker` starts, "
                                "on this host or others (Locust's distributed mode)."),
    expect_workers: int = typer.Option(None, min=1, max=1024, metavar="N", help="--master: "
                                       "how many workers to wait for before starting."),
    master_bind_host: str = typer.Option("127.0.0.1", metavar="HOST", help="--master: the "
                                         "address workers connect to (also where the gateway "
                                         "ecomctl starts listens; '*' binds all, then give "
                                         "--host)."),
    master_bind_port: int = typer.Option(5557, min=1, max=65535, metavar="PORT",
                                         help="--master: the port workers connect to."),
    rate: float = typer.Option(None, min=0.001, metavar="PER_S", help="constant-rate only: "
                               "journeys per second over all users (default: one per user "
                               "per second)."),
    host: str = typer.Option(None, metavar="URL", help="A running gateway, e.g. "
                             "http://127.0.0.1:8000 (default: start one on a free local port, "
                             "capture its spans and check the invariants after the run)."),
    serve_workers: int = typer.Option(
        1, min=1, max=64, metavar="N", help="API processes of the gateway ecomctl starts "
        "(`serve --workers N`: N on one port, plus the events role and the payment simulator "
        "in processes of their own); not with --host."),
    credentials: Path = typer.Option(None, metavar="FILE",
                                     help="Shoppers file written by `ecomctl seed`."),
    fault: list[str] = fault_option(),
    fault_schedule: str = fault_schedule_option(),
    out: Path = out_option(),
    json_output: bool = json_option(),
    no_live: bool = typer.Option(False, "--no-live", help="No live progress line while "
                                 "running."),
    web: bool = typer.Option(False, "--web", help="Serve Locust's own web UI during the run "
                             "(charts, failures, per-endpoint table); the run still starts "
                             "and ends by itself and writes ecomctl's result."),
    web_host: str = typer.Option("127.0.0.1", metavar="HOST", help="--web: the address "
                                 "Locust's UI listens on ('*': all)."),
    web_port: int = typer.Option(8089, min=1, max=65535, metavar="PORT",
                                 help="--web: its port."),
    max_error_rate: float = percent_option(
        "0%", "--max-error-rate", help="Exit 1 when more than this share of the requests "
        "failed (2% or 0.02; 0: any failed request fails the run, as Locust's own exit code "
        "does; 100%: never)."),
) -> None:
    """Run a load profile with Locust (in its own processes) and report per-endpoint
    latency percentiles from HdrHistograms merged exactly across workers, plus, when ecomctl
    starts the gateway, the server-side spans, cache hit ratios and business invariants.

    Locust's own options go after `--` (see the examples); ecomctl sets the locustfile,
    host, users, spawn rate, run time, headless and distributed options itself.

    Exit 0 on success, 1 when the run fails, the error rate passes --max-error-rate or an
    invariant breaks, 2 for bad options.
    """
    from ecomctl.config import Settings
    from ecomctl.load.profiles import locustfile_of
    from ecomctl.load.runner import (
        LoadRequest,
        RemoteWorkers,
        WebUI,
        owned_locust_options,
        run_load,
    )

    if profile is not None and locustfile is not None:
        raise typer.BadParameter("give --profile or --locustfile, not both")
    if master and not expect_workers:
        raise typer.BadParameter("--master needs --expect-workers N", param_hint="--master")
    if expect_workers and not master:
        raise typer.BadParameter("only with --master", param_hint="--expect-workers")
    if not web and (web_host != "127.0.0.1" or web_port != 8089):
        raise typer.BadParameter("only with --web", param_hint="--web-host/--web-port")
    if master and workers:
        raise typer.BadParameter("--workers starts local workers; with --master, workers join "
                                 "from `ecomctl load worker`", param_hint="--workers")
    if host and serve_workers != 1:
        raise typer.BadParameter("sizes the gateway ecomctl starts; --host names your own",
                                 param_hint="--serve-workers")
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
    duration_s = duration or chosen.duration_s
    faults, windows = parse_fault_options(fault, fault_schedule, duration_s)
    request = LoadRequest(
        locustfile=locustfile.resolve() if locustfile else locustfile_of(chosen),
        users=n_users,
        spawn_rate=spawn_rate or chosen.spawn_rate,
        duration_s=duration_s,
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
        faults=faults,
        fault_schedule=windows,
        web=WebUI(web_host, web_port) if web else None,
        serve_workers=serve_workers,
    )
    progress = None if no_live else _LiveLine(err_console.status("starting"))
    with progress.status if progress else contextlib.nullcontext():
        result = run_load(
            request, Settings.from_env(),
            on_phase=progress.phase if progress else _print_phase,
            on_tick=progress.tick if progress else None,
        )
    emit_run_result(result, json_output=json_output, out=out)
    error_rate = result.totals.error_rate
    if error_rate > max_error_rate:
        raise CommandFailed(f"{result.totals.failures:,} requests failed: error rate "
                            f"{error_rate:.2%} > --max-error-rate {max_error_rate:.2%}")


@app.command(epilog=examples(
    "ecomctl load run --master --expect-workers 4 --master-bind-host 0.0.0.0",
    "ecomctl load worker --master-host 10.0.0.5",
))
def worker(
    master_host: str = typer.Option(..., metavar="HOST", help="The host of `ecomctl load run "
                                    "--master` (its --master-bind-host)."),
    master_port: int = typer.Option(5557, min=1, max=65535, metavar="PORT",
                                    help="Its --master-bind-port."),
    profile: ProfileName = typer.Option(None, metavar="PROFILE",
                                        help="The master's profile (default mixed)."),
    locustfile: Path = typer.Option(None, metavar="FILE", help="The master's own locustfile, "
                                    "when it runs one (the same file on this host)."),
    credentials: Path = typer.Option(None, metavar="FILE", help="The shoppers file `ecomctl "
                                     "seed` wrote on the shop's host (default: this host's "
                                     "ecomctl home)."),
) -> None:
    """Join a Locust master started with `ecomctl load run --master` as one worker process
    (start one per core).

    The master sends the host, users and pacing, and receives this worker's HdrHistograms,
    so its result merges every worker exactly.

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
        raise CommandFailed(f"the Locust worker exited with {code}")


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
