"""A result as one self-contained HTML page: inline CSS, inline SVG charts, nothing fetched
but the one question whether the trace UI answers (``reports.trace_links``: percentiles link
to their traces there, else to the page's own waterfalls), so it can be attached to a CI run
and opened anywhere.

One page skeleton (header, nav, sections, footer) for every kind of result, and sections per
kind: a simulation, a load run (endpoints, server side), a bench (ratios against floors).
Every string from the result is user data (span names, attributes, error causes) and is
escaped. The typed record (``ecomctl.results``) has validated the fields the page relies on;
the sub-documents kept as plain JSON (cache, Kafka, trace analysis...) are read
defensively, so every section tolerates missing or empty input.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from ecomctl.histogram import LatencyHistogram
from ecomctl.reports import trace_links
from ecomctl.reports.svg import (
    ERROR_COLOR,
    PALETTE,
    Axis,
    Band,
    LinearScale,
    LogScale,
    RatioBar,
    Series,
    WaterfallRow,
    column_chart,
    format_ms,
    format_number,
    line_chart,
    ratio_bars,
    waterfall,
)
from ecomctl.reports.trace_links import TraceLinks
from ecomctl.results import (
    BenchResult,
    Envelope,
    Invariant,
    LatencyStats,
    LatencySummary,
    LoadRunResult,
    Operation,
    Result,
    SimulationResult,
    TimelinePoint,
    parse_result,
)
from ecomctl.results.common import PHASES, Exemplars, PhaseFigures

MAX_NINES = 4.0  # the percentile axis ends at 99.99%
TOP_OPERATIONS = 25
MAX_WATERFALL_SPANS = 400
MAX_COLUMNS = 300  # longer timelines are binned, so columns stay visible
_ATTRIBUTES_IN_TOOLTIP = 12


def write_html_report(result: Result | Mapping[str, Any], path: Path,
                      links: TraceLinks | None = None) -> None:
    """Write the page for ``result`` to ``path`` atomically (a temporary file in the same
    directory, then a rename), so a reader never sees half a page. ``links``: where its
    percentiles link to (see ``render_html_report``)."""
    page = render_html_report(result, links)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same filesystem, so the rename is atomic); opened
    # normally rather than with mkstemp, so the page gets the umask's mode, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as out:
            out.write(page)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def render_html_report(result: Result | Mapping[str, Any],
                       links: TraceLinks | None = None) -> str:
    """The whole page as a string (a plain document is read, and validated, first). With
    ``links``, percentiles link to the traces behind them (exemplars), and the traces in
    ``links.traces`` are drawn in the page."""
    typed = result if isinstance(result, Envelope) else parse_result(result)
    if isinstance(typed, SimulationResult):
        return _page(typed, _simulation_facts(typed), _simulation_sections(typed, links),
                     links)
    if isinstance(typed, LoadRunResult):
        return _page(typed, _load_run_facts(typed), _load_run_sections(typed, links), links)
    return _page(typed, _bench_facts(typed), _bench_sections(typed))


Section = tuple[str, str, str]
"""(anchor, nav label, the section's HTML)."""


def _page(result: Result, facts: Sequence[tuple[str, str]], sections: list[Section],
          links: TraceLinks | None = None) -> str:
    """The skeleton every kind shares: header with the verdict and facts, nav, sections."""
    if links is not None and links.traces:
        sections = [*sections, ("traces", "traces", _exemplar_traces(links))]
    title = f"ecomctl {result.kind} {result.started_at}"
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        _header(result, facts),
        _nav([(anchor, label) for anchor, label, _ in sections if anchor]),
        "<main>",
        *(html for _, _, html in sections),
        "</main>",
        _footer(result),
        trace_links.script(links) if links is not None else "",
        "</body></html>\n",
    ])


# -- reading the document defensively ----------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _text(value: object, default: str = "") -> str:
    return default if value is None else str(value)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _when(value: object) -> str:
    """An ISO-8601 time as 'YYYY-MM-DD HH:MM:SS UTC' (the raw text if it is not one)."""
    if not isinstance(value, str):
        return "\u2013"
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if at.utcoffset() == dt.timedelta(0):
        return f"{at:%Y-%m-%d %H:%M:%S} UTC"
    return at.isoformat(sep=" ", timespec="seconds")


def _count(value: object) -> str:
    number = _num(value)
    return "\u2013" if number is None else f"{number:,.0f}"


def _ms(value: object) -> str:
    number = _num(value)
    if number is None:
        return "\u2013"
    return f"{number:,.2f}" if abs(number) < 10 else f"{number:,.1f}"


def _pct(value: object, digits: int = 1) -> str:
    number = _num(value)
    return "\u2013" if number is None else f"{number:.{digits}%}"


def _plain(value: object) -> str:
    number = _num(value)
    if number is None:
        return "\u2013" if value is None else str(value)
    return format_number(number)


# -- page parts ---------------------------------------------------------------------------------


def _section(anchor: str, title: str, *body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{"".join(body)}</section>'


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


_NUM = ' class="num"'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
           numeric_from: int = 1, caption: str = "") -> str:
    """Cells are already-escaped HTML; columns from ``numeric_from`` are right-aligned."""
    head = "".join(
        f'<th{_NUM if i >= numeric_from else ""}>{_e(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(
            f'<td{_NUM if i >= numeric_from else ""}>{cell}</td>'
            for i, cell in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(title: str, chart: str, note: str = "") -> str:
    extra = f'<p class="note">{_e(note)}</p>' if note else ""
    return f"<figure><figcaption>{_e(title)}</figcaption>{chart}{extra}</figure>"


def _verdict(result: Result) -> str:
    if isinstance(result, BenchResult):
        return ('<span class="badge ok">every target reached</span>' if result.ok
                else '<span class="badge warn">targets missed</span>')
    return ('<span class="badge ok">invariants hold</span>' if result.ok
            else '<span class="badge bad">invariants broken</span>')


def _header(result: Result, items: Sequence[tuple[str, str]]) -> str:
    facts = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return (f"<header><h1>{_e(result.kind)} {_verdict(result)}</h1>"
            f'<dl class="facts">{facts}</dl></header>')


def _nav(links: Sequence[tuple[str, str]]) -> str:
    html = "".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label in links)
    return f"<nav>{html}</nav>"


