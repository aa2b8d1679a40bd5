"""Printing a result in the terminal, by kind: ``checkout simulate``'s and ``load run``'s
reports at the end of a run, ``ecomctl bench``'s table, and ``ecomctl report`` for any."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.tree import Tree

from ecomctl.cli.output import fit_table, fits, ok_mark, trace_link
from ecomctl.cli.render_phases import render_fault_windows
from ecomctl.results import (
    BenchResult,
    LatencyStats,
    LoadRunResult,
    Result,
    SimulationResult,
)

_LAT = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def _sum_ms(value: Any) -> str:
    """A sum of milliseconds: whole ones from 100 ms (a tenth of a ms says nothing there)."""
    return "-" if value is None else _number(float(value))


def _lat(stats: LatencyStats) -> tuple[str, ...]:
    return tuple(_ms(stats.latency.get(k)) for k in _LAT)


def _counts(counts: Mapping[str, int] | None, empty: str = "none") -> str:
    """``{'paid': 99, 'payment_declined': 2}`` as people write it: "99 paid, 2 payment
    declined"."""
    return ", ".join(f"{n:,} {name.replace('_', ' ')}"
                     for name, n in (counts or {}).items()) or empty


def render_result(result: Result, console: Console, *, top: int = 12) -> None:
    """The report of any result kind."""
    if isinstance(result, SimulationResult):
        render_simulation(result, console, top=top)
    elif isinstance(result, LoadRunResult):
        render_load_run(result, console)
    else:
        render_bench(result, console)


# -- checkout simulate ------------------------------------------------------------------------


def render_simulation(result: SimulationResult, console: Console, *, top: int = 12) -> None:
    totals, config = result.totals, result.config
    faults = ", ".join(config.faults or []) or "none"
    console.print(Panel(
        f"{totals.journeys:,} journeys in {result.duration_s:.1f}s "
        f"({totals.throughput_per_s}/s) by {config.shoppers} shoppers via {config.via}"
        f"; errors {totals.errors:,} ({totals.error_rate:.1%}); checkouts "
        f"{_counts(totals.checkouts)} ({totals.checkouts_per_s or 0} paid/s)\n"
        f"faults: {faults}; latency from {config.latency_origin}",
        title=f"{result.kind} ({result.started_at})",
    ))
    _tracing(result, console)
    console.print(_journeys(result.journeys, console))
    if result.errors:
        console.print(_simple("errors by cause", ("cause", "count"),
                              [(k, f"{v:,}") for k, v in result.errors.items()],
                              console, names=("cause",)))
    console.print(_spans(result, top, console))
    console.print(_cache(result, console))
    console.print(_kafka(result, console))
    if result.fault_events:
        console.print(_fault_events(result.fault_events, console))
    render_fault_windows(result, console)
    db = (result.db or {}).get("queries_per_checkout", {})
    if db.get("checkouts"):
        console.print(f"SQL statements per checkout: mean {db['mean']}, p50 {db['p50']}, "
                      f"p95 {db['p95']}, max {db['max']} (over {db['checkouts']} checkouts)")
    _findings(result, console)
    slowest = result.slowest_trace or {}
    if slowest.get("spans"):
        console.print(Panel(span_tree(slowest["spans"]),
                            title=f"slowest trace: journey {slowest['journey']} "
                                  f"{trace_link(slowest['trace_id'])} "
                                  f"({_ms(slowest['duration_ms'])} ms)"))
    console.print(_invariants(result))


def _tracing(result: SimulationResult, console: Console) -> None:
    """Which sampler ran and what it kept: span tables and trace findings cover only that."""
    tracing = result.tracing
    if not tracing:
        return
    if tracing["spans"]:
        journeys = tracing.get("journeys_sampled")
        of_journeys = f" ({journeys:,} of the journeys)" if journeys is not None else ""
        console.print(f"tracing: sampler {tracing['sampler']}; {tracing['traces']:,} traces"
                      f"{of_journeys}, {tracing['spans']:,} spans captured")
    else:
        console.print(f"[yellow]tracing: sampler {tracing['sampler']} sampled no spans[/]: "
                      "no span statistics or trace findings; journey latency, cache and "
                      "Kafka figures do not depend on spans")


