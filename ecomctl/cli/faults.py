"""``ecomctl faults list|set|clear``: the fault flag file a running ``ecomctl serve`` watches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from ecomctl.faults.flag_file import FlagFile

app = Typer(
    help="Turn faults on and off in a running shop.\n\nEvery process of `ecomctl serve` "
    "watches one flag file in flagd's JSON format (OpenFeature's flagd provider reads it) and "
    "applies a change within a second; `--fault` and `--fault-schedule` of `checkout "
    "simulate` and `load run` name the same faults.",
    no_args_is_help=True,
)

FILE_HELP = "The flag file (default: $ECOMCTL_FLAGS_FILE, else flags.json in the state dir)."


def _flag_file(path: Path | None) -> FlagFile:
    from ecomctl.faults.flag_file import FlagFile, default_flags_file

    return FlagFile(path or default_flags_file())


@app.command("list", epilog=examples(
    "ecomctl faults list",
    "ecomctl faults list --json | jq '.faults[] | select(.active)'",
))
def list_faults(
    file: Path = typer.Option(None, "--file", metavar="FILE", help=FILE_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the faults as JSON."),
) -> None:
    """Every fault, whether it is on, its value and what it does."""
    from ecomctl.faults.catalogue import FAULTS

    flags = _flag_file(file)
    states = flags.states()
    if json_output:
        print_json({"file": str(flags.path), "faults": [
            {"name": s.name, "active": s.active, "value": s.value,
             "value_help": FAULTS[s.name].value_help, "default": FAULTS[s.name].default,
             "acts_in": FAULTS[s.name].role.value, "summary": FAULTS[s.name].summary}
            for s in states]})
        return
    table = Table(title=f"faults ({flags.path})", title_justify="left")
    table.add_column("fault", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("value", no_wrap=True)
    table.add_column("what it does", ratio=1)
    for state in states:
        kind = FAULTS[state.name]
        value = state.value or ("" if kind.value_help is None else
                                f"[dim]{kind.value_help}"
                                + (f" ({kind.default})" if kind.default else "") + "[/dim]")
        table.add_row(state.name, "[yellow]on[/yellow]" if state.active else "[dim]off[/dim]",
                      value, kind.summary)
    console.print(table)


@app.command("set", epilog=examples(
    "ecomctl faults set payment-decline=50%",
    "ecomctl faults set payment-slow=800 db-slow=50",
))
def set_faults(
    faults: list[str] = typer.Argument(..., metavar="NAME[=VALUE]",
                                       help="Faults to turn on, e.g. payment-decline=0.5 "
                                       "(a RATE is 50% or 0.5)."),
    file: Path = typer.Option(None, "--file", metavar="FILE", help=FILE_HELP),
) -> None:
    """Turn faults on (the others stay as they are); a running shop applies them within a
    second. `ecomctl faults list` names them."""
    from ecomctl.faults.catalogue import parse_fault

    specs = [parse_fault(text, "faults set") for text in faults]
    flags = _flag_file(file)
    flags.set(specs)
    err_console.print(f"on: {', '.join(str(s) for s in specs)} ({flags.path})")


@app.command("clear", epilog=examples(
    "ecomctl faults clear payment-decline",
    "ecomctl faults clear",
))
def clear_faults(
    faults: list[str] = typer.Argument(None, metavar="NAME",
                                       help="Faults to turn off; none: every fault."),
    file: Path = typer.Option(None, "--file", metavar="FILE", help=FILE_HELP),
) -> None:
    """Turn faults off (all of them when none is named)."""
    flags = _flag_file(file)
    flags.clear([name.partition("=")[0] for name in faults] if faults else None)
    err_console.print(f"off: {', '.join(faults) if faults else 'every fault'} ({flags.path})")
