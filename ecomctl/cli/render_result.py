"""Printing a result in the terminal, by kind: ``checkout simulate``'s and ``load run``'s
reports at the end of a run, ``ecomctl bench``'s table, and ``ecomctl report`` for any."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.tree import Tree

from ecomctl.cli.output import ok_mark, trace_link
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


def _lat(stats: LatencyStats) -> tuple[str, ...]:
    return tuple(_ms(stats.latency.get(k)) for k in _LAT)


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
        f"{totals.checkouts or {}} ({totals.checkouts_per_s or 0} paid/s)\n"
        f"faults: {faults}; latency from {config.latency_origin}",
        title=f"{result.kind} ({result.started_at})",
    ))
    _tracing(result, console)
    console.print(_journeys(result.journeys))
    if result.errors:
        console.print(_simple("errors by cause", ("cause", "count"),
                              [(k, f"{v:,}") for k, v in result.errors.items()]))
    console.print(_spans(result, top))
    console.print(_cache(result))
    console.print(_kafka(result))
    if result.fault_events:
        console.print(_fault_events(result.fault_events))
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


def _simple(title: str, columns: tuple[str, ...], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _journeys(journeys: Mapping[str, LatencyStats]) -> Table:
    rows = [(name, f"{j.count:,}", f"{j.errors:,}", *_lat(j)) for name, j in journeys.items()]
    return _simple("latency per journey (ms, HdrHistogram)",
                   ("journey", "count", "errors", "p50", "p95", "p99", "max"), rows)


def _spans(result: SimulationResult, top: int) -> Table:
    ops = sorted(result.spans or [], key=lambda o: -(o.total_ms or 0.0))[:top]
    rows = [
        (f"{o.service} {o.name}", f"{o.count:,}", _ms(o.latency.p50_ms), _ms(o.latency.p95_ms),
         _ms(o.latency.p99_ms), _ms(o.total_ms), _ms(o.self_ms))
        for o in ops
    ]
    return _simple(f"top {top} operations by total time (ms)",
                   ("operation", "count", "p50", "p95", "p99", "total", "self"), rows)


def _cache(result: SimulationResult) -> Table:
    rows = []
    for service, c in (result.cache or {}).items():
        levels = "  ".join(
            f"{level} {cell['hits']:,}/{cell['hits'] + cell['misses']:,}"
            f" ({(cell['hit_ratio'] or 0):.0%})" for level, cell in c["levels"].items()
        )
        ratio = "-" if c["hit_ratio"] is None else f"{c['hit_ratio']:.1%}"
        rows.append((service, f"{c['requests']:,}", ratio, levels))
    return _simple("cache hit rate", ("service", "requests", "hit rate", "hits/lookups per level"),
                   rows)


def _kafka(result: SimulationResult) -> Table:
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
                   rows)


def _fault_events(events: Sequence[dict[str, Any]]) -> Table:
    """What the chaos fault did: each outage, how long it lasted, when the shop was back."""
    return _simple("outages (fault chaos)", ("backend", "action", "down s", "recovered s"), [
        (e["backend"], e["action"], str(e.get("down_s", "-")), str(e["recovered_s"]))
        for e in events
    ])


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
    table = Table(title="endpoints (HdrHistogram, merged across Locust processes)")
    table.add_column("endpoint", no_wrap=True)
    for column in ("count", "errors", "rps", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    for name, e in result.endpoints.items():
        table.add_row(name, f"{e.count:,}", f"{e.errors:,}", f"{e.rps or 0:,}", *_lat(e))
    console.print(table)
    if result.journeys:
        journeys = Table(title="journeys")
        for column in ("journey", "count", "failed", "p50 ms", "p95 ms", "p99 ms", "max ms"):
            journeys.add_column(column, justify="left" if column == "journey" else "right")
        for name, j in result.journeys.items():
            journeys.add_row(name, f"{j.count:,}", f"{j.errors:,}", *_lat(j))
        console.print(journeys)
    for kind, counts in (result.outcomes or {}).items():
        console.print(f"{kind} outcomes: "
                      + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    if result.errors:
        console.print("failed requests by cause: "
                      + ", ".join(f"{k} {v:,}" for k, v in result.errors.items()))
    render_fault_windows(result, console)
    _load_server_side(result, console, top)


def _load_server_side(result: LoadRunResult, console: Console, top: int) -> None:
    if result.spans is None:
        return
    spans = Table(title=f"server side: top {top} operations by self time")
    spans.add_column("service")
    spans.add_column("operation", overflow="fold")
    for column in ("count", "errors", "p50 ms", "p95 ms", "p99 ms", "self ms"):
        spans.add_column(column, justify="right")
    for op in result.spans[:top]:
        spans.add_row(op.service, op.name, f"{op.count:,}", f"{op.errors:,}",
                      _ms(op.latency.p50_ms), _ms(op.latency.p95_ms), _ms(op.latency.p99_ms),
                      _ms(op.self_ms))
    console.print(spans)
    if result.network_queueing:
        console.print(_network_queueing(result.network_queueing))
    context = result.trace_context or {}
    console.print(f"gateway server spans: {context.get('server_spans', 0):,}, continuing a "
                  f"load request's traceparent: {context.get('remote_parent', 0):,}")
    for service, c in (result.cache or {}).items():
        console.print(f"cache {service}: hit ratio {c['hit_ratio']:.1%} over "
                      f"{c['requests']:,} lookups ({c['served_by']})")
    console.print(f"spans captured in {result.trace_file}")
    if result.drained is False:
        console.print("[yellow]the outbox or the consumers did not drain in time: invariants "
                      "may report work still in flight[/yellow]")
    for inv in result.invariants or []:
        mark = "[green]ok[/green]" if inv.ok else "[red]BROKEN[/red]"
        console.print(f"invariant {inv.name}: {mark} ({inv.detail})")


def _network_queueing(table: Mapping[str, Any]) -> Table:
    """Per endpoint: the client's and the server's latency of the same requests."""
    rows = [
        (name, f"{row.get('count') or 0:,}",
         *(_ms(row.get(f"{side}_{q}_ms")) for side in ("client", "server", "network_queueing")
           for q in ("p50", "p95")))
        for name, row in table.items() if isinstance(row, Mapping)
    ]
    return _simple("client vs server latency per endpoint (ms): the difference is network "
                   "and queueing", ("endpoint", "matched", "client p50", "client p95",
                                    "server p50", "server p95", "net+queue p50",
                                    "net+queue p95"), rows)


# -- bench ------------------------------------------------------------------------------------


def render_bench(result: BenchResult, console: Console) -> None:
    machine = result.machine
    table = Table(title=f"ecomctl bench ({'quick' if result.quick else 'full'}, "
                        f"{machine.cores} cores, {machine.event_loop or 'asyncio'} "
                        f"loop, {machine.http_parser or 'h11'}, "
                        f"{result.duration_s:.0f}s)")
    for column in ("row", "floor", "ecomctl", "ratio", "target", "ok"):
        table.add_column(column, justify="right" if column in ("ratio", "target") else "left")
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