def _seconds(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:,.1f} s"


def _banner(invariants: Sequence[Invariant] | None, ok: bool) -> str:
    if ok:
        return ""
    listed = list(invariants or [])
    broken = [i for i in listed if not i.ok]
    names = ", ".join(i.name for i in broken)
    detail = (f"{len(broken)} of {len(listed)} business invariants broken: {names}"
              if broken else "the run is not ok")
    return (f'<div class="banner" role="alert"><strong>INVARIANTS BROKEN</strong>'
            f"<span>{_e(detail)}</span></div>")


def _cards(cards: Sequence[tuple[str, str, str]]) -> str:
    """(label, value, tone) as a grid of figure cards."""
    html = "".join(
        f'<div class="card {tone}"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for label, value, tone in cards
    )
    return f'<div class="cards">{html}</div>'


def _checkout_cards(checkouts: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    counts = dict(checkouts or {})
    for outcome in ("paid", "payment_declined", "payment_unknown"):
        counts.setdefault(outcome, 0)
    return [(f"checkouts {outcome.replace('_', ' ')}", _count(count),
             "good" if outcome == "paid" else ("bad" if count else ""))
            for outcome, count in counts.items()]


def _invariants(invariants: Sequence[Invariant] | None,
                missing: str = "no invariants checked") -> str:
    rows = []
    for item in invariants or []:
        mark = ('<span class="badge ok">OK</span>' if item.ok
                else '<span class="badge bad">BROKEN</span>')
        rows.append((mark, _e(item.name), _e(_text(item.detail))))
    if not rows:
        return _section("invariants", "Business invariants", _empty(missing))
    return _section("invariants", "Business invariants",
                    _table(("", "invariant", "detail"), rows, numeric_from=99))


# -- a simulation ---------------------------------------------------------------------------


def _simulation_facts(result: SimulationResult) -> list[tuple[str, str]]:
    config = result.config
    weights = config.weights or {}
    return [
        ("started", _when(result.started_at)),
        ("duration", _seconds(result.duration_s)),
        ("shoppers", _plain(config.shoppers)),
        ("via", config.via),
        ("sessions", _plain(config.sessions)),
        ("planned duration", f"{_plain(config.duration_s)} s"),
        ("think time", f"{_plain(config.think_time_s)} s"),
        ("arrival rate", "closed loop" if config.arrival_rate is None
         else f"{_plain(config.arrival_rate)}/s"),
        ("seed", _plain(config.seed)),
        ("weights", ", ".join(f"{k} {_plain(v)}" for k, v in weights.items()) or "\u2013"),
        ("faults", ", ".join(config.faults or []) or "none"),
        ("latency measured from", config.latency_origin),
    ]


def _simulation_sections(result: SimulationResult, links: TraceLinks | None = None
                         ) -> list[Section]:
    return [
        ("", "", _banner(result.invariants, result.ok)),
        ("totals", "totals", _simulation_totals(result)),
        ("invariants", "invariants", _invariants(result.invariants)),
        ("latency", "latency", _latency(result.journeys, links=links)),
        ("timeline", "over time", _timeline(result.timeline, _fault_bands(result))),
        *_fault_windows(result, links),
        ("trace", "slowest trace", _slowest_trace(result.slowest_trace)),
        ("operations", "operations", _operations(result.spans, links=links)),
        ("errors", "errors", _errors(result.errors)),
        ("cache", "cache", _cache(result.cache)),
        ("kafka", "Kafka", _kafka(result.kafka)),
        ("db", "database", _db(result.db)),
        ("findings", "trace findings", _findings(result.trace_analysis)),
    ]


def _simulation_totals(result: SimulationResult) -> str:
    totals = result.totals
    cards = [
        ("journeys", _count(totals.journeys), ""),
        ("throughput", f"{_plain(totals.throughput_per_s)}/s", ""),
        ("errors", _count(totals.errors), "bad" if totals.errors else ""),
        ("error rate", _pct(totals.error_rate, 2), "bad" if totals.error_rate else ""),
        ("paid checkouts/s", _plain(totals.checkouts_per_s), ""),
    ]
    tracing = _dict(result.tracing)
    if tracing:  # span tables and findings cover the sampled traces only
        spans = _num(tracing.get("spans"))
        cards.append((f"spans sampled ({_text(tracing.get('sampler'), '?')})",
                      _count(spans) if spans else "none", "" if spans else "warn"))
    cards += _checkout_cards(totals.checkouts)
    return _section("totals", "Totals", _cards(cards))


# -- a load run ----------------------------------------------------------------------------


def _load_run_facts(result: LoadRunResult) -> list[tuple[str, str]]:
    config = result.config
    workers = _plain(config.workers) if config.workers else "none (one local process)"
    return [
        ("started", _when(result.started_at)),
        ("load window", _seconds(result.duration_s)),
        ("profile", config.profile or "\u2013"),
        ("locustfile", config.locustfile),
        ("users", _plain(config.users)),
        ("spawn rate", f"{_plain(config.spawn_rate)}/s"),
        ("planned duration", f"{_plain(config.duration_s)} s"),
        ("workers", workers + (f" (master {config.master})" if config.master else "")),
        ("host", config.host),
        ("gateway", _text(config.gateway, "\u2013")),
        ("arrival rate", "closed loop" if config.arrival_rate_per_s is None
         else f"{_plain(config.arrival_rate_per_s)}/s"),
        ("latency measured from", result.latency_origin or config.latency_origin or "\u2013"),
    ]


def _load_run_sections(result: LoadRunResult, links: TraceLinks | None = None
                       ) -> list[Section]:
    sections: list[Section] = [
        ("", "", _banner(result.invariants, result.ok)),
        ("totals", "totals", _load_run_totals(result)),
        ("invariants", "invariants", _invariants(
            result.invariants, "not checked: ecomctl did not start the gateway (--host)")),
        ("endpoints", "endpoints", _latency(result.endpoints, what="endpoint",
                                            anchor="endpoints", rps=True, links=links)),
    ]
    if result.journeys:
        sections.append(("latency", "journeys", _latency(result.journeys)))
    # Load runs gained a per-second timeline later than simulations: older ones have none.
    if result.timeline is not None:
        sections.append(("timeline", "over time", _timeline(
            result.timeline, _fault_bands(result), unit="requests")))
    sections += _fault_windows(result, links)
    sections += [
        ("errors", "errors", _errors(result.errors, "Failed requests by cause")),
        ("outcomes", "outcomes", _outcomes(result.outcomes)),
    ]
    if result.server_side:
        sections += [
            ("operations", "server side", _operations(
                result.spans, title="Server side: top operations", links=links)),
            ("cache", "cache", _load_cache(result.cache)),
        ]
        if result.network_queueing is not None:  # older results have no client spans
            sections.insert(-1, ("network", "network", _network_queueing(result)))
    return sections


def _load_run_totals(result: LoadRunResult) -> str:
    totals = result.totals
    cards = [
        ("requests", _count(totals.requests), ""),
        ("requests/s", _plain(totals.rps), ""),
        ("failed requests", _count(totals.failures), "bad" if totals.failures else ""),
        ("error rate", _pct(totals.error_rate, 2), "bad" if totals.error_rate else ""),
    ]
    if totals.journeys is not None:
        cards.append(("journeys", _count(totals.journeys), ""))
        failed = totals.journey_failures
        cards.append(("failed journeys", _count(failed), "bad" if failed else ""))
    if totals.checkouts is not None:
        cards += _checkout_cards(totals.checkouts)
    context = _dict(result.trace_context)
    if context:
        cards.append(("traced requests continued", _count(context.get("remote_parent")), ""))
    if result.drained is False:
        cards.append(("drained", "no", "warn"))
    return _section("totals", "Totals", _cards(cards))


def _outcomes(outcomes: Mapping[str, Any] | None) -> str:
    rows = [(_e(kind), _e(outcome), _count(count))
            for kind, counts in _dict(outcomes).items()
            for outcome, count in sorted(_dict(counts).items())]
    if not rows:
        return _section("outcomes", "Business outcomes", _empty("no outcomes recorded"))
    return _section("outcomes", "Business outcomes", _table(
        ("journey", "outcome", "count"), rows, numeric_from=2,
        caption="business results that are not failures (a declined payment, say)"))


def _network_queueing(result: LoadRunResult) -> str:
    title = "Client against server latency"
    table = _dict(result.network_queueing)
    rows = []
    for name, row in table.items():
        row = _dict(row)
        rows.append((_e(name), _count(row.get("count")), _count(row.get("unmatched")),
                     *(_ms(row.get(f"{side}_{q}_ms"))
                       for side in ("client", "server", "network_queueing")
                       for q in ("p50", "p95"))))
    if not rows:
        return _section("network", title, _empty(
            "no client spans to match with the server's (a locustfile without them)"))
    return _section("network", title, _table(
        ("endpoint", "matched", "unmatched", "client p50", "client p95", "server p50",
         "server p95", "net+queue p50", "net+queue p95"), rows,
        caption="the same requests seen by Locust and by the gateway (ms); the difference is "
                "time on the network and in queues"))


def _load_cache(cache: Mapping[str, Any] | None) -> str:
    rows = []
    for service, summary in _dict(cache).items():
        summary = _dict(summary)
        served = ", ".join(f"{level} {_count(n)}"
                           for level, n in _dict(summary.get("served_by")).items())
        rows.append((_e(service), _count(summary.get("requests")),
                     _count(summary.get("hits")), _pct(summary.get("hit_ratio")),
                     _e(served or "\u2013")))
    if not rows:
        return _section("cache", "Cache", _empty("no cache lookups recorded"))
    return _section("cache", "Cache", _table(
        ("service", "lookups", "hits", "hit rate", "served by level"), rows,
        caption="from the gateway's spans: a hit is a lookup served above l3 (the source of "
                "truth)"))


# -- a bench ---------------------------------------------------------------------------------


def _bench_facts(result: BenchResult) -> list[tuple[str, str]]:
    machine = result.machine
    return [
        ("started", _when(result.started_at)),
        ("duration", _seconds(result.duration_s)),
        ("mode", "quick" if result.quick else "full"),
        ("cores", _plain(machine.cores)),
        ("python", _text(machine.python, "\u2013")),
        ("event loop", _text(machine.event_loop, "\u2013")),
        ("HTTP parser", _text(machine.http_parser, "\u2013")),
        ("platform", _text(machine.platform, "\u2013")),
    ]


def _bench_sections(result: BenchResult) -> list[Section]:
    return [
        ("", "", _bench_banner(result)),
        ("ratios", "ratios", _bench_ratios(result)),
        ("rows", "figures", _bench_rows(result)),
    ]


def _bench_banner(result: BenchResult) -> str:
    missed = [row.name for row in result.rows if not row.passed]
    if not missed:
        return ""
    return (f'<div class="banner warn" role="alert"><strong>TARGETS MISSED</strong>'
            f"<span>{_e(f'{len(missed)} of {len(result.rows)} rows below target: ')}"
            f"{_e(', '.join(missed))}</span></div>")


def _bench_ratios(result: BenchResult) -> str:
    if not result.rows:
        return _section("ratios", "Ratios against the floors", _empty("no rows measured"))
    bars = [RatioBar(row.name, row.ratio, row.target,
                     f"{row.name}: {row.ratio:g}x (target {row.target:g}x)\n{row.what}\n"
                     f"ecomctl: {format_number(row.ecomctl.value)} {row.ecomctl.unit} "
                     f"({row.ecomctl.what})\nfloor: {format_number(row.floor.value)} "
                     f"{row.floor.unit} ({row.floor.what})")
            for row in result.rows]
    chart = ratio_bars(bars, label="bench ratios against their targets", good=PALETTE[2],
                       bad=ERROR_COLOR)
    return _section("ratios", "Ratios against the floors", _figure(
        "ecomctl against a floor measured in the same run", chart,
        "a ratio is ecomctl / floor when a higher figure is better, floor / ecomctl when a "
        "lower one is: either way higher is better"))


def _bench_rows(result: BenchResult) -> str:
    rows = []
    for row in result.rows:
        mark = ('<span class="badge ok">yes</span>' if row.passed
                else '<span class="badge bad">no</span>')
        rows.append((
            f"<b>{_e(row.name)}</b><br><small>{_e(row.what)}</small>",
            f"{_e(format_number(row.floor.value))} {_e(row.floor.unit)}<br>"
            f"<small>{_e(row.floor.what)}</small>",
            f"{_e(format_number(row.ecomctl.value))} {_e(row.ecomctl.unit)}<br>"
            f"<small>{_e(row.ecomctl.what)}</small>",
            f"{row.ratio:.3g}x", f"&ge; {row.target:g}x", _e(row.better or "higher"), mark,
        ))
    return _section("rows", "Figures", _table(
        ("row", "floor", "ecomctl", "ratio", "target", "better", "reached"), rows,
        numeric_from=3))


# -- latency per journey -----------------------------------------------------------------------


def _nines_label(nines: float) -> str:
    percentile = 100.0 * (1.0 - 10.0**-nines)
    return f"{percentile:.4g}%"


def _percentile_curve(hist: LatencyHistogram) -> list[tuple[float, float | None]]:
    """(nines, latency ms) from 0% to the last percentile the count resolves (1 - 1/n,
    capped at 99.99%), as HdrHistogram's percentile distribution plots it."""
    end = min(MAX_NINES, max(math.log10(max(hist.count, 1)), 1.0))
    steps = 200
    xs = [end * i / steps for i in range(steps + 1)]
    percentiles = [100.0 * (1.0 - 10.0**-x) for x in xs]
    values = hist.percentiles_us(percentiles)
    return [(x, values[p] / 1000.0) for x, p in zip(xs, percentiles, strict=True)]


def _latency(stats: Mapping[str, LatencyStats] | None, *, what: str = "journey",
             anchor: str = "latency", rps: bool = False,
             links: TraceLinks | None = None) -> str:
    """The percentile distribution of each journey (or endpoint) from its HdrHistogram,
    and the summary table."""
    title = f"Latency per {what}"
    stats = stats or {}
    series: list[Series] = []
    unreadable: list[str] = []
    for i, (name, entry) in enumerate(stats.items()):
        hist = entry.histogram()
        if hist is None:
            unreadable.append(name)
            continue
        if hist.count:
            series.append(Series(f"{name} (n={hist.count:,})", _percentile_curve(hist),
                                 PALETTE[i % len(PALETTE)]))
    parts = []
    if series:
        values = [v for s in series for _, v in s.points if v is not None and v > 0]
        lo, hi = min(values, default=1.0), max(values, default=1.0)
        # One log axis when they differ by orders of magnitude; linear reads easier.
        y_scale = LogScale.nice(lo, hi) if hi / max(lo, 1e-3) > 20 else LinearScale.nice(0, hi)
        x_end = max(x for s in series for x, _ in s.points)
        ticks = [t for t in (0.0, math.log10(2), 1.0, 2.0, 3.0, 4.0) if t <= x_end + 1e-9]
        chart = line_chart(
            series,
            Axis("percentile", LinearScale(0.0, x_end, 1.0), _nines_label, ticks),
            Axis("latency (ms)", y_scale),
            label=f"latency percentile distribution per {what}", value_fmt=format_ms,
        )
        parts.append(_figure(
            f"Latency by percentile, per {what} (HdrHistogram)", chart,
            "x: percentile on a log 'nines' axis (90%, 99%, 99.9%...); each curve ends at "
            "the highest percentile its sample count resolves.",
        ))
    else:
        parts.append(_empty("no latency histograms recorded"))
    if unreadable:
        parts.append(_empty(f"no readable histogram for: {', '.join(unreadable)}"))
    rows = []
    for name, entry in stats.items():
        rate = [_plain(entry.rps)] if rps else []
        rows.append((
            _e(name), _count(entry.count), _count(entry.errors), _pct(entry.error_rate),
            *rate, *(_percentile(entry.latency, entry.exemplars, k, links)
                     for k in ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
                               "p999_ms", "max_ms")),
        ))
    if rows:
        parts.append(_table(
            (what, "count", "errors", "error %", *(["req/s"] if rps else []), "min", "mean",
             "p50", "p90", "p95", "p99", "p99.9", "max"), rows,
            caption=f"latency per {what} (ms)"))
    return _section(anchor, title, *parts)


