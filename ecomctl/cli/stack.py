"""``ecomctl stack``: the real backends as local processes (no Docker needed)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from enum import StrEnum
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ecomctl.cli.exit_codes import CommandFailed
from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import (
    console,
    err_console,
    human_bytes,
    ok_mark,
    print_json,
    show_address,
)
from ecomctl.cli.steps import Steps
from ecomctl.cli.units import duration_option

if TYPE_CHECKING:
    from ecomctl.stack.manager import BackendStatus, InstallPlan, LocalStack

app = Typer(
    help=(
        "The local backend stack, as processes on 127.0.0.1 (no Docker needed).\n\n"
        "PostgreSQL, Redis (and one for the caches), Kafka (KRaft), Elasticsearch, Jaeger "
        "(the collector and trace store), Zipkin (the trace UI) and Prometheus (metrics and "
        "the live dashboard). State lives in $ECOMCTL_HOME, downloads in $ECOMCTL_CACHE_DIR "
        "(root: /var/lib/ecomctl and /var/cache/ecomctl)."
    ),
    no_args_is_help=True,
)

BACKENDS = "postgres, redis, redis-cache, kafka, elasticsearch, jaeger, zipkin, prometheus"
"""The local stack's backends in start order, for help texts (a unit test holds it to
LocalStack's)."""
NAMES_HELP = f"Backends to act on ({BACKENDS}); default: all."


def _stack() -> LocalStack:
    from ecomctl.stack.manager import LocalStack

    return LocalStack()


LANE_WIDTH = 13
"""The longest backend name (elasticsearch), so that the messages line up."""


def _progress(backend: str, message: str, /, *, done: bool = False) -> None:
    err_console.print(f"[cyan]{backend:>{LANE_WIDTH}}[/cyan]  {message}")


def _steps() -> Steps:
    """Each backend's steps with their elapsed time while they run (``cli.steps``)."""
    return Steps(err_console, lane_width=LANE_WIDTH)


@app.command(epilog=examples("ecomctl stack install --check", "ecomctl stack install",
                            "ecomctl stack install kafka elasticsearch"))
def install(
    names: list[str] = typer.Argument(None, metavar="NAME", help=NAMES_HELP),
    check: bool = typer.Option(
        False, "--check",
        help="Only check the host tools (Go, JDK, Maven) and say what would be installed; "
        "download nothing.",
    ),
) -> None:
    """Install what is missing, without starting anything.

    Debian packages with apt, Kafka and Elasticsearch from Maven Central (Maven), Jaeger
    built from the Go module proxy (Go). Downloads are cached; a second run does nothing.
    Each step shows its elapsed time while it runs (plain lines in a pipe or with CI=true).

    The host tools are checked first: Go >= 1.24.6 for Jaeger (or GOTOOLCHAIN=go1.27.3 with
    any Go >= 1.21), a JDK 17+ for Kafka and 21+ for Elasticsearch (ECOMCTL_JAVA_HOME picks
    one), Maven >= 3.6.3. Exit 2 when one is missing or too old, naming it, the version
    found, the version needed and how to get it.
    """
    stack = _stack()
    if check:
        _print_install_plan(stack.install_plan(names))
        return
    started = time.monotonic()
    with _steps() as steps:
        done = stack.install(names, progress=steps.report)
    what = ", ".join(done) if done else "nothing (all installed)"
    console.print(f"installed {what} in {time.monotonic() - started:.1f}s")


def _print_install_plan(plan: InstallPlan) -> None:
    from ecomctl.stack.host_tools import format_version

    table = Table(title="host tools for the installs still to do")
    for column in ("tool", "found", "needed by", "needs"):
        table.add_column(column)
    for check in plan.tools:
        table.add_row(
            check.need.tool, check.found.describe(), check.need.needed_by,
            f">= {format_version(check.need.minimum)}",
        )
    if plan.tools:
        console.print(table)
    installed = ", ".join(f"{n} {v}" for n, v in plan.installed.items()) or "nothing"
    console.print(f"installed: {installed}")
    console.print(f"to install: {', '.join(plan.to_install) or 'nothing'}")


@app.command(epilog=examples("ecomctl stack up", "ecomctl stack up postgres redis --timeout 2m",
                            "ecomctl stack up --json | jq '.[] | {name, healthy}'"))