def _simple(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
            console: Console, *, names: Sequence[str] = (), optional: Sequence[str] = (),
            text: Sequence[str] = ()) -> Table:
    """A table whose first column (and the ``text`` ones) is text, the others numbers,
    fitted to ``console``: the ``names`` columns are never cut or folded while the
    ``optional`` ones can be left out instead (``fit_table``), and numbers stay whole."""
    table = Table(title=title)
    for column in columns:
        textual = column == columns[0] or column in text
        table.add_column(column, justify="left" if textual else "right",
                         no_wrap=not textual)
    for row in rows:
        table.add_row(*row)
    fit(table, console, names=names, optional=optional)
    return table


def fit(table: Table, console: Console, *, names: Sequence[str],
        optional: Sequence[str] = ()) -> None:
    """``fit_table`` with the names kept whole: their columns are as wide as their widest
    name, down to a few characters only when every optional column is gone already."""
    widest = max((Measurement.get(console, console.options, cell).maximum
                  for column in table.columns if str(column.header) in names
                  for cell in column.cells), default=0)
    fit_table(table, console, names=names, optional=optional, name_width=max(widest, 8))


def _journeys(journeys: Mapping[str, LatencyStats], console: Console) -> Table:
    rows = [(name, f"{j.count:,}", f"{j.errors:,}", *_lat(j)) for name, j in journeys.items()]
    return _simple("latency per journey (ms, HdrHistogram)",
                   ("journey", "count", "errors", "p50", "p95", "p99", "max"), rows, console,
                   names=("journey",), optional=("p50", "max"))


def _spans(result: SimulationResult, top: int, console: Console) -> Table:
    ops = sorted(result.spans or [], key=lambda o: -(o.total_ms or 0.0))[:top]
    figures = [(f"{o.count:,}", _ms(o.latency.p50_ms), _ms(o.latency.p95_ms),
                _ms(o.latency.p99_ms), _sum_ms(o.total_ms), _sum_ms(o.self_ms)) for o in ops]
    return operations_table(
        f"top {top} operations by total time (ms)", [(o.service, o.name) for o in ops],
        ("count", "p50", "p95", "p99", "total", "self"), figures, console,
        optional=("p99", "p50"))


def operations_table(title: str, operations: Sequence[tuple[str, str]],
                     columns: Sequence[str], figures: Sequence[Sequence[str]],
                     console: Console, *, optional: Sequence[str] = ()) -> Table:
    """One row per operation, its service and name on that row: in two columns where they
    fit, else as "service name" in one; the ``optional`` figures are left out before a
    name would be folded."""
    def build(stacked: bool) -> Table:
        table = Table(title=title)
        for name in ("operation",) if stacked else ("service", "operation"):
            table.add_column(name)
        for column in columns:
            table.add_column(column, justify="right", no_wrap=True)
        for (service, name), row in zip(operations, figures, strict=True):
            names = [f"{escape(service)} {escape(name)}"] if stacked else [
                escape(service), escape(name)]
            table.add_row(*names, *row)
        return table

    table = build(stacked=False)
    if not fits(table, console):
        table = build(stacked=True)
    fit(table, console, names=("service", "operation"), optional=optional)
    return table


def _cache(result: SimulationResult, console: Console) -> Table:
    rows = []
    for service, c in (result.cache or {}).items():
        levels = "  ".join(
            f"{level} {cell['hits']:,}/{cell['hits'] + cell['misses']:,}"
            f" ({(cell['hit_ratio'] or 0):.0%})" for level, cell in c["levels"].items()
        )
        ratio = "-" if c["hit_ratio"] is None else f"{c['hit_ratio']:.1%}"
        rows.append((service, f"{c['requests']:,}", ratio, levels))
    return _simple("cache hit rate", ("service", "requests", "hit rate", "hits/lookups per level"),
                   rows, console, names=("service",), text=("hits/lookups per level",))


def _kafka(result: SimulationResult, console: Console) -> Table:
    rows = []
    kafka = result.kafka or {}
    for name, c in kafka.get("consumers", {}).items():
        lag = c.get("lag") or {}
        rows.append((name, f"{c.get('processed') or 0:,}", f"{c.get('duplicates') or 0:,}",
                     f"{c.get('failed') or 0:,}", f"{c.get('dead_lettered') or 0:,}",
                     *(_ms(lag.get(k)) for k in _LAT)))
    drain = kafka.get("drain_s")
    caught_up = f"; caught up {drain:.1f}s after the run" if drain is not None else ""
    delivery = kafka.get("delivery")
    if delivery:
        caught_up += (f"; {delivery['produced']:,} events produced, lost "
                      f"{sum(delivery['lost'].values())}")
    return _simple(f"Kafka consumers: event lag, commit to processed (ms){caught_up}",
                   ("consumer", "processed", "dupes", "failed", "dlq", "p50", "p95", "p99", "max"),
                   rows, console, names=("consumer",), optional=("p50", "max"))


