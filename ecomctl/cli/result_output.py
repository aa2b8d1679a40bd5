"""Where a command's result document goes: one meaning of ``--json`` across commands.

``--out FILE`` writes the result document; ``--json`` prints it on stdout instead of the
human report (progress stays on stderr), as every other command's ``--json`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ecomctl.cli.help import HelpCommand

if TYPE_CHECKING:
    from ecomctl.results import LoadRunResult, SimulationResult


def out_option(what: str = "the result document (schema ecomctl.result/v1)") -> Any:
    return typer.Option(None, "--out", "-o", metavar="FILE", help=f"Write {what} to this file.",
                        dir_okay=False, writable=True)


def json_option(what: str = "the result document") -> Any:
    return typer.Option(False, "--json", help=f"Print {what} as JSON on stdout instead of "
                        "the report.")


def old_json_file(args: list[str]) -> str | None:
    """The file an old-style ``--json FILE`` names (``--json`` took a path before it became
    a flag), or None. Only ecomctl's own options count: Locust's come after ``--``."""
    for i, arg in enumerate(args):
        if arg == "--":
            return None
        if arg.startswith("--json="):
            return arg.split("=", 1)[1]
        if arg == "--json" and i + 1 < len(args):
            following = args[i + 1]
            if following != "--" and not following.startswith("-"):
                return following
    return None


class ResultCommand(HelpCommand):
    """A command writing a result document: an old-style ``--json FILE`` is refused with
    a pointer to ``--out FILE`` (instead of click's "unexpected extra argument", or, for
    ``load run``, the file name passed on to Locust)."""

    # ctx: typer's (vendored) click Context, which typer does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        stale = old_json_file(args)
        if stale is not None and not {"-h", "--help"} & set(args):
            raise typer.BadParameter(
                f"it takes no file name any more and prints the result on stdout; write the "
                f"result to a file with --out {stale}", ctx=ctx, param_hint="'--json'")
        return super().parse_args(ctx, args)


def emit_run_result(result: SimulationResult | LoadRunResult, *, json_output: bool,
                    out: Path | None,
                    extra: Callable[[], None] = lambda: None) -> None:
    """A run's result: JSON on stdout or the report, the ``--out`` file, ``extra`` lines
    (stderr), then exit 1 when a business invariant broke."""
    from ecomctl.cli.exit_codes import CommandFailed
    from ecomctl.cli.output import console, err_console, print_json
    from ecomctl.cli.render_result import render_result
    from ecomctl.results import write_result

    if json_output:
        print_json(result.to_dict())
    else:
        render_result(result, console)
    if out is not None:
        write_result(result, out)
        err_console.print(f"result written to {out}")
    extra()
    if not result.ok:
        raise CommandFailed("a business invariant is broken")