# -- the timeline -------------------------------------------------------------------------------


def _fault_bands(result: SimulationResult | LoadRunResult) -> list[Band]:
    """Fault windows shaded behind the timeline charts (``fault_windows``: ``fault``,
    ``start_s``, ``end_s`` from the timeline's origin); phases could be shaded here too."""
    bands = []
    for window in result.fault_windows or []:
        start, end = window.start_s, window.end_s
        if start is not None and end is not None and end > start:
            bands.append(Band(start, end, f"{window.fault}: {start:g}-{end:g} s"))
    return bands


def _fault_windows(result: SimulationResult | LoadRunResult,
                   links: TraceLinks | None = None) -> list[Section]:
    """Before / during / after each fault window (overall, then each endpoint or journey
    the window slowed), and its recovery time; each p95 links to the traces behind it."""
    windows = result.fault_windows or []
    if not windows:
        return []

    def cells(figures: Sequence[PhaseFigures | None]) -> list[str]:
        return [_phase_p95(phase, links) for phase in figures]

    rows = []
    for window in windows:
        start, end = window.start_s, window.end_s
        when = "not reached" if start is None or end is None else f"{start:.1f}-{end:.1f} s"
        recovery = window.recovery_s
        rows.append((f"<b>{_e(window.fault)}</b> {_e(when)}", "overall p95",
                     *cells([window.phase(p) for p in PHASES]),
                     "<span class=\"bad\">not recovered</span>"
                     if recovery is None and start is not None
                     else f"{recovery:g} s" if recovery is not None else "\u2013"))
        for name in window.slowed or []:
            per_phase = [None if phase is None else (phase.targets or {}).get(name)
                         for phase in (window.phase(p) for p in PHASES)]
            rows.append(("", f"{_e(name)} p95", *cells(per_phase), ""))
    caption = ("p95 in ms before, during and after each window; recovery: until p95 is "
               "back within 20% (or 5 ms) of before, for the slowest of overall and every slowed "
               "endpoint or journey")
    table = _table(("window", "latency", "before", "during", "after", "recovery"), rows,
                   numeric_from=2, caption=caption)
    return [("faults", "fault windows", _section("faults", "Fault windows", table))]


