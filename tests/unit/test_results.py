"""The typed result module: every kind round-trips its JSON exactly (unknown fields and key
order included), validation names the field at fault, and the renderers take every kind."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ecomctl.cli.render_result import render_result
from ecomctl.errors import ConfigError
from ecomctl.histogram import LatencyHistogram
from ecomctl.load.result import HDR_FORMAT, LoadConfig, build_result, merge_hdr_documents
from ecomctl.reports.html import render_html_report
from ecomctl.reports.trace_links import TraceLinks
from ecomctl.results import (
    BenchFigure,
    BenchMachine,
    BenchResult,
    BenchRowResult,
    LoadRunResult,
    ResultFormatError,
    SimulationResult,
    parse_result,
    read_result,
    write_result,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gates"


def _hdr(values_ms: list[float]) -> str:
    hist = LatencyHistogram()
    hist.record_many_us(int(v * 1000) for v in values_ms)
    return hist.encode()


def _load_document(**extra: Any) -> dict[str, Any]:
    """A load-run result from the producer's own code (two Locust processes merged)."""
    documents = [
        {"format": HDR_FORMAT, "pid": pid, "hostname": "h", "worker_index": pid, "final": True,
         "started_at": 1000.0, "stopped_at": 1010.0, "latency_origin": "actual start",
         "endpoints": {"GET /api/products/{id}": {"count": 40, "failures": 1,
                                                  "hdr": _hdr([5.0 + i for i in range(40)])},
                       "POST /api/checkout": {"count": 5, "failures": 0,
                                              "hdr": _hdr([80, 90, 120, 150, 400])}},
         "journeys": {"checkout": {"count": 5, "failures": 0, "hdr": _hdr([100] * 5)}},
         "outcomes": {"checkout": {"paid": 4, "payment_declined": 1}},
         "errors": {"503 backend_unavailable": 1}}
        for pid in (1, 2)
    ]
    config = LoadConfig(profile="mixed", locustfile="scenarios/mixed_shop.py", shape=None,
                        users=10, spawn_rate=10.0, duration_s=10.0, workers=2,
                        host="http://127.0.0.1:8000", gateway_started=True)
    result = build_result(merge_hdr_documents(documents), config,
                          started_at=datetime.now(UTC), duration_s=10.0,
                          invariants=[{"name": "money conserved", "ok": True, "detail": "ok"}],
                          drained=True, locust_stats={"requests": 90, "failures": 2})
    result.update(extra)
    return result


def _bench_document() -> dict[str, Any]:
    row, figure = BenchRowResult.measured, BenchFigure.measured
    rows = [row("gateway", "cached GET", figure("bare app", 2000, "requests/s"),
                figure("serve", 600, "requests/s"), 0.5),
            row("consumer-lag", "p99 lag", figure("allowance", 1000, "ms"),
                figure("slowest consumer", 250, "ms"), 1.0, lower_is_better=True)]
    return BenchResult.measured(
        rows, started_at="2024-05-01T10:00:00+00:00", quick=True, duration_s=88.2,
        machine=BenchMachine(cores=2, python="3.11.7", platform="Linux")).to_dict()


def _simulation_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "result.json").read_text())
    return document


def _same_json(a: Any, b: Any) -> bool:
    """Equal, key order included (as the files would be written)."""
    return json.dumps(a) == json.dumps(b)


@pytest.mark.parametrize("make", [_simulation_document, _load_document, _bench_document],
                         ids=["simulation", "load-run", "bench"])
def test_every_kind_round_trips_exactly(make: Any, tmp_path: Path) -> None:
    document = make()
    typed = parse_result(copy.deepcopy(document))
    assert _same_json(typed.to_dict(), document)
    write_result(typed, tmp_path / "copy.json")
    assert (tmp_path / "copy.json").read_text() == json.dumps(document, indent=2) + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["copy.json"]  # no temporary file left
    assert _same_json(read_result(tmp_path / "copy.json").to_dict(), document)


def test_the_records_are_typed_by_kind() -> None:
    load = parse_result(_load_document())
    assert isinstance(load, LoadRunResult) and load.server_side is False  # no spans here
    product = load.endpoints["GET /api/products/{id}"]
    assert (product.count, product.errors, product.rps) == (80, 2, 8.0)
    histogram = product.histogram()
    assert histogram is not None and histogram.count == 80
    assert product.latency.p50_ms == histogram.summary()["p50_ms"]
    assert load.invariants is not None and load.invariants[0].name == "money conserved"
    bench = parse_result(_bench_document())
    assert isinstance(bench, BenchResult)
    assert [(r.name, r.lower_is_better, r.passed) for r in bench.rows] == [
        ("gateway", False, False), ("consumer-lag", True, True)]
    simulation = parse_result(_simulation_document())
    assert isinstance(simulation, SimulationResult)
    assert simulation.config.shoppers == 50 and simulation.totals.checkouts == {"paid": 473}
    assert simulation.extra == {"_note": _simulation_document()["_note"]}


