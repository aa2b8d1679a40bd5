"""``ecomctl traces``: list, draw and analyse traces from ecomctl's trace store, OTLP JSON
files from any OpenTelemetry SDK or Collector, or a Jaeger query API."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ecomctl.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from ecomctl.analysis.model import SpanRecord, Trace
    from ecomctl.analysis.report import TraceAnalysis

app = typer.Typer(
    help=(
        "Read and analyse traces: ecomctl's own trace store (the default), an OTLP JSON "
        "file or directory from any OpenTelemetry SDK or Collector, or Jaeger's query API "
        "([bold]--from jaeger://HOST:PORT --service NAME[/bold])."
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
LOOKBACK_HELP = "For jaeger://: how far back to search (30m, 1h, 2d...)."

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


@app.command("list")
def list_traces(
    source: str = typer.Option(None, "--from", help=FROM_HELP),
    service: str = typer.Option(None, "--service", help=SERVICE_HELP),
    limit: int = typer.Option(0, "--limit", min=0, help=LIMIT_HELP),
    lookback: str = typer.Option("1h", "--lookback", help=LOOKBACK_HELP),
    sort: str = typer.Option("start", "--sort", help="start (oldest first) or duration "
                             "(slowest first)."),
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


@app.command()
def show(
    trace_id: str = typer.Argument(..., help="The trace id (or a unique prefix)."),
    source: str = typer.Option(None, "--from", help=FROM_HELP),
    service: str = typer.Option(None, "--service", help="With a file or directory: only "
                                "look at traces involving this service."),
    lookback: str = typer.Option("1h", "--lookback", help=LOOKBACK_HELP),
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


# -- analyze ----------------------------------------------------------------------------------


@app.command()
def analyze(
    source: str = typer.Option(None, "--from", help=FROM_HELP),
    service: str = typer.Option(None, "--service", help=SERVICE_HELP),
    limit: int = typer.Option(0, "--limit", min=0, help=LIMIT_HELP),
    lookback: str = typer.Option("1h", "--lookback", help=LOOKBACK_HELP),
    top: int = typer.Option(10, "--top", min=1, help="Rows per table, findings per detector."),
    sort: str = typer.Option("self", "--sort", help="Operations by self, total, p95, count "
                             "or errors."),
    json_output: bool = typer.Option(False, "--json", help="Print the analysis as JSON "
                                     "(the documented TraceAnalysis.to_dict() shape)."),
) -> None:
    """Latency and self time per operation, the critical path, and anti-pattern findings.

    Detectors: N+1 queries (>= 5 database spans of one statement shape under one parent,
    >= 50 ms together), sequential read calls that could run concurrently, orphan spans,
    error hot spots (>= 5% errors over >= 10 calls). Exit 0, 2 on unreadable input, 1 when
    a jaeger:// source cannot be reached.
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
    _print_analysis(result, top)


def _print_analysis(result: TraceAnalysis, top: int) -> None:
    data = result.to_dict()
    counts = data["counts"]
    latency = data["trace_latency"]
    console.print(
        f"[bold]{counts['traces']}[/bold] traces, [bold]{counts['spans']}[/bold] spans, "
        f"{counts['services']} services; trace p50 {latency['p50_ms']} ms, "
        f"p95 {latency['p95_ms']} ms, p99 {latency['p99_ms']} ms; "
        f"{counts['error_spans']} error spans, {counts['orphans']} orphans"
    )
    table = Table(title="operations")
    table.add_column("service", overflow="fold")
    table.add_column("operation", overflow="fold")
    for column in ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms", "total ms",
                   "self ms"):
        table.add_column(column, justify="right", no_wrap=True)
    for op in data["operations"][:top]:
        table.add_row(
            escape(op["service"]), escape(op["name"]), str(op["count"]),
            f"[red]{op['errors']}[/red]" if op["errors"] else "0",
            _num(op["p50_ms"]), _num(op["p95_ms"]), _num(op["p99_ms"]), _num(op["max_ms"]),
            _num(op["total_ms"]), _num(op["self_ms"]),
        )
    console.print(table)

    overall = data["critical_path"]["overall"]
    if overall:
        path_table = Table(title="time on the critical path (all traces)")
        for column in ("service", "operation", "ms", "share"):
            path_table.add_column(column, justify="left" if column != "ms" else "right")
        for item in overall:
            path_table.add_row(escape(item["service"]), escape(item["name"]), _num(item["ms"]),
                               f"{item['share']:.0%}")
        console.print(path_table)
    for slow in data["critical_path"]["slowest_traces"][:1]:
        root = slow["root"] or {}
        steps = ", ".join(
            f"{escape(i['service'])} {escape(i['name'])} {i['ms']:.1f} ms"
            for i in slow["by_operation"][:6]
        )
        console.print(
            f"slowest trace [bold]{slow['trace_id']}[/bold] "
            f"({escape(str(root.get('service')))} {escape(str(root.get('name')))}, "
            f"{slow['duration_ms']:.1f} ms): {steps}"
        )

    findings = data["findings"]
    summary = ", ".join(f"{name} {n}" for name, n in data["finding_counts"].items())
    console.print(f"[bold]findings[/bold]: {summary}")
    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    for finding in findings:
        colour = colours.get(finding["severity"], "white")
        where = f" trace {finding['trace_id']}" if finding["trace_id"] else ""
        console.print(
            f"  [{colour}]{finding['severity']:>7}[/{colour}] {finding['detector']}{where}: "
            f"{escape(finding['message'])}"
        )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f}"