def _timeline(points: Sequence[TimelinePoint] | None, bands: Sequence[Band] = (), *,
              unit: str = "journeys") -> str:
    """Per second: latency percentiles, throughput with errors, cache hit rate; ``bands``
    (fault windows) are shaded behind every chart."""
    seconds = list(points or [])
    if not seconds:
        return _section("timeline", "Over time", _empty("no timeline recorded"))
    ts = [float(s.t) for s in seconds]
    end = max([*ts, *(b.end - 1 for b in bands)]) + 1
    # The axis ends with the run (not at the next round tick), so the plot has no blank tail.
    x_scale = LinearScale(0.0, end, LinearScale.nice(0, end, count=10, min_step=1.0).step)

    def seconds_axis() -> Axis:
        return Axis("seconds since start", x_scale, format_number)

    # Points at the middle of their second, columns across it, so the charts line up.
    def points_of(key: str, factor: float = 1.0) -> list[tuple[float, float | None]]:
        out: list[tuple[float, float | None]] = []
        for t, s in zip(ts, seconds, strict=True):
            value = getattr(s, key)
            out.append((t + 0.5, None if value is None else value * factor))
        return out

    parts = []
    if bands:
        parts.append(_empty("shaded: fault windows (hover for the fault)"))
    lines = [Series("p50", points_of("p50_ms"), PALETTE[0]),
             Series("p95", points_of("p95_ms"), PALETTE[1]),
             Series("p99", points_of("p99_ms"), ERROR_COLOR)]
    top = max((v for s in lines for _, v in s.points if v is not None), default=None)
    if top is None:
        parts.append(_empty("no latency recorded per second"))
    else:
        parts.append(_figure("Latency percentiles per second", line_chart(
            lines, seconds_axis(), Axis("latency (ms)", LinearScale.nice(0, top)),
            label="latency percentiles per second", value_fmt=format_ms, bands=bands)))

    parts.append(_throughput(ts, seconds, x_scale, bands, unit))

    ratios = points_of("cache_hit_ratio", 100.0)
    if any(v is not None for _, v in ratios):
        parts.append(_figure("Cache hit rate per second", line_chart(
            [Series("hit rate", ratios, PALETTE[2])], seconds_axis(),
            Axis("hit rate (%)", LinearScale(0.0, 100.0, 20.0)),
            label="cache hit rate per second", value_fmt=lambda v: f"{v:.1f}%", bands=bands),
            "gaps are seconds without cache lookups"))
    elif unit == "journeys":  # a load run's timeline has no cache figures
        parts.append(_empty("no cache lookups recorded per second"))
    return _section("timeline", "Over time", *parts)


