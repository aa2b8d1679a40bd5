"""``ecomctl traces``: list, draw and analyse traces from ecomctl's trace store, OTLP JSON
files from any OpenTelemetry SDK or Collector, or a Jaeger query API."""

from __future__ import annotations

import gc
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import (
    console,
    err_console,
    fit_table,
    fits,
    print_json,
    show_address,
    trace_link,
)
from ecomctl.cli.units import DurationText, duration_option

if TYPE_CHECKING:
    from ecomctl.analysis.diff import Status, TraceDiff
    from ecomctl.analysis.model import SpanRecord, Trace
    from ecomctl.analysis.report import TraceAnalysis

app = Typer(
    help=(
        "Read, analyse and compare traces.\n\nFrom ecomctl's own trace store (the default), "
        "an OTLP JSON file or directory from any OpenTelemetry SDK or Collector, or Jaeger's "
        "query API ([bold]--from jaeger://HOST:PORT --service NAME[/bold])."
    ),
    no_args_is_help=True,
)

FROM_HELP = (
    "A file (OTLP JSON lines or document, ConsoleSpanExporter output, a saved Jaeger "
    "response), a directory of *.jsonl/*.json files, or jaeger://HOST:PORT. "
    "Default: the newest file in the trace store ($ECOMCTL_TRACE_DIR)."
)
SERVICE_HELP = "Only traces in which this service has a span (required for jaeger://)."
LIMIT_HELP = "At most this many traces, the most recent (0: all; jaeger:// default 100)."
LOOKBACK_HELP = "For jaeger://: how far back to search."


def _lookback_option() -> Any:
    return duration_option("1h", "--lookback", help=LOOKBACK_HELP,
                           kind=DurationText(bare_unit=None))

_KEY_ATTRIBUTES = (
    "http.request.method", "http.method", "http.route", "url.path", "http.target",
    "http.response.status_code", "http.status_code", "server.address",
    "messaging.destination.name", "messaging.destination", "messaging.operation",
    "db.operation.name", "error.type",
)
_STATEMENT_ATTRIBUTES = ("db.statement", "db.query.text")


def _source(source: str | None) -> str:
    if source:
        return source
    from ecomctl.errors import ConfigError
    from ecomctl.telemetry.trace_store import latest_trace_file, trace_store_dir

    latest = latest_trace_file()
    if latest is None:
        raise ConfigError(
            f"no trace files in {trace_store_dir()}: run a simulation first, or pass "
            "--from FILE|DIR|jaeger://HOST:PORT"
        )
    return str(latest)


def _load(source: str | None, service: str | None, limit: int, lookback: str) -> list[Trace]:
    from ecomctl.analysis.model import group_traces
    from ecomctl.analysis.readers import load_spans

    traces = group_traces(load_spans(_source(source), service=service, limit=limit,
                                     lookback=lookback))
    # The spans live until the command exits: keep the collector from rescanning them.
    gc.freeze()
    return traces


def _ms(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.1f} ms"
    return f"{ns / 1e3:.0f} µs"


def _when(ns: int, *, short: bool = False) -> str:
    moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return moment.strftime("%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S.%f")[
        : None if short else -3
    ]


def _root_label(trace: Trace) -> tuple[str, str]:
    root = trace.root
    return (root.service, root.name) if root else ("-", "-")


# -- list -------------------------------------------------------------------------------------