def _fault_events(events: Sequence[dict[str, Any]], console: Console) -> Table:
    """What the chaos fault did: each outage, how long it lasted, when the shop was back."""
    return _simple("outages (fault chaos)", ("backend", "action", "down s", "recovered s"), [
        (e["backend"], e["action"], str(e.get("down_s", "-")), str(e["recovered_s"]))
        for e in events
    ], console, names=("backend",), text=("action",))


def _findings(result: SimulationResult, console: Console, shown: int = 8) -> None:
    analysis = result.trace_analysis or {}
    findings = analysis.get("findings", [])
    if not findings:
        console.print("trace detectors: nothing found")
        return
    counts = ", ".join(f"{k} {v}" for k, v in analysis.get("finding_counts", {}).items() if v)
    table = Table(title=f"trace detectors ({counts}; top {min(shown, len(findings))} shown)")
    for column in ("detector", "severity", "message"):
        table.add_column(column)
    for f in findings[:shown]:
        table.add_row(str(f.get("detector")), str(f.get("severity")), str(f.get("message")))
    console.print(table)


def _invariants(result: SimulationResult) -> Panel:
    lines = [
        f"[{'green' if i.ok else 'bold red'}]{'OK ' if i.ok else 'BROKEN'}[/] "
        f"{i.name}: {i.detail}"
        for i in result.invariants
    ]
    return Panel(Group(*lines), title="business invariants",
                 border_style="green" if result.ok else "bold red")


def span_tree(spans: list[dict[str, Any]], max_nodes: int = 80) -> Tree:
    """A span list as a tree: service, name, duration, key attributes, errors in red; at
    most ``max_nodes`` spans (depth first), then a count of what was left out."""
    by_id = {s["span_id"]: s for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s["start_ns"]):
        parent = s["parent_span_id"] if s["parent_span_id"] in by_id else None
        children.setdefault(parent, []).append(s)
    roots = children.get(None, [])
    origin = min((s["start_ns"] for s in spans), default=0)
    tree = Tree(f"{len(spans)} spans")
    shown = 0

    def add(node: Tree, span: dict[str, Any]) -> None:
        nonlocal shown
        if shown >= max_nodes:
            return
        shown += 1
        duration = (span["end_ns"] - span["start_ns"]) / 1e6
        offset = (span["start_ns"] - origin) / 1e6
        style = "red" if span["status"] == "ERROR" else ""
        label = (f"[{style}]{span['service']}[/] [bold]{span['name']}[/] "
                 f"{duration:,.2f} ms [dim]@{offset:,.1f}[/]") if style else (
            f"[cyan]{span['service']}[/] [bold]{span['name']}[/] {duration:,.2f} ms "
            f"[dim]@{offset:,.1f}[/]")
        detail = _key_attribute(span["attributes"])
        child = node.add(f"{label} [dim]{detail}[/]" if detail else label)
        for grandchild in children.get(span["span_id"], []):
            add(child, grandchild)

    for root in roots:
        add(tree, root)
    if shown < len(spans):
        tree.add(f"[dim]… {len(spans) - shown} more spans (ecomctl traces show)[/]")
    return tree


def _key_attribute(attrs: dict[str, Any]) -> str:
    for key in ("db.statement", "db.query.text", "http.route", "url.full", "http.url",
                "messaging.destination.name", "ecom.cache.level", "ecom.journey.error"):
        if key in attrs:
            text = str(attrs[key]).replace("\n", " ")
            return f"{key}={text[:80]}"
    return ""


# -- load run ---------------------------------------------------------------------------------


