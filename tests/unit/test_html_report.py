"""The HTML report: one self-contained, well-formed page with a chart per plot, user data
escaped, and every section tolerant of empty input."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ecomctl.histogram import LatencyHistogram
from ecomctl.reports.html import render_html_report, write_html_report
from ecomctl.reports.svg import ERROR_COLOR, LinearScale, LogScale, line_chart
from ecomctl.reports.svg import Axis as ChartAxis
from ecomctl.reports.svg import Series as ChartSeries
from ecomctl.results import ResultFormatError
from ecomctl.results.envelope import RESULT_SCHEMA
from tests.spans import span_dict, span_record

EVIL = "<script>alert(1)</script>"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}


def _hdr(values_ms: list[float]) -> tuple[str, dict[str, Any]]:
    hist = LatencyHistogram()
    hist.record_many_us(int(v * 1000) for v in values_ms)
    return hist.encode(), hist.summary()


def _journey(values_ms: list[float], errors: int) -> dict[str, Any]:
    encoded, summary = _hdr(values_ms)
    return {**summary, "count": len(values_ms), "errors": errors, "hdr": encoded}


def _result() -> dict[str, Any]:
    browse = [2.0 + (i % 50) * 0.3 for i in range(400)]
    checkout = [40.0 + (i % 90) * 2.5 for i in range(120)] + [900.0]
    summary = _hdr([1.0, 2.0])[1]
    return {
        "schema": RESULT_SCHEMA,
        "kind": "checkout-simulate",
        "started_at": "2024-05-01T10:00:00+00:00",
        "duration_s": 3.2,
        "config": {"shoppers": 8, "duration_s": 3, "sessions": None, "think_time_s": 0.1,
                   "arrival_rate": None, "seed": 7, "via": "inprocess",
                   "weights": {"browse": 5, "checkout": 2},
                   "faults": ["payment.decline_rate=0.1"],
                   "latency_origin": "actual start (closed loop)"},
        "totals": {"journeys": 521, "errors": 12, "error_rate": 0.023,
                   "throughput_per_s": 162.8,
                   "checkouts": {"paid": 100, "payment_declined": 12, "payment_unknown": 0},
                   "checkouts_per_s": 31.25},
        "journeys": {"browse_catalogue": _journey(browse, 0),
                     "checkout_flow": _journey(checkout, 12)},
        "errors": {"PaymentDeclined": 12},
        "spans": [
            {"service": "checkout", "name": "checkout.complete", "count": 121, "errors": 12,
             **summary, "total_ms": 9000.5, "self_ms": 300.0},
            {"service": "product", "name": EVIL, "count": 400, "errors": 0, **summary,
             "total_ms": 800.0, "self_ms": 800.0},
        ],
        "cache": {"product": {"requests": 400, "hit_ratio": 0.9,
                              "levels": {"l1": {"hits": 300, "misses": 100, "hit_ratio": 0.75},
                                         "l2": {"hits": 60, "misses": 40, "hit_ratio": 0.6}}}},
        "kafka": {"consumers": {"shipment": {"processed": 100, "duplicates": 0, "failed": 0,
                                             "malformed": 0, "lag": summary}}},
        "db": {"queries_per_checkout": {"checkouts": 121, "mean": 9.5, "min": 8, "p50": 9,
                                        "p95": 12, "max": 14}},
        "timeline": [
            {"t": 0, "journeys": 150, "errors": 3, "p50_ms": 4.0, "p95_ms": 60.0,
             "p99_ms": 200.0, "cache_hit_ratio": 0.8},
            {"t": 1, "journeys": 170, "errors": 4, "p50_ms": 4.5, "p95_ms": 70.0,
             "p99_ms": 250.0, "cache_hit_ratio": None},
            {"t": 2, "journeys": 201, "errors": 5, "p50_ms": 4.2, "p95_ms": 65.0,
             "p99_ms": 900.0, "cache_hit_ratio": 0.95},
        ],
        "trace_analysis": {"finding_counts": {"n_plus_one": 7}, "findings": [
            {"detector": "n_plus_one", "severity": "warning", "trace_id": "ab" * 16,
             "span_ids": ["0000000000000002"],
             "message": "product.get called 12 times under checkout.complete"},
        ]},
        "slowest_trace": {
            "journey": "checkout_flow", "trace_id": "ab" * 16, "duration_ms": 900.0,
            "spans": [span_dict(s) for s in [
                span_record(1, None, 0, 900, "journey.checkout", service="shopper",
                            trace_id="ab" * 16),
                span_record(2, 1, 5, 880, "checkout.complete", service="checkout",
                            trace_id="ab" * 16),
                span_record(4, 2, 300, 870, "payment.charge", service="payment", status="ERROR",
                            trace_id="ab" * 16, url__full="http://127.0.0.1:1/charge"),
                span_record(3, 2, 10, 250, EVIL, service="inventory", trace_id="ab" * 16,
                            db__statement="UPDATE stock SET qty = qty - 1 WHERE id = $1"),
            ]],
        },
        "trace_file": "/tmp/traces.jsonl",
        "invariants": [
            {"name": "no_oversold_stock", "ok": True, "detail": "ok"},
            {"name": "paid_orders_have_payments", "ok": True, "detail": "ok"},
        ],
        "ok": True,
    }


class _TagBalance(HTMLParser):
    """Counts start tags and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.counts: dict[str, int] = {}
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(page)
    parser.close()
    assert parser.problems == []
    assert parser.stack == []
    return parser