@app.command("list", epilog=examples(
    "ecomctl traces list --sort duration --limit 20",
    "ecomctl traces list --from jaeger://127.0.0.1:17686 --service checkout",
))
def list_traces(
    source: str = typer.Option(None, "--from", metavar="SOURCE", help=FROM_HELP),
    service: str = typer.Option(None, "--service", metavar="NAME", help=SERVICE_HELP),
    limit: int = typer.Option(0, "--limit", min=0, metavar="N", help=LIMIT_HELP),
    lookback: str = _lookback_option(),
    sort: str = typer.Option("start", "--sort", metavar="KEY", help="start (oldest first) or "
                             "duration (slowest first)."),
    json_output: bool = typer.Option(False, "--json", help="Print the traces as JSON."),
) -> None:
    """One line per trace: id, root operation, services, spans, duration, errors."""
    from ecomctl.errors import ConfigError

    if sort not in ("start", "duration"):
        raise ConfigError(f"--sort {sort!r}: expected start or duration")
    traces = _load(source, service, limit, lookback)
    if sort == "duration":
        traces.sort(key=lambda t: -t.duration_ns)
    rows = [
        {
            "trace_id": t.trace_id,
            "start": datetime.fromtimestamp(t.start_ns / 1e9, tz=UTC).isoformat(),
            "root": {"service": _root_label(t)[0], "name": _root_label(t)[1]},
            "services": list(t.services),
            "spans": len(t.spans),
            "duration_ms": round(t.duration_ns / 1e6, 3),
            "errors": t.error_count,
            "orphans": len(t.orphans),
        }
        for t in traces
    ]
    if json_output:
        print_json(rows)
        return
    if not traces:
        err_console.print("no traces found")
        return
    wide = console.width >= 110  # below that, the start column leaves the others no room
    table = Table(title=f"{len(traces)} trace(s)")
    table.add_column("trace id", no_wrap=True, min_width=32)
    if wide:
        table.add_column("start (UTC)", no_wrap=True)
    table.add_column("root / services", overflow="fold", min_width=12)
    for column in ("spans", "duration", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in traces:
        root_service, root_name = _root_label(t)
        errors = t.error_count
        cells = [t.trace_id, _when(t.start_ns, short=True)] if wide else [t.trace_id]
        services = escape(", ".join(t.services))
        cells += [
            f"{escape(root_service)} {escape(root_name)}\n[dim]{services}[/dim]",
            str(len(t.spans)), _ms(t.duration_ns), f"[red]{errors}[/red]" if errors else "0",
        ]
        table.add_row(*cells)
    console.print(table)


# -- show -------------------------------------------------------------------------------------


def _find_trace(traces: list[Trace], trace_id: str) -> Trace:
    from ecomctl.errors import ConfigError

    wanted = trace_id.lower().removeprefix("0x")
    matches = [t for t in traces if t.trace_id == wanted] or [
        t for t in traces if t.trace_id.startswith(wanted)
    ]
    if not matches:
        raise ConfigError(f"trace {trace_id} not found in the source")
    if len(matches) > 1:
        raise ConfigError(f"trace id prefix {trace_id} matches {len(matches)} traces")
    return matches[0]


def _attribute_text(span: SpanRecord) -> str:
    attrs = span.attributes
    parts = []
    for key in _STATEMENT_ATTRIBUTES:
        if key in attrs:
            statement = " ".join(str(attrs[key]).split())
            parts.append(statement if len(statement) <= 80 else statement[:79] + "…")
            break
    parts.extend(f"{key}={attrs[key]}" for key in _KEY_ATTRIBUTES if key in attrs)
    parts.extend(f"{key}={value}" for key, value in attrs.items() if key.startswith("ecom."))
    return "  ".join(parts)


def _span_label(
    span: SpanRecord, trace: Trace, self_ns: int, on_path: bool, orphan: bool
) -> str:
    offset = span.start_ns - trace.start_ns
    mark = "[bold yellow]*[/bold yellow] " if on_path else "  "
    name = escape(span.name)
    name = f"[bold red]{name}[/bold red]" if span.status == "ERROR" else f"[bold]{name}[/bold]"
    label = (
        f"{mark}[cyan]{escape(span.service)}[/cyan] {name} {_ms(span.duration_ns)} "
        f"[dim](self {_ms(self_ns)}, at +{_ms(offset)})[/dim]"
    )
    if span.kind != "INTERNAL":
        label += f" [dim]{span.kind.lower()}[/dim]"
    if span.status == "ERROR":
        label += f" [red]ERROR {escape(span.status_message)}[/red]"
    if orphan:
        label += f" [yellow](orphan: parent {span.parent_span_id} not in trace)[/yellow]"
    details = _attribute_text(span)
    if details:
        label += f"\n   [dim]{escape(details)}[/dim]"
    return label


@app.command(epilog=examples(
    "ecomctl traces show 4bf92f35",
    "ecomctl traces show 4bf92f35 --from run.otlp.jsonl --json",
))
def show(
    trace_id: str = typer.Argument(..., metavar="TRACE_ID",
                                   help="The trace id (or a unique prefix)."),
    source: str = typer.Option(None, "--from", metavar="SOURCE", help=FROM_HELP),
    service: str = typer.Option(None, "--service", metavar="NAME", help="With a file or "
                                "directory: only look at traces involving this service."),
    lookback: str = _lookback_option(),
    json_output: bool = typer.Option(False, "--json", help="Print the spans as JSON."),
) -> None:
    """Draw one trace as a tree, critical-path spans marked with *.

    Each span: service, name, duration and self time, offset from the trace start, key
    attributes (statement, HTTP route and status, messaging destination, ecom.*); errors in
    red. With jaeger:// the trace is fetched by id (no --service needed).
    """
    from ecomctl.analysis.critical_path import critical_path
    from ecomctl.analysis.model import group_traces
    from ecomctl.analysis.readers import JAEGER_SCHEME, read_jaeger_trace
    from ecomctl.analysis.stats import self_time_ns

    if source and source.startswith(JAEGER_SCHEME):
        traces = group_traces(read_jaeger_trace(source, trace_id.lower().removeprefix("0x")))
    else:
        traces = _load(source, service, 0, lookback)
    trace = _find_trace(traces, trace_id)
    path = critical_path(trace)
    on_path = path.span_ids
    orphan_ids = {s.span_id for s in trace.orphans}
    if json_output:
        print_json(
            {
                "trace_id": trace.trace_id,
                "services": list(trace.services),
                "duration_ms": round(trace.duration_ns / 1e6, 3),
                "spans": [
                    {
                        "span_id": span.span_id,
                        "parent_span_id": span.parent_span_id,
                        "depth": depth,
                        "service": span.service,
                        "name": span.name,
                        "kind": span.kind,
                        "start": datetime.fromtimestamp(
                            span.start_ns / 1e9, tz=UTC).isoformat(),
                        "offset_ms": round((span.start_ns - trace.start_ns) / 1e6, 3),
                        "duration_ms": round(span.duration_ns / 1e6, 3),
                        "self_ms": round(self_time_ns(trace, span) / 1e6, 3),
                        "status": span.status,
                        "status_message": span.status_message,
                        "attributes": span.attributes,
                        "critical_path": span.span_id in on_path,
                        "orphan": span.span_id in orphan_ids,
                    }
                    for span, depth in trace.walk()
                ],
                "critical_path": path.to_dict(),
            }
        )
        return
    tree = Tree(
        f"trace [bold]{trace.trace_id}[/bold]  {len(trace.spans)} spans, "
        f"{len(trace.services)} services, {_ms(trace.duration_ns)}"
        + (f", [red]{trace.error_count} error(s)[/red]" if trace.has_error else "")
    )
    nodes: dict[str, Tree] = {}
    for span, depth in trace.walk():
        parent_node = nodes.get(span.parent_span_id or "") if depth else None
        label = _span_label(span, trace, self_time_ns(trace, span), span.span_id in on_path,
                            span.span_id in orphan_ids)
        nodes[span.span_id] = (parent_node or tree).add(label)
    console.print(tree)
    console.print("[dim][bold yellow]*[/bold yellow] on the critical path[/dim]")


@app.command("open", epilog=examples("ecomctl traces open 4bf92f3577b34da6a3ce929d0e0e4736 "
                                     "--browser"))
def open_trace(
    trace_id: str = typer.Argument(..., metavar="TRACE_ID", help="The trace id (32 hex "
                                   "digits)."),
    browser: bool = typer.Option(False, "--browser", help="Also open it in your browser."),
) -> None:
    """Print the address of a trace in the trace UI (Zipkin: its waterfall, every span's
    attributes); with --browser, open it too.

    The trace UI keeps the newest spans; an older trace is still in the collector's store
    (24 h): [bold]ecomctl traces show TRACE_ID --from jaeger://127.0.0.1:17686[/bold].
    """
    from ecomctl.config import Settings
    from ecomctl.telemetry.links import trace_url

    wanted = trace_id.lower().removeprefix("0x")
    if len(wanted) != 32 or any(c not in "0123456789abcdef" for c in wanted):
        raise typer.BadParameter(f"{trace_id!r} is not a trace id (32 hex digits)")
    show_address(trace_url(Settings.from_env(), wanted), browser)


# -- analyze ----------------------------------------------------------------------------------


@app.command(epilog=examples(
    "ecomctl traces analyze",
    "ecomctl traces analyze --from run.otlp.jsonl --sort p95 --top 5",
    "ecomctl traces analyze --from jaeger://127.0.0.1:17686 --service checkout",
))
def analyze(
    source: str = typer.Option(None, "--from", metavar="SOURCE", help=FROM_HELP),
    service: str = typer.Option(None, "--service", metavar="NAME", help=SERVICE_HELP),
    limit: int = typer.Option(0, "--limit", min=0, metavar="N", help=LIMIT_HELP),
    lookback: str = _lookback_option(),
    top: int = typer.Option(10, "--top", min=1, metavar="N",
                            help="Rows per table, findings per detector."),
    sort: str = typer.Option("self", "--sort", metavar="KEY", help="Operations by self, "
                             "total, p95, count or errors."),
    json_output: bool = typer.Option(False, "--json", help="Print the analysis as JSON "
                                     "(the documented TraceAnalysis.to_dict() shape)."),
) -> None:
    """Latency and self time per operation, the critical path, and anti-pattern findings.

    Detectors: N+1 queries (>= 5 database spans of one statement shape under one parent,
    >= 50 ms together), sequential read calls that could run concurrently, orphan spans,
    error hot spots (>= 5% errors over >= 10 calls).

    Exit 0, 2 on unreadable input, 1 when a jaeger:// source cannot be reached.
    """
    from ecomctl.analysis.report import analyze as run_analysis
    from ecomctl.analysis.stats import sort_operations
    from ecomctl.errors import ConfigError

    if sort not in ("self", "total", "p95", "count", "errors"):
        raise ConfigError(f"--sort {sort!r}: expected self, total, p95, count or errors")
    traces = _load(source, service, limit, lookback)
    result = run_analysis(traces, top=top)
    if json_output:
        print_json(result.to_dict())
        return
    if not traces:
        err_console.print("no traces found")
        return
    result.operations = sort_operations(result.operations, sort)  # type: ignore[arg-type]
    _print_analysis(result, top, sort)


def _operations_table(operations: list[dict[str, Any]], *, stacked: bool) -> Table:
    table = Table(title="operations")
    if not stacked:
        table.add_column("service", overflow="fold")
    table.add_column("operation", overflow="fold")
    for column in ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "total ms",
                   "self ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for op in operations:
        names = ([escape(op["service"]), escape(op["name"])] if not stacked
                 else [f"{escape(op['service'])} {escape(op['name'])}"])
        table.add_row(
            *names, str(op["count"]),
            f"[red]{op['errors']}[/red]" if op["errors"] else "0",
            _num(op["p50_ms"]), _num(op["p95_ms"]), _num(op["p99_ms"]), _num(op["max_ms"]),
            _num(op["total_ms"]), _num(op["self_ms"]),
        )
    return table


def _print_analysis(result: TraceAnalysis, top: int, sort: str = "self") -> None:
    data = result.to_dict()
    counts = data["counts"]
    latency = data["trace_latency"]
    console.print(
        f"[bold]{counts['traces']}[/bold] traces, [bold]{counts['spans']}[/bold] spans, "
        f"{counts['services']} services; trace p50 {latency['p50_ms']} ms, "
        f"p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms; "
        f"{counts['error_spans']} error spans, {counts['orphans']} orphans"
    )
    table = _operations_table(data["operations"][:top], stacked=False)
    if not fits(table):  # a narrow terminal or CI log: "service operation" in one column
        table = _operations_table(data["operations"][:top], stacked=True)
    # Left out first when even that is too wide (never the column the rows are sorted by).
    shown_sort = {"total": "total ms", "self": "self ms", "p95": "p95 ms", "errors": "errors"}
    fit_table(table, names=("service", "operation"), optional=[
        c for c in ("p99 ms", "max ms", "total ms", "errors", "p50 ms")
        if c != shown_sort.get(sort)])
    console.print(table)

    overall = data["critical_path"]["overall"]
    if overall:
        path_table = Table(title="time on the critical path (all traces)")
        for column in ("service", "operation", "ms", "share"):
            path_table.add_column(column, justify="left" if column != "ms" else "right")
        for item in overall:
            path_table.add_row(escape(item["service"]), escape(item["name"]), _num(item["ms"]),
                               f"{item['share']:.0%}")
        fit_table(path_table, names=("service", "operation"))
        console.print(path_table)
    for slow in data["critical_path"]["slowest_traces"][:1]:
        root = slow["root"] or {}
        steps = ", ".join(
            f"{escape(i['service'])} {escape(i['name'])} {i['ms']:.1f} ms"
            for i in slow["by_operation"][:6]
        )
        console.print(
            f"slowest trace [bold]{trace_link(slow['trace_id'])}[/bold] "
            f"({escape(str(root.get('service')))} {escape(str(root.get('name')))}, "
            f"{slow['duration_ms']:.1f} ms): {steps}"
        )

    findings = data["findings"]
    summary = ", ".join(f"{name} {n}" for name, n in data["finding_counts"].items())
    console.print(f"[bold]findings[/bold]: {summary}")
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    for finding in findings:
        colour = colours.get(finding["severity"], "white")
        where = f" trace {trace_link(finding['trace_id'])}" if finding["trace_id"] else ""
        console.print(
            f"  [{colour}]{finding['severity']:>7}[/{colour}] {finding['detector']}{where}: "
            f"{escape(finding['message'])}"
        )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"


# -- diff -------------------------------------------------------------------------------------

DIFF_SIDE_HELP = (
    "A trace capture (an OTLP JSON lines file such as `checkout simulate` writes, or a "
    "directory of them) or a result document (ecomctl.result/v1 from `checkout simulate` "
    "or `load run`), whose trace_file is read."
)
FAIL_ON_HELP = (
    "Exit 3 when an operation's change breaks this rule (repeatable): METRIC OP CHANGE, "
    "several joined by 'and'. Metrics: p50 p90 p95 p99 max mean, self (self time per "
    "call), added (self time added), signal (self time added beyond noise), calls, "
    "error_rate, path (critical-path share), "
    "findings (new findings). CHANGE: relative (+20%) or absolute (+5ms; points for "
    "error_rate and path: +5%). E.g. 'p95>+20% and p95>+5ms', 'self>+10ms', 'findings>0'."
)
_RESULT_SCHEMA_HINT = re.compile(rb'"schema"\s*:\s*"ecomctl\.result/')


def _diff_side(source: str, service: str | None) -> tuple[str, list[Trace]]:
    """(the span source read, its traces) for a capture, a directory or a result document."""
    from ecomctl.analysis.model import group_traces
    from ecomctl.analysis.readers import load_spans
    from ecomctl.errors import ConfigError

    path = Path(source).expanduser()
    if path.is_file() and _looks_like_result(path):
        spans_from = _result_trace_file(path)
        return spans_from, group_traces(load_spans(spans_from, service=service))
    try:
        spans = load_spans(source, service=service)
    except ConfigError as not_spans:
        if not path.is_file():
            raise
        try:  # a result document with its schema further down?
            spans_from = _result_trace_file(path)
        except ConfigError:
            raise not_spans from None
        return spans_from, group_traces(load_spans(spans_from, service=service))
    return source, group_traces(spans)


def _looks_like_result(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return _RESULT_SCHEMA_HINT.search(file.read(4096)) is not None
    except OSError:
        return False


def _result_trace_file(path: Path) -> str:
    from ecomctl.errors import ConfigError
    from ecomctl.gates.evaluate import trace_file_of
    from ecomctl.results import LOAD_RUN, SIMULATION, read_result

    trace_file = trace_file_of(read_result(path, (SIMULATION, LOAD_RUN)), path.parent)
    if trace_file is None:
        raise ConfigError(f"{path}: the result document names no trace_file to compare")
    if not trace_file.exists():
        raise ConfigError(f"{path}: its trace file {trace_file} does not exist")
    return str(trace_file)


@app.command(epilog=examples(
    "ecomctl traces diff baseline.json run.json",
    "ecomctl traces diff base.json run.json --fail-on 'p95>+20% and p95>+5ms'",
))
def diff(
    base: str = typer.Argument(..., metavar="BASE", help="The baseline. " + DIFF_SIDE_HELP),
    current: str = typer.Argument(..., metavar="CUR", help="The run to judge. "
                                  + DIFF_SIDE_HELP),
    service: str = typer.Option(None, "--service", metavar="NAME", help="Only traces in which "
                                "this service has a span, in both runs."),
    sort: str = typer.Option("self", "--sort", metavar="KEY",
                             help="Rows by the largest increase of: self "
                             "(self time added beyond noise), added (self time added), p50, "
                             "p95, p99, calls, path (critical-path share) or errors (error "
                             "rate)."),
    top: int = typer.Option(15, "--top", min=0, metavar="N", help="Rows in the table (0: "
                            "every operation)."),
    fail_on: list[str] = typer.Option(None, "--fail-on", metavar="RULE", help=FAIL_ON_HELP),
    min_count: int = typer.Option(5, "--min-count", min=1, metavar="N", help="--fail-on judges "
                                  "only "
                                  "operations with at least this many calls in each run "
                                  "that has them."),
    json_output: bool = typer.Option(False, "--json", help="Print the comparison as JSON "
                                     "(ecomctl.trace-diff/1)."),
    with_setup: bool = typer.Option(False, "--with-setup", help="Keep the set-up traces "
                                    "(`checkout simulate`'s shopper logins before its "
                                    "measured run), which are left out by default."),
) -> None:
    """Compare two runs operation by operation: calls, p50/p95, self time, critical-path
    share, operations that appeared or vanished, and new detector findings; the operation
    that grew the most comes first.

    The default order is self time added beyond noise. Self time added is (current self
    time per call - the baseline's) x current calls, so a slower statement is charged to its
    own span, not to every span above it; only the part of its shift per call beyond three
    standard errors (from each run's spread) counts, so a few calls that vary a lot do not
    outrank a steady slowdown. The why column says how each row ranks. Set-up traces
    (shopper logins before a simulation's measured run) are left out. Exit 0, 3 when a
    --fail-on rule is broken, 2 on unreadable input or an invalid rule.
    """
    from ecomctl.analysis.diff import SORT_KEYS, diff_traces, parse_fail_rule
    from ecomctl.cli.exit_codes import GateBroken
    from ecomctl.errors import ConfigError

    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort {sort!r}: expected one of {', '.join(SORT_KEYS)}")
    try:
        rules = [parse_fail_rule(text) for text in fail_on or ()]
    except ValueError as exc:
        raise ConfigError(f"--fail-on: {exc}") from None
    base_source, base_traces = _diff_side(base, service)
    current_source, current_traces = _diff_side(current, service)
    gc.freeze()  # the spans live until the command exits
    if not base_traces or not current_traces:
        empty = base_source if not base_traces else current_source
        raise ConfigError(f"{empty}: no traces to compare"
                          + (f" (with --service {service})" if service else ""))
    result = diff_traces(base_traces, current_traces, sort=sort, base_source=base_source,
                         current_source=current_source, include_setup=with_setup)
    result.evaluate(rules, min_count=min_count)
    if json_output:
        print_json(result.to_dict())
    else:
        _print_diff(result, top)
    if not result.passed:
        raise GateBroken()


_DIFF_SORT_TITLE = {"self": "self time added beyond noise", "added": "self time added",
                    "p50": "p50 change", "p95": "p95 change",
                    "p99": "p99 change", "calls": "change in calls",
                    "path": "critical-path share change", "errors": "error rate change"}


def _arrow(before: str, after: str) -> str:
    return after if before == after else f"{before} → {after}"


def _print_diff(result: TraceDiff, top: int) -> None:
    data = result.to_dict()

    def side(which: str) -> str:
        s = data[which]
        return (f"{escape(str(s['source']))} ({s['traces']:,} traces, {s['spans']:,} spans, "
                f"trace p95 {_num(s['trace_latency']['p95_ms'])} ms)")

    console.print(f"baseline {side('base')}\ncurrent  {side('current')}")
    base_setup, current_setup = result.setup_left_out
    if base_setup or current_setup:
        console.print(f"[dim]left out set-up traces (shopper logins before the measured run): "
                      f"{base_setup:,} in the baseline, {current_setup:,} in the current run "
                      "(--with-setup keeps them)[/dim]")
    operations = data["operations"]
    shown = operations if top == 0 else operations[:top]
    table = Table(title=f"operations by {_DIFF_SORT_TITLE[result.sort]}, largest first")
    table.add_column("operation", overflow="fold")
    for column in ("calls", "p50 ms", "p95 ms", "Δp95", "self/call ms", "self added ms",
                   "crit. path"):
        # "12.3 → 45.6" may wrap after the arrow, not between every word.
        table.add_column(column, justify="right", min_width=7)
    table.add_column("why", min_width=20)
    for op in shown:
        b, c = op["base"] or {}, op["current"] or {}
        tag = {"appeared": " [yellow](new)[/yellow]", "vanished": " [dim](gone)[/dim]"}.get(
            op["status"], "")
        rel, p95_change = op["relative"]["p95"], op["change"]["p95_ms"]
        delta = ("0" if not p95_change else f"{p95_change:+,.1f}" if rel is None
                 else f"{p95_change:+,.1f} {rel:+.0%}")
        added = op["change"]["self_added_ms"]
        table.add_row(
            f"{escape(op['service'])} {escape(op['name'])}{tag}",
            _arrow(_count(b.get("count")), _count(c.get("count"))),
            _arrow(_num(b.get("p50_ms")), _num(c.get("p50_ms"))),
            _arrow(_num(b.get("p95_ms")), _num(c.get("p95_ms"))),
            delta,
            _arrow(_num(b.get("self_per_call_ms")), _num(c.get("self_per_call_ms"))),
            f"[red]{added:+,.1f}[/red]" if added > 0 else f"{added:+,.1f}" if added else "0",
            _arrow(_share(b.get("path_share")), _share(c.get("path_share"))),
            escape(op["why"]),
        )
    # Left out first when the table is too wide; the why column stays: it says how each row
    # ranks (the change of the metric sorted by, when that is not self time).
    fit_table(table, names=("operation",),
              optional=("p50 ms", "self/call ms", "crit. path", "Δp95", "p95 ms"))
    console.print(table)
    if len(shown) < len(operations):
        console.print(f"[dim]{len(operations) - len(shown)} more operations (--top 0 lists "
                      "them, --json has them all)[/dim]")
    from ecomctl.analysis.diff import SORT_METRIC, describe_shift

    first = result.operations[0] if result.operations else None
    if first is not None and first.change(SORT_METRIC[result.sort]) > 0:
        p95 = _arrow(_num(first.base.latency.get("p95_ms")) if first.base else "-",
                     _num(first.current.latency.get("p95_ms")) if first.current else "-")
        line = (f"slowest-growing: [bold]{escape(first.service)} {escape(first.name)}[/bold]"
                f" ({first.status}): self time added {first.change('added'):+,.1f} ms "
                f"({escape(describe_shift(first))}), p95 {p95} ms")
        if first.statement:
            statement = first.statement if len(first.statement) <= 100 else (
                first.statement[:99] + "…")
            line += f"; statement: {escape(statement)}"
        console.print(line)
    elif first is not None and result.sort == "self":
        console.print("no operation's self time grew beyond noise (--sort added orders by "
                      "self time added alone)")
    statuses: tuple[tuple[Status, str], ...] = (("appeared", "only in the current run"),
                                                 ("vanished", "only in the baseline"))
    for status, label in statuses:
        names = [f"{d.service} {d.name}" for d in result.with_status(status)]
        if names:
            console.print(f"[yellow]{label}[/yellow] ({len(names)}): {escape(' | '.join(names))}")
    moves = sorted((d for d in result.operations if abs(d.change("path")) >= 0.005),
                   key=lambda d: -abs(d.change("path")))[:3]
    if moves:
        console.print("critical path moved: " + ", ".join(
            f"{escape(d.service)} {escape(d.name)} {d.change('path') * 100:+.1f} points"
            for d in moves))
    findings = data["findings"]
    new, resolved = findings["new"], findings["resolved"]
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    console.print(f"[bold]new findings[/bold]: {len(new)}"
                  + (f" ({len(resolved)} resolved)" if resolved else ""))
    for finding in new[:10]:
        colour = colours.get(finding["severity"], "white")
        times = f" x{finding['occurrences']}" if finding["occurrences"] > 1 else ""
        console.print(f"  [{colour}]{finding['severity']:>7}[/{colour}] {finding['detector']}"
                      f"{times}: {escape(finding['message'])}")
    for outcome in result.outcomes:
        if not outcome.broken:
            console.print(f"[green]✓[/green] --fail-on {escape(outcome.rule.text)}")
            continue
        for breach in outcome.breaches[:_BREACHES_SHOWN]:
            where = f"{breach.service} {breach.name}: " if breach.service is not None else ""
            console.print(f"[red]✗[/red] --fail-on {escape(outcome.rule.text)}: "
                          f"{escape(where + breach.observed)}")
        if len(outcome.breaches) > _BREACHES_SHOWN:
            console.print(f"  [dim]... and {len(outcome.breaches) - _BREACHES_SHOWN} more "
                          "operations (--json lists them all)[/dim]")
    broken = sum(1 for o in result.outcomes if o.broken)
    if broken:
        console.print(f"[bold red]{broken} of {len(result.outcomes)} --fail-on rule(s) "
                      "broken[/bold red]")


_BREACHES_SHOWN = 10  # per rule, in the order of the table


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _share(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"
