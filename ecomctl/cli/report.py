"""``ecomctl report RESULT.json``: print a run's report again, or write it as HTML."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ecomctl.cli.exit_codes import CommandFailed
from ecomctl.cli.help import examples
from ecomctl.cli.output import console, err_console

if TYPE_CHECKING:
    from ecomctl.reports.trace_links import TraceLinks
    from ecomctl.results import Result

EXAMPLES = examples(
    "ecomctl report run.json",
    "ecomctl report run.json --html run.html",
)


def report(
    result_file: Path = typer.Argument(..., metavar="RESULT_FILE", help="A result file: "
                                       "`checkout simulate`, `load run` or `ecomctl bench` "
                                       "with --out FILE."),
    html: Path = typer.Option(None, metavar="FILE",
                              help="Also write a self-contained HTML page with plots."),
) -> None:
    """Print a saved result again (a simulation, a load run or a bench), or write it as HTML.

    Simulation: latency per journey, operations, cache, Kafka, the slowest trace as a tree,
    trace findings and the business invariants. Load run: per-endpoint latency, the server
    side and the invariants. Bench: each figure against its floor (`ecomctl gate check`
    judges the ratios). Exit 1 if a simulation or load run broke an invariant, 2 if the file
    is not a valid result (the message names the field).
    """
    from ecomctl.cli.render_result import render_result
    from ecomctl.results import BenchResult, read_result

    result = read_result(result_file)
    render_result(result, console)
    if html is not None:
        from ecomctl.reports.html import write_html_report

        write_html_report(result, html, _trace_links(result))
        err_console.print(f"HTML report written to {html}")
    if not result.ok and not isinstance(result, BenchResult):
        raise CommandFailed()


def _trace_links(result: Result) -> TraceLinks | None:
    """Where the page's percentiles link to: the trace UI, and, drawn in the page for when
    it is not running, the traces behind the journeys' or endpoints' percentiles."""
    from ecomctl.config import Settings
    from ecomctl.reports.trace_links import TraceLinks, drawn_trace_ids, load_traces
    from ecomctl.results import LoadRunResult, SimulationResult

    if isinstance(result, SimulationResult):
        rows = list(result.journeys.values())
    elif isinstance(result, LoadRunResult):
        rows = list((result.endpoints or {}).values())
    else:
        return None
    drawn = load_traces(result.trace_file, drawn_trace_ids(rows))
    return TraceLinks(Settings.from_env().trace_ui_url, drawn)