def up(
    names: list[str] = typer.Argument(None, metavar="NAME", help=NAMES_HELP),
    timeout: float = duration_option("240s", help="How long to wait for each backend to "
                                     "serve."),
    json_output: bool = typer.Option(False, "--json", help="Print the final status as JSON."),
) -> None:
    """Start the backends and wait until each really serves.

    Installs what is missing first (see [bold]stack install[/bold]). Idempotent: backends
    already up are left alone. Health means: PostgreSQL answers a query, Redis PING and
    SET/GET, Kafka creates a topic and answers metadata, Elasticsearch cluster health
    yellow/green, the health endpoints of Jaeger, Zipkin and Prometheus. Each step shows its
    elapsed time while it runs; at the end, where the trace UI and the dashboard are.
    """
    started = time.monotonic()
    with _steps() as steps:
        statuses = asyncio.run(_stack().up(names, timeout=timeout, progress=steps.report))
    if json_output:
        print_json([asdict(s) for s in statuses])
        return
    _status_table(statuses)
    console.print(f"stack ready in {time.monotonic() - started:.1f}s")
    _print_pages({s.name for s in statuses if s.healthy})


@app.command(epilog=examples("ecomctl stack down", "ecomctl stack down elasticsearch"))
def down(names: list[str] = typer.Argument(None, metavar="NAME",
                                           help=NAMES_HELP)) -> None:
    """Stop every process that [bold]up[/bold] started, and nothing else. Data is kept."""
    stopped = _stack().down(names, progress=_progress)
    console.print(f"stopped {', '.join(stopped) if stopped else 'nothing (none running)'}")


@app.command(epilog=examples("ecomctl stack status", "ecomctl stack status kafka --json"))
def status(
    names: list[str] = typer.Argument(None, metavar="NAME", help=NAMES_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """Show each backend: pid, port, health, version, memory.

    Exit 0 when every selected backend is healthy, 1 otherwise.
    """
    statuses = asyncio.run(_stack().status(names))
    if json_output:
        print_json([asdict(s) for s in statuses])
    else:
        _status_table(statuses)
    if not all(s.healthy for s in statuses):
        raise CommandFailed()


def _status_table(statuses: list[BackendStatus]) -> None:
    table = Table(title="ecomctl local stack")
    for column in ("backend", "pid", "port", "healthy", "version", "rss", "detail"):
        table.add_column(column)
    for s in statuses:
        detail = s.detail if s.healthy else f"{s.detail}\nlog: {s.log_file}"
        table.add_row(
            s.name, str(s.pid or "-"), str(s.port), ok_mark(s.healthy), s.version or "-",
            human_bytes(s.rss_bytes) if s.rss_bytes else "-", detail,
        )
    console.print(table)
    total = sum(s.rss_bytes for s in statuses)
    if total:
        console.print(f"total RSS {human_bytes(total)}")


class Page(StrEnum):
    traces = "traces"
    metrics = "metrics"


def _page_url(page: Page) -> str:
    from ecomctl.config import Settings
    from ecomctl.telemetry.links import dashboard_url, trace_ui_url

    settings = Settings.from_env()
    return trace_ui_url(settings) if page is Page.traces else dashboard_url(settings)


def _print_pages(healthy: set[str]) -> None:
    if "zipkin" in healthy:
        console.print(f"traces:  {_page_url(Page.traces)}")
    if "prometheus" in healthy:
        console.print(f"metrics: {_page_url(Page.metrics)}")


@app.command("open", epilog=examples("ecomctl stack open traces",
                                     "ecomctl stack open metrics --browser"))
def open_page(
    page: Page = typer.Argument(..., metavar="PAGE",
                                help="traces: the trace UI (Zipkin: search, waterfalls, "
                                "dependencies); metrics: the shop's live dashboard "
                                "(Prometheus)."),
    browser: bool = typer.Option(False, "--browser", help="Also open it in your browser."),
) -> None:
    """Print the address of a page to watch the shop with (and open it with --browser).

    A trace by its id: [bold]ecomctl traces open TRACE_ID[/bold].
    """
    show_address(_page_url(page), browser)


@app.command(epilog=examples('eval "$(ecomctl stack env)"'))
def env() -> None:
    """Print export lines for the local stack's URLs, for a shell to evaluate."""
    import shlex

    from ecomctl.config import local_stack_env

    for key, value in local_stack_env().items():
        typer.echo(f"export {key}={shlex.quote(value)}")


@app.command(epilog=examples("ecomctl stack logs kafka -n 50", "ecomctl stack logs postgres -f"))
def logs(
    name: str = typer.Argument(..., metavar="NAME", help=f"One of {BACKENDS}."),
    lines: int = typer.Option(100, "--lines", "-n", min=1, metavar="N",
                              help="How many lines to show."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines."),
) -> None:
    """Show a backend's log (its stdout and stderr)."""
    stack = _stack()
    backend = stack.select([name])[0]
    typer.echo(stack.log_tail(backend, lines))
    if follow:
        with open(backend.log_file, "rb") as log:
            log.seek(0, 2)
            while True:
                chunk = log.read()
                if chunk:
                    typer.echo(chunk.decode(errors="replace"), nl=False)
                else:
                    time.sleep(0.5)