def test_fields_added_by_newer_producers_survive_at_every_level() -> None:
    document = _load_document(
        fault_windows=[{"fault": "redis-down", "start_s": 2.0, "end_s": 5.0}],
        phases={"before": {"p95_ms": 10}}, recovery_s=1.5,
        network_queueing={"POST /api/checkout": {"count": 5, "client_p50_ms": 9.0}},
        timeline=[{"t": 0, "requests": 9, "errors": 0, "checkouts": 1, "p50_ms": 5.0,
                   "p95_ms": 9.0, "p99_ms": 9.0, "brand_new": [1, 2]}],
        something_else={"nested": True},
    )
    document["config"]["new_option"] = "x"
    document["endpoints"]["POST /api/checkout"]["server_p95_ms"] = 41.5
    document["totals"]["new_total"] = 3
    typed = parse_result(copy.deepcopy(document))
    assert isinstance(typed, LoadRunResult)
    assert typed.extra == {"something_else": {"nested": True}}
    assert typed.endpoints["POST /api/checkout"].extra == {"server_p95_ms": 41.5}
    assert typed.timeline is not None and typed.timeline[0].completed == 9
    assert typed.recovery_s == 1.5
    assert _same_json(typed.to_dict(), document)


def test_absent_fields_stay_absent_and_nulls_stay_null() -> None:
    document = _simulation_document()
    assert "timeline" not in document and "kafka" not in document
    document["config"]["sessions"] = None
    assert _same_json(parse_result(copy.deepcopy(document)).to_dict(), document)
    del document["config"]["sessions"]
    assert "sessions" not in parse_result(copy.deepcopy(document)).to_dict()["config"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("totals"), r"^totals: missing$"),
    (lambda d: d["totals"].update(requests="12"),
     r'^totals\.requests: expected an integer, got "12"$'),
    (lambda d: d["endpoints"]["POST /api/checkout"].update(p95_ms="fast"),
     r'^endpoints\["POST /api/checkout"\]\.p95_ms: expected a number, got "fast"$'),
    (lambda d: d["invariants"][0].update(ok="yes"),
     r'^invariants\[0\]\.ok: expected true or false, got "yes"$'),
    (lambda d: d.update(kind="load-walk"),
     r"^kind: 'load-walk' is not a kind of ecomctl\.result/v1"),
    (lambda d: d.update(schema="ecomctl.result/v2"), r"^not an ecomctl result"),
    (lambda d: d.update(ok=None), r"^ok: expected true or false, got null$"),
])
def test_validation_names_the_field(change: Any, message: str) -> None:
    document = _load_document()
    change(document)
    with pytest.raises(ResultFormatError, match=message):
        parse_result(document)


def test_reading_a_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such result file"):
        read_result(tmp_path / "missing.json")
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"garbage\.json: not a JSON result file"):
        read_result(tmp_path / "garbage.json")
    broken = _bench_document()
    broken["rows"][1]["floor"]["value"] = None
    (tmp_path / "bench.json").write_text(json.dumps(broken))
    with pytest.raises(ResultFormatError, match=r"bench\.json: rows\[1\]\.floor\.value: "
                                                r"expected a number, got null"):
        read_result(tmp_path / "bench.json")
    (tmp_path / "bench.json").write_text(json.dumps(_bench_document()))
    with pytest.raises(ResultFormatError, match="a bench result; this command reads "
                                                "checkout-simulate or load-run results"):
        read_result(tmp_path / "bench.json", ("checkout-simulate", "load-run"))


def _svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(f) for f in re.findall(r"<svg\b.*?</svg>", page, flags=re.S)]


def _marks(svg: ET.Element) -> int:
    return sum(1 for e in svg.iter() if e.get("class") in ("mark", "line"))


def test_the_load_run_page_plots_endpoints_and_the_timeline_with_fault_windows() -> None:
    page = render_html_report(_load_document(
        spans=[{"service": "gateway", "name": "POST /api/checkout", "count": 5, "errors": 0,
                "p50_ms": 7.5, "p95_ms": 30.0, "total_ms": 60.0, "self_ms": 2.0}],
        trace_context={"server_spans": 90, "remote_parent": 90, "no_parent": 0},
        cache={"product": {"requests": 80, "hits": 60, "served_by": {"l1": 60, "l3": 20},
                           "hit_ratio": 0.75}},
        trace_file="traces.jsonl",
        timeline=[{"t": t, "requests": 8 + t, "errors": int(t == 3), "checkouts": 1,
                   "p50_ms": 5.0, "p95_ms": 9.0 + t, "p99_ms": 20.0} for t in range(6)],
        fault_windows=[{"fault": "redis-down", "start_s": 2.0, "end_s": 4.0}],
        network_queueing={"POST /api/checkout": {"count": 5, "unmatched": 0,
                                                 "client_p50_ms": 9.0, "server_p50_ms": 7.5}},
    ))
    svgs = {s.get("aria-label"): s for s in _svgs(page)}
    assert set(svgs) == {"latency percentile distribution per endpoint",
                         "latency percentile distribution per journey",
                         "latency percentiles per second", "throughput and errors per second"}
    assert all(_marks(s) > 0 for s in svgs.values())
    # the fault window is shaded behind both timeline charts, named in its tooltip
    for label in ("latency percentiles per second", "throughput and errors per second"):
        bands = [e for e in svgs[label].iter() if e.get("class") == "band-x"]
        assert len(bands) == 1 and "redis-down: 2-4 s" in ET.tostring(bands[0], "unicode")
    for text in ("GET /api/products/{id}", "POST /api/checkout", "money conserved",
                 "503 backend_unavailable", "payment_declined", "ok requests",
                 "Client against server latency", "invariants hold", "l1 60, l3 20"):
        assert text in page


