"""Printing a result document (``checkout simulate``'s end, ``ecomctl report``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.tree import Tree

_LAT = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def render_result(result: dict[str, Any], console: Console, *, top: int = 12) -> None:
    totals, config = result["totals"], result["config"]
    faults = ", ".join(config.get("faults") or []) or "none"
    console.print(Panel(
        f"{totals['journeys']:,} journeys in {result['duration_s']:.1f}s "
        f"({totals['throughput_per_s']}/s) by {config['shoppers']} shoppers via {config['via']}"
        f"; errors {totals['errors']:,} ({totals['error_rate']:.1%}); checkouts "
        f"{totals.get('checkouts', {})} ({totals.get('checkouts_per_s', 0)} paid/s)\n"
        f"faults: {faults}; latency from {config['latency_origin']}",
        title=f"{result['kind']} ({result['started_at']})",
    ))
    _tracing(result, console)
    console.print(_journeys(result))
    if result.get("errors"):
        console.print(_simple("errors by cause", ("cause", "count"),
                              [(k, f"{v:,}") for k, v in result["errors"].items()]))
    console.print(_spans(result, top))
    console.print(_cache(result))
    console.print(_kafka(result))
    if result.get("fault_events"):
        console.print(_fault_events(result["fault_events"]))
    db = result.get("db", {}).get("queries_per_checkout", {})
    if db.get("checkouts"):
        console.print(f"SQL statements per checkout: mean {db['mean']}, p50 {db['p50']}, "
                      f"p95 {db['p95']}, max {db['max']} (over {db['checkouts']} checkouts)")
    _findings(result, console)
    slowest = result.get("slowest_trace") or {}
    if slowest.get("spans"):
        console.print(Panel(span_tree(slowest["spans"]),
                            title=f"slowest trace: journey {slowest['journey']} "
                                  f"{slowest['trace_id']} ({_ms(slowest['duration_ms'])} ms)"))
    console.print(_invariants(result))


def _tracing(result: dict[str, Any], console: Console) -> None:
    """Which sampler ran and what it kept: span tables and trace findings cover only that."""
    tracing = result.get("tracing")
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


def _journeys(result: dict[str, Any]) -> Table:
    rows = [
        (name, f"{j['count']:,}", f"{j['errors']:,}", *(_ms(j.get(k)) for k in _LAT))
        for name, j in result["journeys"].items()
    ]
    return _simple("latency per journey (ms, HdrHistogram)",
                   ("journey", "count", "errors", "p50", "p95", "p99", "max"), rows)


def _spans(result: dict[str, Any], top: int) -> Table:
    ops = sorted(result.get("spans", []), key=lambda o: -float(o.get("total_ms", 0)))[:top]
    rows = [
        (f"{o['service']} {o['name']}", f"{o['count']:,}", _ms(o.get("p50_ms")),
         _ms(o.get("p95_ms")), _ms(o.get("p99_ms")), _ms(o.get("total_ms")),
         _ms(o.get("self_ms")))
        for o in ops
    ]
    return _simple(f"top {top} operations by total time (ms)",
                   ("operation", "count", "p50", "p95", "p99", "total", "self"), rows)


def _cache(result: dict[str, Any]) -> Table:
    rows = []
    for service, c in result.get("cache", {}).items():
        levels = "  ".join(
            f"{level} {cell['hits']:,}/{cell['hits'] + cell['misses']:,}"
            f" ({(cell['hit_ratio'] or 0):.0%})" for level, cell in c["levels"].items()
        )
        ratio = "-" if c["hit_ratio"] is None else f"{c['hit_ratio']:.1%}"
        rows.append((service, f"{c['requests']:,}", ratio, levels))
    return _simple("cache hit rate", ("service", "requests", "hit rate", "hits/lookups per level"),
                   rows)


def _kafka(result: dict[str, Any]) -> Table:
    rows = []
    for name, c in result.get("kafka", {}).get("consumers", {}).items():
        lag = c.get("lag") or {}
        rows.append((name, f"{c.get('processed') or 0:,}", f"{c.get('duplicates') or 0:,}",
                     f"{c.get('failed') or 0:,}", f"{c.get('dead_lettered') or 0:,}",
                     *(_ms(lag.get(k)) for k in _LAT)))
    drain = result.get("kafka", {}).get("drain_s")
    caught_up = f"; caught up {drain:.1f}s after the run" if drain is not None else ""
    delivery = result.get("kafka", {}).get("delivery")
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


def _findings(result: dict[str, Any], console: Console, shown: int = 8) -> None:
    analysis = result.get("trace_analysis", {})
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


def _invariants(result: dict[str, Any]) -> Panel:
    lines = [
        f"[{'green' if i['ok'] else 'bold red'}]{'OK ' if i['ok'] else 'BROKEN'}[/] "
        f"{i['name']}: {i['detail']}"
        for i in result["invariants"]
    ]
    ok = result.get("ok", False)
    return Panel(Group(*lines), title="business invariants",
                 border_style="green" if ok else "bold red")


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