def _svgs(page: str) -> list[ET.Element]:
    fragments = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    return [ET.fromstring(fragment) for fragment in fragments]  # raises if not well-formed


def _write(result: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "report.html"
    write_html_report(result, path)
    return path.read_text(encoding="utf-8")


def test_page_is_well_formed_with_one_svg_per_chart(tmp_path: Path) -> None:
    page = _write(_result(), tmp_path)
    parsed = _parse(page)
    assert page.startswith("<!DOCTYPE html>")
    # percentile distribution, percentiles over time, throughput, cache hit rate, waterfall
    assert parsed.counts["svg"] == 5
    assert len(_svgs(page)) == 5
    assert parsed.counts.get("script", 0) == 0


def test_page_references_nothing_on_the_network(tmp_path: Path) -> None:
    page = _write(_result(), tmp_path)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert not re.search(r"<(link|img|iframe|object|embed|script)\b", page, flags=re.I)
    assert "@import" not in page and "url(" not in page
    # hrefs that exist are in-page anchors
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))


def test_page_names_journeys_invariants_and_sections(tmp_path: Path) -> None:
    page = _write(_result(), tmp_path)
    text = " ".join(_parse(page).text)
    for name in ("browse_catalogue", "checkout_flow", "no_oversold_stock",
                 "paid_orders_have_payments", "PaymentDeclined", "n_plus_one",
                 "checkout.complete", "payment.decline_rate=0.1", "closed loop",
                 "2024-05-01 10:00:00 UTC", "found in all: n_plus_one 7"):
        assert name in text
    assert "INVARIANTS BROKEN" not in text


def test_user_data_is_escaped(tmp_path: Path) -> None:
    result = _result()
    result["journeys"]["<b>&journey</b>"] = result["journeys"].pop("checkout_flow")
    result["errors"] = {'<img src=x onerror="alert(2)">': 3}
    result["invariants"][0]["detail"] = "</td></tr></table><h1>gotcha</h1>"
    page = _write(result, tmp_path)
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>&journey</b>" not in page and "&lt;b&gt;&amp;journey&lt;/b&gt;" in page
    assert "<img" not in page and "<h1>gotcha" not in page
    parsed = _parse(page)  # injected closing tags would unbalance it
    assert parsed.counts.get("script", 0) == 0
    assert len(_svgs(page)) == 5