def render_load_run(result: LoadRunResult, console: Console, *, top: int = 10) -> None:
    totals, config = result.totals, result.config
    console.print(
        f"[bold]{result.kind}[/bold] {config.profile or config.locustfile}: "
        f"{totals.requests:,} requests in {result.duration_s:.1f}s "
        f"({totals.rps:,}/s), {totals.failures:,} failed ({totals.error_rate:.2%}); "
        f"{config.users} users, {config.workers or 'no'} workers"
        + (f" (remote, master {config.master})" if config.master else "")
        + f", {config.host}"
    )
    console.print(f"latency from {result.latency_origin or config.latency_origin or '?'}")
    console.print(_simple(
        "endpoints (HdrHistogram, merged across Locust processes)",
        ("endpoint", "count", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", "max ms"),
        [(escape(name), f"{e.count:,}", f"{e.errors:,}", f"{e.rps or 0:,}", *_lat(e))
         for name, e in result.endpoints.items()],
        console, names=("endpoint",), optional=("p50 ms", "max ms", "rps")))
    if result.journeys:
        console.print(_simple(
            "journeys", ("journey", "count", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms"),
            [(name, f"{j.count:,}", f"{j.errors:,}", *_lat(j))
             for name, j in result.journeys.items()],
            console, names=("journey",), optional=("p50 ms", "max ms")))
    for kind, counts in (result.outcomes or {}).items():
        console.print(f"{kind} outcomes: {_counts(dict(sorted(counts.items())))}")
    if result.errors:
        console.print("failed requests by cause: "
                      + ", ".join(f"{k} {v:,}" for k, v in result.errors.items()))
    render_fault_windows(result, console)
    _load_server_side(result, console, top)


def _load_server_side(result: LoadRunResult, console: Console, top: int) -> None:
    if result.spans is None:
        return
    ops = result.spans[:top]
    console.print(operations_table(
        f"server side: top {top} operations by self time", [(o.service, o.name) for o in ops],
        ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "self ms"),
        [(f"{o.count:,}", f"{o.errors:,}", _ms(o.latency.p50_ms), _ms(o.latency.p95_ms),
          _ms(o.latency.p99_ms), _sum_ms(o.self_ms)) for o in ops],
        console, optional=("p99 ms", "p50 ms")))
    if result.network_queueing:
        console.print(_network_queueing(result.network_queueing, console))
    context = result.trace_context or {}
    console.print(f"gateway server spans: {context.get('server_spans', 0):,}, continuing a "
                  f"load request's traceparent: {context.get('remote_parent', 0):,}")
    for service, c in (result.cache or {}).items():
        console.print(f"cache {service}: hit ratio {c['hit_ratio']:.1%} over "
                      f"{c['requests']:,} lookups (served by {_counts(c['served_by'])})")
    console.print(f"spans captured in {result.trace_file}")
    if result.drained is False:
        console.print("[yellow]the outbox or the consumers did not drain in time: invariants "
                      "may report work still in flight[/yellow]")
    for inv in result.invariants or []:
        mark = "[green]ok[/green]" if inv.ok else "[red]BROKEN[/red]"
        console.print(f"invariant {inv.name}: {mark} ({inv.detail})")


def _network_queueing(table: Mapping[str, Any], console: Console) -> Table:
    """Per endpoint: the client's and the server's latency of the same requests."""
    rows = [
        (escape(name), f"{row.get('count') or 0:,}",
         *(_ms(row.get(f"{side}_{q}_ms")) for side in ("client", "server", "network_queueing")
           for q in ("p50", "p95")))
        for name, row in table.items() if isinstance(row, Mapping)
    ]
    return _simple("client vs server latency per endpoint (ms): the difference is network "
                   "and queueing", ("endpoint", "matched", "client p50", "client p95",
                                    "server p50", "server p95", "net+queue p50",
                                    "net+queue p95"), rows, console, names=("endpoint",),
                   optional=("server p50", "client p50", "net+queue p50"))


# -- bench ------------------------------------------------------------------------------------


def render_bench(result: BenchResult, console: Console) -> None:
    machine = result.machine
    table = Table(title=f"ecomctl bench ({'quick' if result.quick else 'full'}, "
                        f"{machine.cores} cores, {machine.event_loop or 'asyncio'} "
                        f"loop, {machine.http_parser or 'h11'}, "
                        f"{result.duration_s:.0f}s)")
    for column in ("row", "floor", "ecomctl", "ratio", "target", "ok"):
        # A long word in a description (an address, a variable) folds, never cut with "…".
        table.add_column(column, justify="right" if column in ("ratio", "target") else "left",
                         overflow="fold")
    for row in result.rows:
        floor, own = row.floor, row.ecomctl
        table.add_row(
            f"{row.name}\n[dim]{row.what}[/dim]",
            f"{_number(floor.value)} {floor.unit}\n[dim]{floor.what}[/dim]",
            f"{_number(own.value)} {own.unit}\n[dim]{own.what}[/dim]",
            f"{row.ratio:.2f}x", f">= {row.target:g}x", ok_mark(row.passed),
        )
    console.print(table)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
