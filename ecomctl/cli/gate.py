"""``ecomctl gate``: fail CI on performance regressions.

``check`` holds a result document to a gates file (thresholds, invariants, trace
assertions); ``compare`` holds it to a baseline run. Both exit 0 when everything passes, 3 on
a breach or regression, 2 for an invalid gates file, result file or option.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from ecomctl.cli.exit_codes import GateBroken
from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import console, err_console, fit_table, print_json
from ecomctl.cli.units import DurationType, duration_option, percent_option

if TYPE_CHECKING:
    from ecomctl.gates.compare import Comparison, MetricDelta, TargetComparison
    from ecomctl.gates.evaluate import GateReport


app = Typer(
    help=(
        "Performance gates for CI: thresholds on a run's result ([bold]check[/bold]) and "
        "regressions against a baseline run ([bold]compare[/bold]).\n\nExit 3 when a gate "
        "is broken, 2 for an invalid gates or result file."
    ),
    no_args_is_help=True,
)


def default_gates_file() -> Path:
    from ecomctl.resources import fixtures_dir

    return fixtures_dir() / "gates" / "default.yaml"


# -- check ------------------------------------------------------------------------------------


@app.command(epilog=examples(
    "ecomctl gate check run.json",
    "ecomctl gate check run.json --gates ci/gates.yaml --junit gates.xml",
))
def check(
    result_file: Path = typer.Argument(..., metavar="RESULT_FILE", help="A result document "
                                       "(`checkout simulate --out FILE`, `load run --out "
                                       "FILE`, `bench --out FILE`)."),
    gates: Path = typer.Option(None, "--gates", metavar="FILE", help="The gates file (YAML). "
                               "Default: ecomctl's fixtures/gates/default.yaml."),
    traces: str = typer.Option(None, "--traces", metavar="SOURCE", help="Spans for the trace "
                               "assertions (a file, a directory, jaeger://HOST:PORT). "
                               "Default: the result's trace_file."),
    junit: Path = typer.Option(None, "--junit", metavar="FILE",
                               help="Also write a JUnit XML report here."),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check a run's result against a gates file: latency percentiles per journey, endpoint
    and span, error rate, throughput, cache hit ratios, the business invariants and trace
    assertions; or an `ecomctl bench` result's ratios (section bench).

    Exit 0 when every gate passes, 3 when one is broken, 2 for an invalid gates file (the
    message names the line) or result file."""
    from ecomctl.gates.evaluate import evaluate
    from ecomctl.gates.junit import GATES_SUITE, cases_from_report, write_junit
    from ecomctl.gates.spec import load_gates
    from ecomctl.results import read_result

    gates_file = gates or default_gates_file()
    spec = load_gates(gates_file)
    result = read_result(result_file)
    started = time.perf_counter()
    report = evaluate(spec, result, traces=traces, result_dir=result_file.parent)
    elapsed = time.perf_counter() - started
    if junit is not None:
        properties = {"gates_file": str(gates_file), "result_file": str(result_file)}
        if report.trace_source:
            properties["trace_source"] = report.trace_source
        write_junit(junit, GATES_SUITE, cases_from_report(report), time_s=elapsed,
                    properties=properties)
    if json_output:
        print_json({**report.to_dict(), "result_file": str(result_file)})
    else:
        _render_report(report, result_file)
        if junit is not None:
            err_console.print(f"JUnit report written to {junit}")
    if not report.passed:
        raise GateBroken()


def _check_text(section: str, metric: str, threshold: str) -> str:
    """What was required, in one cell: "p95 < 1500ms", "count >= 1", "holds"."""
    if section in ("traces", "invariants"):
        return metric
    return f"{metric} {threshold}"