def test_waterfall_rows_follow_the_span_tree(tmp_path: Path) -> None:
    page = _write(_result(), tmp_path)
    waterfall = next(s for s in _svgs(page) if "waterfall" in (s.get("class") or ""))
    rows = [g for g in waterfall.iter("g") if "row" in (g.get("class") or "")]
    names = [next(t for t in g.iter("tspan") if t.get("class") == "span-name").text
             for g in rows]
    # depth-first, children by start: the inventory span (EVIL) starts before payment
    assert names == ["journey.checkout", "checkout.complete", EVIL, "payment.charge"]
    indents = [float(next(g.iter("text")).get("x") or 0) for g in rows]
    assert indents[0] < indents[1] < indents[2] == indents[3]
    payment = rows[3]
    assert "error" in (payment.get("class") or "")
    fills = [r.get("fill") for r in payment.iter("rect")]
    assert ERROR_COLOR in fills
    # the bar spans 300..870 ms of a 900 ms trace
    bar = next(r for r in payment.iter("rect") if r.get("fill") == ERROR_COLOR)
    others = next(r for r in rows[0].iter("rect") if r.get("fill") not in (None, ERROR_COLOR))
    width0 = float(others.get("width") or 0)
    assert float(bar.get("width") or 0) == pytest.approx(width0 * 570 / 900, rel=0.02)


def test_operation_percentiles_nested_under_latency_are_read(tmp_path: Path) -> None:
    result = _result()
    summary = _hdr([12.5, 13.0, 77.7])[1]
    result["spans"] = [{"service": "search", "name": "search.query", "count": 3, "errors": 0,
                        "error_rate": 0.0, "total_ms": 103.2, "self_ms": 90.0,
                        "latency": summary}]
    page = _write(result, tmp_path)
    row = re.search(r"<tr><td>search</td>.*?</tr>", page)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))
    assert cells[4:7] == [f"{summary['p50_ms']:,.1f}", f"{summary['p95_ms']:,.1f}",
                          f"{summary['p99_ms']:,.1f}"]


def test_empty_sections_render_placeholders(tmp_path: Path) -> None:
    result = _result()
    result.update(
        timeline=[], errors={}, spans=[], cache={}, kafka={"consumers": {}},
        db={"queries_per_checkout": {"checkouts": 0}}, trace_analysis={},
        slowest_trace={"journey": None, "trace_id": None, "duration_ms": None, "spans": []},
    )
    page = _write(result, tmp_path)
    parsed = _parse(page)
    assert parsed.counts["svg"] == 1  # only the latency percentile distribution
    text = " ".join(parsed.text)
    for placeholder in ("no timeline recorded", "no slowest trace recorded", "no errors",
                        "nothing found", "no cache lookups recorded", "no consumers reported"):
        assert placeholder in text


def test_one_second_timeline_without_cache_activity(tmp_path: Path) -> None:
    result = _result()
    result["timeline"] = [{"t": 0, "journeys": 3, "errors": 0, "p50_ms": 4.0, "p95_ms": 5.0,
                           "p99_ms": 5.0, "cache_hit_ratio": None}]
    page = _write(result, tmp_path)
    svgs = _svgs(page)
    # percentiles over time and throughput are drawn, the cache chart is not
    assert len(svgs) == 4
    over_time = next(s for s in svgs if s.get("aria-label") == "latency percentiles per second")
    assert len(list(over_time.iter("circle"))) == 3  # one visible dot per percentile
    assert "no cache lookups recorded per second" in page


def test_idle_seconds_and_unreadable_histograms_do_not_crash(tmp_path: Path) -> None:
    result = _result()
    result["timeline"] = [{"t": i, "journeys": 0, "errors": 0, "p50_ms": None, "p95_ms": None,
                           "p99_ms": None, "cache_hit_ratio": None} for i in range(3)]
    result["journeys"]["checkout_flow"]["hdr"] = "not base64 at all"
    result["journeys"]["empty"] = _journey([], 0)
    page = _write(result, tmp_path)
    _parse(page)
    assert "no readable histogram for: checkout_flow" in page
    assert "no journeys completed per second" in page