def test_a_fault_phase_p95_links_to_its_exemplars() -> None:
    phase = {"from_s": 0.0, "to_s": 2.0, "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 20.0}
    during = {**phase, "from_s": 2.0, "to_s": 4.0,
              "exemplars": {"p95": [{"trace_id": "d" * 32, "duration_ms": 8.5}]},
              "targets": {"POST /api/checkout": {
                  **phase, "exemplars": {"p95": [{"trace_id": "e" * 32, "duration_ms": 9.0}]}}}}
    page = render_html_report(_load_document(fault_windows=[{
        "fault": "redis-down", "start_s": 2.0, "end_s": 4.0, "before": phase,
        "during": during, "after": phase, "slowed": ["POST /api/checkout"],
        "recovery_s": 1.0}]), TraceLinks("http://127.0.0.1:19411/zipkin"))
    faults = page[page.index('id="faults"'):]
    faults = faults[:faults.index("</section>")]
    hrefs = re.findall(r'class="exemplar" href="([^"]+)"', faults)
    assert hrefs == [f"http://127.0.0.1:19411/zipkin/traces/{c * 32}" for c in "de"]
    assert 'data-lo="5.0" data-hi="9.0"' in faults  # the p95's bucket: (p50, p95]
    # A phase without exemplars (an older result) still shows its p95 (the last column
    # before recovery), without links.
    overall = faults[faults.index("overall p95"):]
    overall = overall[:overall.index("</tr>")]
    assert overall.endswith('<td class="num">9.00</td><td class="num">1 s</td>')
    # Phases are typed: exemplars that do not read as such are refused, by their path.
    with pytest.raises(ResultFormatError, match=r"fault_windows\[0\]\.after\.exemplars\.p95: "
                                                "expected a list"):
        parse_result(_load_document(fault_windows=[{
            "fault": "redis-down", "start_s": 2.0, "end_s": 4.0,
            "after": {**phase, "exemplars": {"p95": "not a list"}}}]))


def test_the_bench_page_draws_one_bar_per_row_against_its_target() -> None:
    page = render_html_report(_bench_document())
    (chart,) = _svgs(page)
    bars = [e for e in chart.iter("rect") if e.get("class") == "mark"]
    assert len(bars) == 2
    assert [b.get("fill") for b in bars] == ["#e15759", "#59a14f"]  # 0.3x < 0.5, 4x >= 1
    assert "TARGETS MISSED" in page and "1 of 2 rows below target" in page
    assert "0.3x" in page and "slowest consumer" in page


@pytest.mark.parametrize("make", [_simulation_document, _load_document, _bench_document],
                         ids=["simulation", "load-run", "bench"])
def test_the_terminal_renders_every_kind(make: Any) -> None:
    console = Console(record=True, width=200)
    render_result(parse_result(make()), console)
    text = console.export_text()
    expected = {_simulation_document: "business invariants", _load_document: "endpoints",
                _bench_document: "ecomctl bench (quick"}[make]
    assert expected in text


def test_the_terminal_shows_each_fault_window_and_what_it_slowed() -> None:
    phase: dict[str, object] = {"count": 40, "errors": 0, "error_rate": 0.0, "p50_ms": 5.0,
                                "p95_ms": 9.0, "p99_ms": 20.0, "checkouts_per_s": 1.5}
    slow = {**phase, "errors": 4, "error_rate": 0.1, "p95_ms": 480.0,
            "targets": {"POST /api/checkout": {**phase, "p95_ms": 900.0}}}
    phase = {**phase, "targets": {"POST /api/checkout": dict(phase)}}
    document = _load_document(
        fault_windows=[
            {"fault": "payment-slow=800", "start_s": 2.0, "end_s": 4.0, "before": phase,
             "during": slow, "after": phase, "slowed": ["POST /api/checkout"],
             "recovery_s": 1.5, "recovery_of": "POST /api/checkout"},
            {"fault": "redis-down", "scheduled_start_s": 30.0, "scheduled_length_s": 5.0,
             "start_s": None, "end_s": None}],
        phases={"before": phase, "during": slow, "after": phase}, recovery_s=None)
    console = Console(record=True, width=200)
    render_result(parse_result(document), console)
    text = console.export_text()
    window = next(line for line in text.splitlines() if "payment-slow=800" in line)
    assert "2.0-4.0s" in window and "480" in window and "1.5s" in window
    assert "not reached" in text
    assert "payment-slow=800 slowed POST /api/checkout: p95 9 -> 900 -> 9 ms" in text
    assert "recovery measured on: POST /api/checkout" in text
    assert "all windows: before p95 9 ms  during p95 480 ms  after p95 9 ms; recovery " \
           "not recovered" in text