def _render_report(report: GateReport, result_file: Path) -> None:
    table = Table(title=f"gates: {escape(report.source)} on {escape(str(result_file))}")
    for column in ("gate", "target", "check", "observed", "result"):
        table.add_column(column, justify="right" if column == "observed" else "left")
    for o in report.outcomes:
        verdict = "[green]pass[/green]" if o.passed else "[bold red]FAIL[/bold red]"
        observed = escape(o.observed_text) if o.passed else f"[red]{escape(o.observed_text)}[/red]"
        table.add_row(o.section, escape(o.target),
                      escape(_check_text(o.section, o.metric, o.threshold)), observed, verdict)
    console.print(table)
    failures = report.failures
    for o in failures:
        console.print(f"[red]✗[/red] {escape(report.source)}:{o.line}: {o.section} "
                      f"{escape(o.target)}: {escape(o.message or o.observed_text)}")
    total = len(report.outcomes)
    if failures:
        console.print(f"[bold red]{len(failures)} of {total} gates broken[/bold red]")
    else:
        console.print(f"[bold green]all {total} gates pass[/bold green]")


# -- compare ----------------------------------------------------------------------------------


@app.command(epilog=examples(
    "ecomctl gate compare baseline.json run.json",
    "ecomctl gate compare base.json run.json --max-regression 20%",
    "ecomctl gate compare base.json run.json --min-absolute 10ms --json",
))
def compare(
    baseline_file: Path = typer.Argument(..., metavar="BASELINE",
                                         help="The baseline result document."),
    current_file: Path = typer.Argument(..., metavar="CURRENT",
                                        help="The result document to judge."),
    max_regression: float = percent_option(
        "10%", "--max-regression", maximum=None,
        help="Relative slow-down that counts as a regression (10% or 0.1)."),
    min_absolute_ms: float = duration_option(
        "5ms", "--min-absolute", kind=DurationType(bare_unit=None, allow_zero=True, unit="ms"),
        help="...and it must also be slower by at least this much, so noise on tiny numbers "
        "does not fail a build."),
    max_error_increase: float = percent_option(
        "1%", "--max-error-increase", help="Error-rate increase that counts as a regression, "
        "in percentage points (1% or 0.01: +1 point)."),
    min_count: int = typer.Option(1, "--min-count", min=1, metavar="N", help="Compare only "
                                  "targets with at least this many samples in both runs."),
    percentiles: str = typer.Option("p50,p95,p99", "--percentiles", metavar="LIST",
                                    help="Latency metrics to compare, comma separated (p50 "
                                    "p90 p95 p99 p999 mean max)."),
    show_all: bool = typer.Option(False, "--all", help="List every span operation, not only "
                                  "the ones that changed."),
    junit: Path = typer.Option(None, "--junit", metavar="FILE",
                               help="Also write a JUnit XML report here."),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Compare a run with a baseline: p50/p95/p99 and error rate per journey, endpoint and
    span operation.

    A change counts as a regression only when it exceeds both --max-regression and
    --min-absolute; improvements are shown but never fail. Exit 3 on any regression, 0
    otherwise, 2 for an invalid result file or option."""
    from ecomctl.errors import ConfigError
    from ecomctl.gates.compare import CompareOptions, compare_results
    from ecomctl.gates.junit import COMPARE_SUITE, cases_from_comparison, write_junit
    from ecomctl.results import LOAD_RUN, SIMULATION, read_result

    try:
        options = CompareOptions(
            max_regression=max_regression,
            min_absolute_ms=min_absolute_ms,
            max_error_increase=max_error_increase,
            min_count=min_count,
            percentiles=tuple(p.strip() for p in percentiles.split(",") if p.strip()),
        )
    except ValueError as exc:
        raise ConfigError(f"--percentiles: {exc}") from None
    baseline = read_result(baseline_file, (SIMULATION, LOAD_RUN))
    current = read_result(current_file, (SIMULATION, LOAD_RUN))
    started = time.perf_counter()
    comparison = compare_results(baseline, current, options)
    elapsed = time.perf_counter() - started
    if junit is not None:
        write_junit(junit, COMPARE_SUITE, cases_from_comparison(comparison), time_s=elapsed,
                    properties={"baseline": str(baseline_file), "current": str(current_file),
                                **{k: str(v) for k, v in options.to_dict().items()}})
    if json_output:
        print_json({**comparison.to_dict(), "baseline_file": str(baseline_file),
                    "current_file": str(current_file)})
    else:
        _render_comparison(comparison, baseline_file, current_file, show_all)
        if junit is not None:
            err_console.print(f"JUnit report written to {junit}")
    if not comparison.passed:
        raise GateBroken()


_VERDICT_STYLE = {"regression": "bold red", "improvement": "green", "same": "dim"}


def _cell(delta: MetricDelta | None) -> str:
    if delta is None:
        return "-"
    from ecomctl.gates.evaluate import format_ms

    if delta.metric == "error_rate":
        text = (f"{delta.baseline * 100:.3g}% → {delta.current * 100:.3g}% "
                f"({delta.change * 100:+.2g}pt)")
        if not delta.change:
            text = f"{delta.current * 100:.3g}%"
    elif not delta.change:
        text = format_ms(delta.current)
    else:
        relative = delta.relative
        rel = "" if relative is None else f" {relative * 100:+.0f}%"
        text = f"{format_ms(delta.baseline)} → {format_ms(delta.current)}{rel}"
    return f"[{_VERDICT_STYLE[delta.verdict]}]{escape(text)}[/]"


def _shown(target: TargetComparison, show_all: bool) -> bool:
    return show_all or target.section != "spans" or target.verdict != "same"


def _render_comparison(comparison: Comparison, baseline_file: Path, current_file: Path,
                       show_all: bool) -> None:
    options = comparison.options
    metrics = [*options.percentiles, "error_rate"]
    compared = comparison.with_status("compared")
    table = Table(title=(
        f"{escape(str(current_file))} vs baseline {escape(str(baseline_file))} "
        f"(regression: > +{options.max_regression * 100:g}% and > +{options.min_absolute_ms:g}"
        f"ms; error rate > +{options.max_error_increase * 100:g} points)"
    ))
    for column in ("section", "target", "count", *metrics, "verdict"):
        table.add_column(column, justify="left" if column in ("section", "target") else "right")
    hidden = 0
    for target in compared:
        if not _shown(target, show_all):
            hidden += 1
            continue
        by_metric = {d.metric: d for d in target.deltas}
        verdict = target.verdict
        table.add_row(
            target.section, escape(target.target),
            f"{target.baseline_count} → {target.current_count}",
            *(_cell(by_metric.get(m)) for m in metrics),
            f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]",
        )
    # At a narrow width the ✗ lines below still give every regression in full.
    keep = "p95" if "p95" in options.percentiles else options.percentiles[-1]
    fit_table(table, names=("section", "target"), name_width=20,
              optional=[*(p for p in options.percentiles if p != keep), "error_rate"])
    console.print(table)
    if hidden:
        console.print(f"[dim]{hidden} unchanged span operations not shown (--all lists "
                      "them)[/dim]")
    for status, label in (("disappeared", "only in the baseline"),
                          ("appeared", "only in the current run"),
                          ("too few samples", f"fewer than {options.min_count} samples")):
        targets = comparison.with_status(status)
        if targets:
            names = ", ".join(f"{t.section}:{t.target}" for t in targets)
            console.print(f"[yellow]{label}[/yellow] ({len(targets)}): {escape(names)}")
    from ecomctl.gates.compare import describe_delta

    regressed = comparison.regressed
    for target in regressed:
        for delta in target.regressions:
            console.print(f"[red]✗[/red] {target.section} {escape(target.target)}: "
                          f"{escape(describe_delta(delta))}")
    improved = sum(1 for t in compared if t.verdict == "improvement")
    summary = f"{len(compared)} targets compared, {improved} improved"
    if regressed:
        console.print(f"[bold red]{len(regressed)} regressed[/bold red]; {summary}")
    else:
        console.print(f"[bold green]no regression[/bold green]; {summary}")
