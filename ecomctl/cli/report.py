"""``ecomctl report RESULT.json``: print a run's report again, or write it as HTML."""

from __future__ import annotations

from pathlib import Path

import typer

from ecomctl.cli.output import console, err_console


def report(
    result_file: Path = typer.Argument(..., help="A result written with --json."),
    html: Path = typer.Option(None, help="Also write a self-contained HTML page with plots."),
) -> None:
    """Print a saved `checkout simulate` result again, or write it as HTML.

    Tables, the slowest trace as a tree, trace findings and the business invariants; exit 1
    if the run broke an invariant.
    """
    from ecomctl.cli.render_result import render_result
    from ecomctl.sim.result import read_result

    result = read_result(result_file)
    if result.get("kind") != "checkout-simulate":
        from ecomctl.errors import ConfigError

        raise ConfigError(
            f"{result_file}: a {result.get('kind')!r} result; `ecomctl report` renders "
            "checkout-simulate results (a load run prints its report when it ends, and "
            "`ecomctl gate check` reads either kind)"
        )
    render_result(result, console)
    if html is not None:
        from ecomctl.reports.html import write_html_report

        write_html_report(result, html)
        err_console.print(f"HTML report written to {html}")
    if not result.get("ok", False):
        raise typer.Exit(1)
