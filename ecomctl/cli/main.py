"""``ecomctl``: the entry point, and the CLI boundary: what a command raises is turned into
an exit code here, and only here (the map is ``ecomctl.cli.exit_codes``)."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.markup import escape

from ecomctl import __version__
from ecomctl.cli import (
    bench,
    checkout,
    db,
    doctor,
    events,
    faults,
    gate,
    load,
    report,
    seed,
    serve,
    stack,
    traces,
)
from ecomctl.cli.exit_codes import CommandFailed, exit_code_of
from ecomctl.cli.help import ANALYSE, CI, OPERATE, RUN, SET_UP, Typer, examples
from ecomctl.cli.logs import configure_logging
from ecomctl.cli.output import err_console
from ecomctl.cli.result_output import ResultCommand
from ecomctl.cli.streams import complete_writes
from ecomctl.cli.termination import INTERRUPTED, interrupted_exit_code, stop_on_sigterm
from ecomctl.config import propagators_error
from ecomctl.errors import EcomctlError

app = Typer(
    name="ecomctl",
    help=(
        "A traced e-commerce stack on real PostgreSQL, Redis, Kafka and Elasticsearch, "
        "as a reproducible workload.\n\n"
        "Start with [bold]ecomctl stack up[/bold] (installs and starts the backends), "
        "[bold]ecomctl db migrate[/bold], [bold]ecomctl seed[/bold], then "
        "[bold]ecomctl checkout simulate[/bold]; [bold]ecomctl traces analyze[/bold] explains "
        "where the time went. Every command has --help, with examples."
    ),
    epilog=examples(
        "ecomctl stack up && ecomctl db migrate && ecomctl seed",
        "ecomctl checkout simulate --duration 30s --out run.json",
        "ecomctl report run.json --html run.html",
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Grouped by workflow (help.PANELS): set the stack up, run the shop and its workloads,
# analyse what a run left, hold it to gates in CI, and operate the running shop.
app.add_typer(stack.app, name="stack", rich_help_panel=SET_UP)
app.add_typer(db.app, name="db", rich_help_panel=SET_UP)
app.command(name="seed", rich_help_panel=SET_UP, epilog=seed.EXAMPLES)(seed.seed)
app.add_typer(serve.app, name="serve", rich_help_panel=RUN)
app.add_typer(checkout.app, name="checkout", rich_help_panel=RUN)
app.add_typer(load.app, name="load", rich_help_panel=RUN)
app.add_typer(faults.app, name="faults", rich_help_panel=RUN)
app.command(name="report", rich_help_panel=ANALYSE, epilog=report.EXAMPLES)(report.report)
app.add_typer(traces.app, name="traces", rich_help_panel=ANALYSE)
app.add_typer(gate.app, name="gate", rich_help_panel=CI)
app.command(name="bench", cls=ResultCommand, rich_help_panel=CI,
            epilog=bench.EXAMPLES)(bench.bench)
app.command(name="doctor", rich_help_panel=OPERATE, epilog=doctor.EXAMPLES)(doctor.doctor)
app.add_typer(events.app, name="events", rich_help_panel=OPERATE)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecomctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show the backend clients' own log lines "
        "(aiokafka, Elasticsearch, httpx...), which are hidden by default."),
) -> None:
    """ecomctl."""
    configure_logging(verbose)


def run() -> None:
    """The CLI boundary: what a command raises becomes its exit code (``exit_codes``)."""
    complete_writes()
    stop_on_sigterm()
    try:
        app()
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # typer's answer to a KeyboardInterrupt, SIGTERM's too
            sys.exit(interrupted_exit_code())
        raise
    except KeyboardInterrupt as exc:
        err_console.print("[yellow]interrupted[/yellow]")
        sys.exit(exit_code_of(exc))
    except (EcomctlError, CommandFailed) as exc:
        _fail(exc)
    except ValueError:
        # OTEL_PROPAGATORS naming a propagator that is not installed fails the first import
        # of opentelemetry.propagate (the API reads it there), before any Settings: a
        # configuration error, said as one.
        if (problem := propagators_error()) is None:
            raise
        _fail(problem)


def _fail(exc: BaseException) -> NoReturn:
    if str(exc):
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
    sys.exit(exit_code_of(exc))


if __name__ == "__main__":
    run()