def _throughput(ts: list[float], seconds: list[TimelinePoint], x_scale: LinearScale,
                bands: Sequence[Band], unit: str) -> str:
    """Completions per second as columns, the errors stacked on top in red; long runs are
    binned (rates averaged over the bin) so a column stays wider than a pixel."""
    size = max(1, math.ceil(len(seconds) / MAX_COLUMNS))
    bins: dict[float, list[float]] = {}
    for t, s in zip(ts, seconds, strict=True):
        start = math.floor(t / size) * size
        cell = bins.setdefault(start, [0.0, 0.0])
        cell[0] += s.completed
        cell[1] += s.errors
    ok = [(start, (j - e) / size) for start, (j, e) in sorted(bins.items())]
    errors = [(start, e / size) for start, (_, e) in sorted(bins.items())]
    top = max((a + b for (_, a), (_, b) in zip(ok, errors, strict=True)), default=0.0)
    if top <= 0:
        return _empty(f"no {unit} completed per second")

    def title(start: float) -> str:
        j, e = bins[start]
        where = f"t={start:g}s" if size == 1 else f"t={start:g}-{start + size:g}s"
        return f"{where}: {j:,.0f} {unit}, {e:,.0f} errors"

    chart = column_chart(
        [Series(f"ok {unit}", ok, PALETTE[0]), Series("errors", errors, ERROR_COLOR)],
        Axis("seconds since start", x_scale),
        Axis(f"{unit} per second", LinearScale.nice(0, top)),
        column_width=size, label="throughput and errors per second", column_title=title,
        bands=bands,
    )
    note = f"each column averages {size} seconds" if size > 1 else ""
    return _figure("Throughput and errors per second", chart, note)


