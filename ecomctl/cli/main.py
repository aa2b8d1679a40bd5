"""``ecomctl``: the entry point, and the CLI boundary: what a command raises is turned into
an exit code here, and only here (the map is ``ecomctl.cli.exit_codes``)."""

from __future__ import annotations

import sys

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
from ecomctl.cli.logs import configure_logging
from ecomctl.cli.output import err_console
from ecomctl.cli.result_output import ResultCommand
from ecomctl.cli.streams import complete_writes
from ecomctl.cli.termination import INTERRUPTED, interrupted_exit_code, stop_on_sigterm
from ecomctl.errors import EcomctlError

app = typer.Typer(
    name="ecomctl",
    help=(
        "A traced e-commerce stack on real PostgreSQL, Redis, Kafka and Elasticsearch, "
        "as a reproducible workload.\n\n"
        "Start with [bold]ecomctl stack up[/bold] (installs and starts the backends), "
        "[bold]ecomctl db migrate[/bold], [bold]ecomctl seed[/bold], then "
        "[bold]ecomctl checkout simulate[/bold]; [bold]ecomctl traces analyze[/bold] explains "
        "where the time went."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.command(name="seed")(seed.seed)
app.add_typer(serve.app, name="serve")
app.add_typer(checkout.app, name="checkout")
app.add_typer(load.app, name="load")
app.command(name="report")(report.report)
app.add_typer(traces.app, name="traces")
app.command(name="doctor")(doctor.doctor)
app.add_typer(gate.app, name="gate")
app.add_typer(events.app, name="events")
app.add_typer(faults.app, name="faults")
app.command(name="bench", cls=ResultCommand)(bench.bench)


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
        if str(exc):
            err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exit_code_of(exc))


if __name__ == "__main__":
    run()