def test_a_minimal_document_renders_and_a_bare_one_is_refused() -> None:
    minimal = {key: _result()[key] for key in ("schema", "kind", "started_at", "duration_s",
                                               "config", "totals", "journeys")}
    page = render_html_report({**minimal, "journeys": {}, "invariants": [], "ok": False})
    text = " ".join(_parse(page).text)
    assert "INVARIANTS BROKEN" in text and "no invariants checked" in text
    assert "no timeline recorded" in text and "no latency histograms recorded" in text
    # The typed reader names what is missing rather than rendering an empty page.
    with pytest.raises(ResultFormatError, match="kind: None is not a kind"):
        render_html_report({"schema": RESULT_SCHEMA})
    with pytest.raises(ResultFormatError, match=r"^invariants: missing"):
        render_html_report({**minimal, "ok": True})


def test_broken_invariants_raise_a_banner(tmp_path: Path) -> None:
    result = copy.deepcopy(_result())
    result["invariants"][1] = {"name": "paid_orders_have_payments", "ok": False,
                               "detail": "3 paid orders without a payment"}
    result["ok"] = False
    page = _write(result, tmp_path)
    text = " ".join(_parse(page).text)
    assert "INVARIANTS BROKEN" in text
    assert "1 of 2 business invariants broken: paid_orders_have_payments" in text
    assert "3 paid orders without a payment" in text


def test_write_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "report.html"
    path.parent.mkdir(parents=True)
    path.write_text("old")
    write_html_report(_result(), path)
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left


def test_scales_cover_their_data() -> None:
    linear = LinearScale.nice(0, 87.3)
    assert linear.lo == 0 and linear.hi >= 87.3 and linear.ticks()[-1] == linear.hi
    log = LogScale.nice(3.2, 740.0)
    assert (log.lo, log.hi) == (2.0, 1000.0)
    assert log.ticks()[:3] == [2.0, 5.0, 10.0]
    assert log.fraction(log.lo) == 0 and log.fraction(log.hi) == pytest.approx(1.0)


def test_a_long_legend_wraps_and_the_chart_grows() -> None:
    points: list[tuple[float, float | None]] = [(0, 1.0), (1, 2.0)]

    def chart(count: int) -> ET.Element:
        series = [ChartSeries(f"journey_with_a_long_name_{i}", points, "#000")
                  for i in range(count)]
        return ET.fromstring(line_chart(
            series, ChartAxis("x", LinearScale.nice(0, 1)),
            ChartAxis("y", LinearScale.nice(0, 2)), label="legend"))

    one, many = chart(1), chart(12)
    assert float(many.get("height") or 0) > float(one.get("height") or 0)
    legend_x = [float(t.get("x") or 0) for t in many.iter("text") if t.get("class") == "legend"]
    assert max(legend_x) < 960


def test_line_chart_breaks_at_gaps() -> None:
    points: list[tuple[float, float | None]] = [(0, 1.0), (1, 2.0), (2, None), (3, 4.0),
                                                (4, 5.0)]
    svg = ET.fromstring(line_chart(
        [ChartSeries("s", points, "#000")],
        ChartAxis("x", LinearScale.nice(0, 4)), ChartAxis("y", LinearScale.nice(0, 5)),
        label="gaps",
    ))
    assert len(list(svg.iter("polyline"))) == 2


def test_the_sampler_and_what_it_kept_are_shown(tmp_path: Path) -> None:
    result = _result()
    result["tracing"] = {"sampler": "traceidratio 0.1", "traces": 12, "spans": 345}
    text = " ".join(_parse(_write(result, tmp_path)).text)
    assert "spans sampled (traceidratio 0.1)" in text and "345" in text
    result["tracing"] = {"sampler": "always_off", "traces": 0, "spans": 0}
    page = _write(result, tmp_path)
    assert 'card warn"><div class="value">none</div><div class="label">spans sampled ' \
        "(always_off)" in page