# -- the slowest trace ----------------------------------------------------------------------


def _tree_order(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """(span, depth) depth-first, children by start; a span whose parent is missing starts
    a subtree of its own. Cycles in bad data are cut."""
    by_id = {s.get("span_id"): s for s in spans}
    children: dict[object, list[dict[str, Any]]] = {}
    for span in sorted(spans, key=lambda s: _num(s.get("start_ns")) or 0.0):
        parent = span.get("parent_span_id")
        if parent not in by_id or parent == span.get("span_id"):
            parent = None
        children.setdefault(parent, []).append(span)
    ordered: list[tuple[dict[str, Any], int]] = []
    seen: set[int] = set()
    stack = [(root, 0) for root in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        if id(span) in seen:
            continue
        seen.add(id(span))
        ordered.append((span, depth))
        kids = children.get(span.get("span_id"), [])
        stack.extend((child, depth + 1) for child in reversed(kids))
    # Spans only reachable through a cycle are appended flat rather than lost.
    ordered.extend((s, 0) for s in spans if id(s) not in seen)
    return ordered


def _tooltip(span: dict[str, Any], duration_ms: float, offset_ms: float) -> str:
    lines = [f"{_text(span.get('service'))} {_text(span.get('name'))}",
             f"{format_ms(duration_ms)} at +{format_ms(offset_ms)}",
             f"kind {_text(span.get('kind'), '?')}, status {_text(span.get('status'), '?')}"]
    attributes = _dict(span.get("attributes"))
    for key, value in list(attributes.items())[:_ATTRIBUTES_IN_TOOLTIP]:
        text = str(value).replace("\n", " ")
        lines.append(f"{key} = {text[:160]}")
    if len(attributes) > _ATTRIBUTES_IN_TOOLTIP:
        lines.append(f"... {len(attributes) - _ATTRIBUTES_IN_TOOLTIP} more attributes")
    return "\n".join(lines)


def _waterfall_of(raw_spans: Iterable[Any], label: str
                  ) -> tuple[str, float, int, int] | None:
    """A trace's spans (dicts with start_ns/end_ns...) as a waterfall chart, with its length
    in ms, its number of services and of error spans; None when no span has its times."""
    spans = [s for s in raw_spans
             if isinstance(s, dict) and _num(s.get("start_ns")) is not None
             and _num(s.get("end_ns")) is not None]
    if not spans:
        return None
    origin = min(_num(s["start_ns"]) or 0.0 for s in spans)
    total_ms = (max(_num(s["end_ns"]) or 0.0 for s in spans) - origin) / 1e6
    ordered = _tree_order(spans)
    shown = ordered[:MAX_WATERFALL_SPANS]
    colors: dict[str, str] = {}
    rows = []
    for span, depth in shown:
        service = _text(span.get("service"), "?")
        color = colors.setdefault(service, PALETTE[len(colors) % len(PALETTE)])
        start = ((_num(span["start_ns"]) or 0.0) - origin) / 1e6
        end = ((_num(span["end_ns"]) or 0.0) - origin) / 1e6
        rows.append(WaterfallRow(
            name=_text(span.get("name"), "?"), service=service, depth=depth,
            start_ms=start, end_ms=max(end, start), color=color,
            error=span.get("status") == "ERROR", tooltip=_tooltip(span, end - start, start),
        ))
    errors = sum(1 for r in rows if r.error)
    legend = [*colors.items(), *([("error", ERROR_COLOR)] if errors else [])]
    chart = waterfall(rows, total_ms=total_ms, label=label, services=legend)
    if len(ordered) > MAX_WATERFALL_SPANS:
        chart += _empty(f"showing the first {MAX_WATERFALL_SPANS:,} of {len(ordered):,} spans")
    return chart, total_ms, len(colors), errors


def _slowest_trace(slowest_trace: Mapping[str, Any] | None) -> str:
    slowest = _dict(slowest_trace)
    spans = _list(slowest.get("spans"))
    drawn = _waterfall_of(spans, "slowest trace waterfall")
    if drawn is None:
        return _section("trace", "Slowest trace", _empty("no slowest trace recorded"))
    chart, total_ms, services, errors = drawn
    duration = _num(slowest.get("duration_ms"))
    summary = (
        f"journey <b>{_e(_text(slowest.get('journey'), '?'))}</b>, trace "
        f"<code>{_e(_text(slowest.get('trace_id'), '?'))}</code>, "
        f"{_e(format_ms(duration if duration is not None else total_ms))} journey, "
        f"{_e(format_ms(total_ms))} from first span start to last span end, "
        f"{len(spans):,} spans in {services} services, {errors} with errors"
    )
    return _section("trace", "Slowest trace", f'<p class="summary">{summary}</p>',
                    _figure("Slowest trace waterfall", chart, "hover a row for its attributes"))


def _phase_p95(figures: PhaseFigures | None, links: TraceLinks | None) -> str:
    """A fault phase's p95, with links to its exemplars (older results carry none)."""
    if figures is None:
        return _ms(None)
    latency = LatencySummary(p50_ms=figures.p50_ms, p95_ms=figures.p95_ms,
                             p99_ms=figures.p99_ms)
    return _percentile(latency, figures.exemplars, "p95_ms", links)


def _percentile(latency: LatencySummary, exemplars: Exemplars | None, key: str,
                links: TraceLinks | None) -> str:
    """A latency cell; a percentile's links to the traces of its bucket (exemplars)."""
    rung = key.removesuffix("_ms")
    return trace_links.exemplar_cell(_ms(latency.get(key)), latency, exemplars, rung, links)


def _exemplar_traces(links: TraceLinks) -> str:
    """The traces behind the percentiles, drawn: what an exemplar link opens when the trace
    UI does not answer."""
    parts = []
    for trace_id, spans in links.traces.items():
        drawn = _waterfall_of(spans, f"trace {trace_id} waterfall")
        if drawn is None:
            continue
        chart, total_ms, services, errors = drawn
        summary = (f"trace <code>{_e(trace_id)}</code>: {_e(format_ms(total_ms))}, "
                   f"{len(spans):,} spans in {services} services, {errors} with errors")
        parts.append(f'<details class="exemplar-trace" id="trace-{_e(trace_id)}">'
                     f"<summary>{summary}</summary>{chart}</details>")
    note = _empty("the percentile links open these when the trace UI is not running")
    return _section("traces", "Traces behind the percentiles", note, *parts)


# -- tables ---------------------------------------------------------------------------------


def _operations(operations: Sequence[Operation] | None, *, anchor: str = "operations",
                title: str = "Top operations", links: TraceLinks | None = None) -> str:
    ops = list(operations or [])
    if not ops:
        return _section(anchor, title, _empty("no span statistics"))
    ops.sort(key=lambda o: -(o.total_ms or 0.0))
    top = ops[:TOP_OPERATIONS]
    widest = max((o.total_ms or 0.0 for o in top), default=0.0) or 1.0
    rows = []
    for o in top:
        total = o.total_ms or 0.0
        bar = f'<span class="bar" style="width:{100 * total / widest:.0f}%"></span>'
        rows.append((_e(o.service), _e(o.name), _count(o.count), _count(o.errors),
                     *(_percentile(o.latency, o.exemplars, k, links)
                       for k in ("p50_ms", "p95_ms", "p99_ms")),
                     f"{bar}{_ms(o.total_ms)}", _ms(o.self_ms)))
    return _section(anchor, title, _table(
        ("service", "operation", "count", "errors", "p50", "p95", "p99", "total", "self"),
        rows, numeric_from=2,
        caption=f"top {len(top)} of {len(ops)} operations by total time (ms); self excludes "
                "time in child spans"))


def _errors(counts: Mapping[str, Any] | None, title: str = "Errors by cause") -> str:
    errors = {k: v for k, v in (counts or {}).items() if _num(v)}
    if not errors:
        return _section("errors", title, _empty("no errors"))
    total = sum(_num(v) or 0.0 for v in errors.values())
    rows = [(_e(cause), _count(count), _pct((_num(count) or 0.0) / total))
            for cause, count in sorted(errors.items(), key=lambda kv: -(_num(kv[1]) or 0.0))]
    return _section("errors", title, _table(("cause", "count", "share"), rows))


def _cache(cache: Mapping[str, Any] | None) -> str:
    rows = []
    for service, summary in _dict(cache).items():
        summary = _dict(summary)
        levels = _dict(summary.get("levels")) or {"\u2013": {}}
        first = True
        for level, cell in levels.items():
            cell = _dict(cell)
            hits, misses = _num(cell.get("hits")), _num(cell.get("misses"))
            lookups = None if hits is None or misses is None else hits + misses
            rows.append((
                _e(service) if first else "",
                _count(summary.get("requests")) if first else "",
                _pct(summary.get("hit_ratio")) if first else "",
                _e(level), _count(lookups), _count(hits), _count(misses),
                _pct(cell.get("hit_ratio")),
            ))
            first = False
    if not rows:
        return _section("cache", "Cache", _empty("no cache lookups recorded"))
    return _section("cache", "Cache", _table(
        ("service", "requests", "served from cache", "level", "lookups", "hits", "misses",
         "level hit rate"), rows,
        caption="'served from cache': hits at any level but l3 (the source of truth) over "
                "requests"))


def _kafka(kafka: Mapping[str, Any] | None) -> str:
    consumers = _dict(_dict(kafka).get("consumers"))
    rows = []
    for name, stats in consumers.items():
        stats = _dict(stats)
        lag = _dict(stats.get("lag"))
        rows.append((_e(name), *(_count(stats.get(k)) for k in
                                 ("processed", "duplicates", "failed", "malformed",
                                  "dead_lettered")),
                     *(_ms(lag.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))))
    if not rows:
        return _section("kafka", "Kafka consumers", _empty("no consumers reported"))
    return _section("kafka", "Kafka consumers", _table(
        ("consumer", "processed", "duplicates", "failed", "malformed", "dead-lettered",
         "lag p50", "lag p95", "lag p99", "lag max"), rows,
        caption="business commit to processed (ms); dead-lettered: written to the "
                "topic's .dlq (ecomctl events dlq list)"
        + _drained(_dict(kafka).get("drain_s"))))


def _drained(drain_s: Any) -> str:
    seconds = _num(drain_s)
    return "" if seconds is None else f"; caught up {seconds:.1f} s after the run"


def _db(db: Mapping[str, Any] | None) -> str:
    per_checkout = _dict(_dict(db).get("queries_per_checkout"))
    if not _num(per_checkout.get("checkouts")):
        return _section("db", "Database", _empty("no checkout traces to count queries in"))
    keys = ("checkouts", "mean", "min", "p50", "p95", "max")
    return _section("db", "Database", _table(
        keys, [[_plain(per_checkout.get(k)) for k in keys]], numeric_from=0,
        caption="SQL statements per checkout journey (before it answers)"))


_SEVERITY_TONE = {"critical": "bad", "error": "bad", "high": "bad", "warning": "warn",
                  "warn": "warn", "medium": "warn"}


def _findings(trace_analysis: Mapping[str, Any] | None) -> str:
    analysis = _dict(trace_analysis)
    findings = [f for f in _list(analysis.get("findings")) if isinstance(f, dict)]
    if not findings:
        return _section("findings", "Trace detector findings", _empty("nothing found"))
    rows = []
    for finding in findings:
        severity = _text(finding.get("severity"), "?")
        tone = _SEVERITY_TONE.get(severity.lower(), "")
        trace_id = finding.get("trace_id")
        rows.append((_e(_text(finding.get("detector"), "?")),
                     f'<span class="badge {tone}">{_e(severity)}</span>',
                     _e(_text(finding.get("message"))),
                     f"<code>{_e(str(trace_id)[:16])}</code>" if trace_id else "\u2013"))
    # The document keeps the top findings; finding_counts has every detector's total.
    counts = _dict(analysis.get("finding_counts"))
    caption = (f"{len(findings)} shown; found in all: "
               + ", ".join(f"{name} {_plain(n)}" for name, n in counts.items())
               if counts else "")
    return _section("findings", "Trace detector findings", _table(
        ("detector", "severity", "message", "trace"), rows, numeric_from=99, caption=caption))


def _footer(result: Result) -> str:
    parts = [f"schema {_e(result.schema)}"]
    trace_file = getattr(result, "trace_file", None)
    if trace_file:
        parts.append(f"traces in <code>{_e(trace_file)}</code>")
    parts.append("written by ecomctl report")
    return f"<footer>{' &middot; '.join(parts)}</footer>"


_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--ok:#1a7f37;
--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header,main,nav,footer{max-width:1000px;margin:0 auto;padding:0 20px}
header{padding-top:20px}
h1{font-size:24px;margin:0 0 10px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 16px;
margin:0}
dl.facts div{min-width:0}
dt{color:var(--muted);font-size:12px}dd{margin:0;overflow-wrap:anywhere}
nav{display:flex;flex-wrap:wrap;gap:4px 14px;margin-top:14px;padding-top:8px;padding-bottom:8px;
border-top:1px solid var(--line);border-bottom:1px solid var(--line)}
nav a{color:#0969da;text-decoration:none}
.banner{max-width:960px;margin:16px auto 0;padding:16px 20px;background:var(--bad);color:#fff;
border-radius:6px;font-size:16px;display:flex;gap:16px;align-items:baseline}
.banner strong{font-size:22px;white-space:nowrap}
.banner.warn{background:var(--warn)}
small{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600;vertical-align:middle;white-space:nowrap;background:var(--soft);color:var(--muted);
border:1px solid var(--line)}
.badge.ok{background:#dafbe1;color:var(--ok);border-color:#aceebb}
.badge.bad{background:#ffebe9;color:var(--bad);border-color:#ffcecb}
.badge.warn{background:#fff8c5;color:var(--warn);border-color:#eed888}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:var(--soft)}
.card .value{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.card .label{color:var(--muted);font-size:12px}
.card.bad .value{color:var(--bad)}.card.good .value{color:var(--ok)}
.card.warn .value{color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:8px 0 4px;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;color:var(--muted);font-size:12px;padding-bottom:4px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--soft);font-weight:600;font-size:12px}
td{overflow-wrap:anywhere}
.num{text-align:right;white-space:nowrap}
td.num{position:relative}
.bar{position:absolute;right:0;top:3px;bottom:3px;background:#4e79a722;border-radius:2px}
figure{margin:12px 0 18px}
figcaption{font-weight:600;margin-bottom:4px}
svg.chart{display:block;max-width:100%;height:auto;font-size:12px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
svg .plot{fill:#fbfcfd;stroke:var(--line)}
svg .grid{stroke:#e6e9ed;stroke-width:1}
svg .tick{fill:var(--muted);font-size:11px}
svg .axis-label{fill:var(--fg);font-size:12px}
svg .legend{fill:var(--fg)}
svg .line{fill:none;stroke-width:1.8;stroke-linejoin:round;stroke-linecap:round}
svg .band{fill:transparent}
svg .row:nth-of-type(even) .band{fill:#f6f8fa}
svg .row:hover .band{fill:#ddf4ff}
svg .row.error .span-name{fill:var(--bad)}
svg .span-name{font-weight:600}
svg .span-service{fill:var(--muted)}
svg .duration{fill:var(--fg);font-size:11px}
.empty,.note{color:var(--muted);font-style:italic;margin:6px 0}
.summary{margin:6px 0}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{color:var(--muted);font-size:12px;margin:32px auto 24px;padding-top:8px;
border-top:1px solid var(--line)}
.exemplars{margin-left:3px;white-space:nowrap}
.exemplars a{color:#0969da;text-decoration:none;font-size:9px;margin-left:1px}
.exemplars a.unavailable{color:var(--muted)}
details.exemplar-trace{margin:6px 0}details.exemplar-trace summary{cursor:pointer}
"""
