"""A run's result document as one self-contained HTML page: inline CSS, inline SVG charts,
no scripts, nothing fetched, so it can be attached to a CI run and opened anywhere.

Every string from the result is user data (span names, attributes, error causes) and is
escaped. Every section tolerates missing or empty input: a valid result always renders.
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

from ecomctl.analysis.histogram import LatencyHistogram
from ecomctl.reports.svg import (
    ERROR_COLOR,
    PALETTE,
    Axis,
    LinearScale,
    LogScale,
    Series,
    WaterfallRow,
    column_chart,
    format_ms,
    format_number,
    line_chart,
    waterfall,
)

MAX_NINES = 4.0  # the percentile axis ends at 99.99%
TOP_OPERATIONS = 25
MAX_WATERFALL_SPANS = 400
MAX_COLUMNS = 300  # longer timelines are binned, so columns stay visible
_ATTRIBUTES_IN_TOOLTIP = 12


def write_html_report(result: dict[str, Any], path: Path) -> None:
    """Write the page for ``result`` to ``path`` atomically (a temporary file in the same
    directory, then a rename), so a reader never sees half a page."""
    page = render_html_report(result)
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


def render_html_report(result: Mapping[str, Any]) -> str:
    """The whole page as a string."""
    sections = [
        _banner(result),
        _totals(result),
        _invariants(result),
        _latency(result),
        _timeline(result),
        _slowest_trace(result),
        _operations(result),
        _errors(result),
        _cache(result),
        _kafka(result),
        _db(result),
        _findings(result),
    ]
    title = f"ecomctl {_text(result.get('kind'), 'result')} {_text(result.get('started_at'))}"
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        _header(result),
        _nav(),
        "<main>",
        *sections,
        "</main>",
        _footer(result),
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


def _header(result: Mapping[str, Any]) -> str:
    config = _dict(result.get("config"))
    ok = bool(result.get("ok", False))
    verdict = ('<span class="badge ok">invariants hold</span>' if ok
               else '<span class="badge bad">invariants broken</span>')
    duration = _num(result.get("duration_s"))
    weights = _dict(config.get("weights"))
    faults = [str(f) for f in _list(config.get("faults"))]
    items = [
        ("started", _when(result.get("started_at"))),
        ("duration", "\u2013" if duration is None else f"{duration:,.1f} s"),
        ("shoppers", _plain(config.get("shoppers"))),
        ("via", _text(config.get("via"), "\u2013")),
        ("sessions", _plain(config.get("sessions"))),
        ("planned duration", f"{_plain(config.get('duration_s'))} s"),
        ("think time", f"{_plain(config.get('think_time_s'))} s"),
        ("arrival rate", "closed loop" if config.get("arrival_rate") is None
         else f"{_plain(config.get('arrival_rate'))}/s"),
        ("seed", _plain(config.get("seed"))),
        ("weights", ", ".join(f"{k} {_plain(v)}" for k, v in weights.items()) or "\u2013"),
        ("faults", ", ".join(faults) or "none"),
        ("latency measured from", _text(config.get("latency_origin"), "\u2013")),
    ]
    facts = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in items)
    return (f"<header><h1>{_e(_text(result.get('kind'), 'result'))} {verdict}</h1>"
            f'<dl class="facts">{facts}</dl></header>')


_NAV = (("totals", "totals"), ("invariants", "invariants"), ("latency", "latency"),
        ("timeline", "over time"), ("trace", "slowest trace"), ("operations", "operations"),
        ("errors", "errors"), ("cache", "cache"), ("kafka", "Kafka"), ("db", "database"),
        ("findings", "trace findings"))


def _nav() -> str:
    links = "".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label in _NAV)
    return f"<nav>{links}</nav>"


def _banner(result: Mapping[str, Any]) -> str:
    if result.get("ok", False):
        return ""
    broken = [i for i in _list(result.get("invariants"))
              if isinstance(i, dict) and not i.get("ok", False)]
    names = ", ".join(_text(i.get("name"), "?") for i in broken)
    detail = (f"{len(broken)} of {len(_list(result.get('invariants')))} business invariants "
              f"broken: {names}" if broken else "the run is not ok")
    return (f'<div class="banner" role="alert"><strong>INVARIANTS BROKEN</strong>'
            f"<span>{_e(detail)}</span></div>")


def _totals(result: Mapping[str, Any]) -> str:
    totals = _dict(result.get("totals"))
    checkouts = _dict(totals.get("checkouts"))
    error_rate = _num(totals.get("error_rate"))
    cards = [
        ("journeys", _count(totals.get("journeys")), ""),
        ("throughput", f"{_plain(totals.get('throughput_per_s'))}/s", ""),
        ("errors", _count(totals.get("errors")), "bad" if totals.get("errors") else ""),
        ("error rate", _pct(error_rate, 2), "bad" if error_rate else ""),
        ("paid checkouts/s", _plain(totals.get("checkouts_per_s")), ""),
    ]
    tracing = _dict(result.get("tracing"))
    if tracing:  # span tables and findings cover the sampled traces only
        spans = _num(tracing.get("spans"))
        cards.append((f"spans sampled ({_text(tracing.get('sampler'), '?')})",
                      _count(spans) if spans else "none", "" if spans else "warn"))
    for outcome in ("paid", "payment_declined", "payment_unknown"):
        checkouts.setdefault(outcome, 0)
    for outcome, count in checkouts.items():
        tone = "good" if outcome == "paid" else ("bad" if count else "")
        cards.append((f"checkouts {outcome.replace('_', ' ')}", _count(count), tone))
    html = "".join(
        f'<div class="card {tone}"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div></div>'
        for label, value, tone in cards
    )
    return _section("totals", "Totals", f'<div class="cards">{html}</div>')


def _invariants(result: Mapping[str, Any]) -> str:
    rows = []
    for item in _list(result.get("invariants")):
        item = _dict(item)
        ok = bool(item.get("ok", False))
        mark = '<span class="badge ok">OK</span>' if ok else '<span class="badge bad">BROKEN</span>'
        rows.append((mark, _e(_text(item.get("name"), "?")), _e(_text(item.get("detail")))))
    if not rows:
        return _section("invariants", "Business invariants", _empty("no invariants checked"))
    return _section("invariants", "Business invariants",
                    _table(("", "invariant", "detail"), rows, numeric_from=99))


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


def _latency(result: Mapping[str, Any]) -> str:
    journeys = _dict(result.get("journeys"))
    series: list[Series] = []
    unreadable: list[str] = []
    for i, (name, journey) in enumerate(journeys.items()):
        encoded = _dict(journey).get("hdr")
        try:
            hist = LatencyHistogram.decode(encoded) if isinstance(encoded, str) else None
        except ValueError:
            hist = None
        if hist is None:
            unreadable.append(str(name))
            continue
        if hist.count:
            series.append(Series(f"{name} (n={hist.count:,})", _percentile_curve(hist),
                                 PALETTE[i % len(PALETTE)]))
    parts = []
    if series:
        values = [v for s in series for _, v in s.points if v is not None and v > 0]
        lo, hi = min(values, default=1.0), max(values, default=1.0)
        # One log axis when journeys differ by orders of magnitude; linear reads easier.
        y_scale = LogScale.nice(lo, hi) if hi / max(lo, 1e-3) > 20 else LinearScale.nice(0, hi)
        x_end = max(x for s in series for x, _ in s.points)
        ticks = [t for t in (0.0, math.log10(2), 1.0, 2.0, 3.0, 4.0) if t <= x_end + 1e-9]
        chart = line_chart(
            series,
            Axis("percentile", LinearScale(0.0, x_end, 1.0), _nines_label, ticks),
            Axis("latency (ms)", y_scale),
            label="latency percentile distribution per journey", value_fmt=format_ms,
        )
        parts.append(_figure(
            "Latency by percentile, per journey (HdrHistogram)", chart,
            "x: percentile on a log 'nines' axis (90%, 99%, 99.9%...); each curve ends at "
            "the highest percentile its sample count resolves.",
        ))
    else:
        parts.append(_empty("no latency histograms recorded"))
    if unreadable:
        parts.append(_empty(f"no readable histogram for: {', '.join(unreadable)}"))
    rows = []
    for name, journey in journeys.items():
        j = _dict(journey)
        count, errors = _num(j.get("count")), _num(j.get("errors"))
        rate = errors / count if count and errors is not None else None
        rows.append((
            _e(name), _count(count), _count(errors), _pct(rate),
            *(_ms(j.get(k)) for k in ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms",
                                      "p99_ms", "p999_ms", "max_ms")),
        ))
    if rows:
        parts.append(_table(
            ("journey", "count", "errors", "error %", "min", "mean", "p50", "p90", "p95",
             "p99", "p99.9", "max"), rows, caption="latency per journey (ms)"))
    return _section("latency", "Latency per journey", *parts)


# -- the timeline -------------------------------------------------------------------------------


def _timeline(result: Mapping[str, Any]) -> str:
    seconds = [s for s in _list(result.get("timeline")) if isinstance(s, dict)]
    if not seconds:
        return _section("timeline", "Over time", _empty("no timeline recorded"))
    ts = [(_num(s.get("t")) or float(i)) for i, s in enumerate(seconds)]
    end = max(ts) + 1
    # The axis ends with the run (not at the next round tick), so the plot has no blank tail.
    x_scale = LinearScale(0.0, end, LinearScale.nice(0, end, count=10, min_step=1.0).step)

    def seconds_axis() -> Axis:
        return Axis("seconds since start", x_scale, format_number)

    # Points at the middle of their second, columns across it, so the charts line up.
    def points(key: str, factor: float = 1.0) -> list[tuple[float, float | None]]:
        out: list[tuple[float, float | None]] = []
        for t, s in zip(ts, seconds, strict=True):
            value = _num(s.get(key))
            out.append((t + 0.5, None if value is None else value * factor))
        return out

    parts = []
    lines = [Series("p50", points("p50_ms"), PALETTE[0]),
             Series("p95", points("p95_ms"), PALETTE[1]),
             Series("p99", points("p99_ms"), ERROR_COLOR)]
    top = max((v for s in lines for _, v in s.points if v is not None), default=None)
    if top is None:
        parts.append(_empty("no latency recorded per second"))
    else:
        parts.append(_figure("Latency percentiles per second", line_chart(
            lines, seconds_axis(), Axis("latency (ms)", LinearScale.nice(0, top)),
            label="latency percentiles per second", value_fmt=format_ms)))

    parts.append(_throughput(ts, seconds, x_scale))

    ratios = points("cache_hit_ratio", 100.0)
    if any(v is not None for _, v in ratios):
        parts.append(_figure("Cache hit rate per second", line_chart(
            [Series("hit rate", ratios, PALETTE[2])], seconds_axis(),
            Axis("hit rate (%)", LinearScale(0.0, 100.0, 20.0)),
            label="cache hit rate per second", value_fmt=lambda v: f"{v:.1f}%"),
            "gaps are seconds without cache lookups"))
    else:
        parts.append(_empty("no cache lookups recorded per second"))
    return _section("timeline", "Over time", *parts)


def _throughput(ts: list[float], seconds: list[dict[str, Any]], x_scale: LinearScale) -> str:
    """Journeys per second as columns, the errors stacked on top in red; long runs are
    binned (rates averaged over the bin) so a column stays wider than a pixel."""
    size = max(1, math.ceil(len(seconds) / MAX_COLUMNS))
    bins: dict[float, list[float]] = {}
    for t, s in zip(ts, seconds, strict=True):
        start = math.floor(t / size) * size
        cell = bins.setdefault(start, [0.0, 0.0])
        cell[0] += _num(s.get("journeys")) or 0.0
        cell[1] += _num(s.get("errors")) or 0.0
    ok = [(start, (j - e) / size) for start, (j, e) in sorted(bins.items())]
    errors = [(start, e / size) for start, (_, e) in sorted(bins.items())]
    top = max((a + b for (_, a), (_, b) in zip(ok, errors, strict=True)), default=0.0)
    if top <= 0:
        return _empty("no journeys completed per second")

    def title(start: float) -> str:
        j, e = bins[start]
        where = f"t={start:g}s" if size == 1 else f"t={start:g}-{start + size:g}s"
        return f"{where}: {j:,.0f} journeys, {e:,.0f} errors"

    chart = column_chart(
        [Series("ok journeys", ok, PALETTE[0]), Series("errors", errors, ERROR_COLOR)],
        Axis("seconds since start", x_scale),
        Axis("journeys per second", LinearScale.nice(0, top)),
        column_width=size, label="throughput and errors per second", column_title=title,
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


def _slowest_trace(result: Mapping[str, Any]) -> str:
    slowest = _dict(result.get("slowest_trace"))
    spans = [s for s in _list(slowest.get("spans"))
             if isinstance(s, dict) and _num(s.get("start_ns")) is not None
             and _num(s.get("end_ns")) is not None]
    if not spans:
        return _section("trace", "Slowest trace", _empty("no slowest trace recorded"))
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
    chart = waterfall(rows, total_ms=total_ms, label="slowest trace waterfall",
                      services=legend)
    duration = _num(slowest.get("duration_ms"))
    summary = (
        f"journey <b>{_e(_text(slowest.get('journey'), '?'))}</b>, trace "
        f"<code>{_e(_text(slowest.get('trace_id'), '?'))}</code>, "
        f"{_e(format_ms(duration if duration is not None else total_ms))} journey, "
        f"{_e(format_ms(total_ms))} from first span start to last span end, "
        f"{len(spans):,} spans in {len(colors)} services, {errors} with errors"
    )
    note = ("hover a row for its attributes" if len(ordered) <= MAX_WATERFALL_SPANS else
            f"showing the first {MAX_WATERFALL_SPANS:,} of {len(ordered):,} spans")
    return _section("trace", "Slowest trace", f'<p class="summary">{summary}</p>',
                    _figure("Slowest trace waterfall", chart, note))


# -- tables ---------------------------------------------------------------------------------


def _latency_of(operation: dict[str, Any], key: str) -> object:
    """A percentile of an operation: flat (as result.py documents it) or under ``latency``
    (as ``OperationStats.to_dict`` writes it)."""
    if key in operation:
        return operation[key]
    return _dict(operation.get("latency")).get(key)


def _operations(result: Mapping[str, Any]) -> str:
    ops = [o for o in _list(result.get("spans")) if isinstance(o, dict)]
    if not ops:
        return _section("operations", "Top operations", _empty("no span statistics"))
    ops.sort(key=lambda o: -(_num(o.get("total_ms")) or 0.0))
    top = ops[:TOP_OPERATIONS]
    widest = max((_num(o.get("total_ms")) or 0.0 for o in top), default=0.0) or 1.0
    rows = []
    for o in top:
        total = _num(o.get("total_ms")) or 0.0
        bar = f'<span class="bar" style="width:{100 * total / widest:.0f}%"></span>'
        rows.append((_e(_text(o.get("service"))), _e(_text(o.get("name"))),
                     _count(o.get("count")), _count(o.get("errors")),
                     *(_ms(_latency_of(o, k)) for k in ("p50_ms", "p95_ms", "p99_ms")),
                     f"{bar}{_ms(o.get('total_ms'))}", _ms(o.get("self_ms"))))
    return _section("operations", "Top operations", _table(
        ("service", "operation", "count", "errors", "p50", "p95", "p99", "total", "self"),
        rows, numeric_from=2,
        caption=f"top {len(top)} of {len(ops)} operations by total time (ms); self excludes "
                "time in child spans"))


def _errors(result: Mapping[str, Any]) -> str:
    errors = {k: v for k, v in _dict(result.get("errors")).items() if _num(v)}
    if not errors:
        return _section("errors", "Errors by cause", _empty("no errors"))
    total = sum(_num(v) or 0.0 for v in errors.values())
    rows = [(_e(cause), _count(count), _pct((_num(count) or 0.0) / total))
            for cause, count in sorted(errors.items(), key=lambda kv: -(_num(kv[1]) or 0.0))]
    return _section("errors", "Errors by cause",
                    _table(("cause", "count", "share"), rows))


def _cache(result: Mapping[str, Any]) -> str:
    rows = []
    for service, summary in _dict(result.get("cache")).items():
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


def _kafka(result: Mapping[str, Any]) -> str:
    consumers = _dict(_dict(result.get("kafka")).get("consumers"))
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
        + _drained(_dict(result.get("kafka")).get("drain_s"))))


def _drained(drain_s: Any) -> str:
    seconds = _num(drain_s)
    return "" if seconds is None else f"; caught up {seconds:.1f} s after the run"


def _db(result: Mapping[str, Any]) -> str:
    per_checkout = _dict(_dict(result.get("db")).get("queries_per_checkout"))
    if not _num(per_checkout.get("checkouts")):
        return _section("db", "Database", _empty("no checkout traces to count queries in"))
    keys = ("checkouts", "mean", "min", "p50", "p95", "max")
    return _section("db", "Database", _table(
        keys, [[_plain(per_checkout.get(k)) for k in keys]], numeric_from=0,
        caption="SQL statements per checkout journey (before it answers)"))


_SEVERITY_TONE = {"critical": "bad", "error": "bad", "high": "bad", "warning": "warn",
                  "warn": "warn", "medium": "warn"}


def _findings(result: Mapping[str, Any]) -> str:
    analysis = _dict(result.get("trace_analysis"))
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


def _footer(result: Mapping[str, Any]) -> str:
    parts = [f"schema {_e(_text(result.get('schema'), '?'))}"]
    if result.get("trace_file"):
        parts.append(f"traces in <code>{_e(result['trace_file'])}</code>")
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
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;
font-weight:600;vertical-align:middle;background:var(--soft);color:var(--muted);
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
"""
