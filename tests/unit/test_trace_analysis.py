"""Trace analysis on constructed span trees: detectors (positive and negative), self time,
the critical path, histograms, and the readers of every supported format."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToJson
from hdrh.histogram import HdrHistogram
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ecomctl.analysis.critical_path import critical_path, path_time_by_operation
from ecomctl.analysis.detectors import (
    ERROR_HOT_SPOT,
    N_PLUS_ONE,
    ORPHAN_SPANS,
    SEQUENTIAL_CALLS,
    detect_error_hot_spots,
    detect_n_plus_one,
    detect_orphans,
    detect_sequential_calls,
    statement_shape,
)
from ecomctl.analysis.model import SpanRecord, Trace, group_traces
from ecomctl.analysis.readers import (
    from_sdk_spans,
    jaeger_base_url,
    load_spans,
    parse_lookback,
    parse_text,
    read_file,
)
from ecomctl.analysis.report import SCHEMA, analyze
from ecomctl.analysis.stats import operation_stats, self_time_ns, sort_operations
from ecomctl.errors import ConfigError
from ecomctl.histogram import LatencyHistogram
from ecomctl.telemetry.trace_store import (
    OtlpJsonLinesExporter,
    latest_trace_file,
    trace_store_dir,
)
from tests.spans import MS, T0, TRACE, otlp_document, span_record


def sid(n: int) -> str:
    return format(n, "016x")


def select(span_id: int, parent: int, start_ms: float, duration_ms: float, statement: str
           ) -> SpanRecord:
    return span_record(span_id, parent, start_ms, start_ms + duration_ms, "SELECT",
                       service="product", kind="CLIENT", db__system="postgresql",
                       db__statement=statement)


def one_trace(*spans: SpanRecord) -> Trace:
    (trace,) = group_traces(spans)
    return trace


# -- N+1 ----------------------------------------------------------------------------------------


def _n_selects(count: int, each_ms: float, statement: str = "SELECT * FROM products WHERE id = {i}"
               ) -> list[SpanRecord]:
    root = span_record(1, None, 0, 200, "checkout.complete", service="checkout")
    kids = [
        select(10 + i, 1, 1 + i * (each_ms + 0.1), each_ms, statement.format(i=i + 7))
        for i in range(count)
    ]
    return [root, *kids]


def test_five_identical_selects_totalling_60_ms_are_an_n_plus_one() -> None:
    findings = detect_n_plus_one([one_trace(*_n_selects(5, 12.0))])
    assert len(findings) == 1
    finding = findings[0]
    assert finding.detector == N_PLUS_ONE
    assert finding.trace_id == TRACE
    assert finding.span_ids == [sid(10 + i) for i in range(5)]
    assert finding.details["statement_shape"] == "SELECT * FROM products WHERE id = ?"
    assert finding.details["count"] == 5
    assert finding.details["total_ms"] == pytest.approx(60.0)
    assert finding.details["parent_span_id"] == sid(1)


def test_four_selects_are_not_an_n_plus_one_however_long() -> None:
    assert detect_n_plus_one([one_trace(*_n_selects(4, 15.0))]) == []


def test_five_selects_totalling_20_ms_are_not_an_n_plus_one() -> None:
    assert detect_n_plus_one([one_trace(*_n_selects(5, 4.0))]) == []


def test_different_statement_shapes_are_not_an_n_plus_one() -> None:
    root = span_record(1, None, 0, 200, "checkout.complete")
    tables = ["products", "users", "orders", "carts", "payments"]
    kids = [select(10 + i, 1, i * 13, 12, f"SELECT * FROM {t} WHERE id = {i}")
            for i, t in enumerate(tables)]
    assert detect_n_plus_one([one_trace(root, *kids)]) == []


def test_n_plus_one_needs_the_same_parent() -> None:
    root = span_record(1, None, 0, 200)
    a = span_record(2, 1, 0, 100)
    b = span_record(3, 1, 100, 200)
    kids = [select(10 + i, 2 if i < 3 else 3, i * 13, 12, f"SELECT 1 FROM t WHERE id = {i}")
            for i in range(6)]
    assert detect_n_plus_one([one_trace(root, a, b, *kids)]) == []


def test_n_plus_one_thresholds_are_parameters() -> None:
    trace = one_trace(*_n_selects(4, 5.0))
    assert len(detect_n_plus_one([trace], min_spans=4, min_total_ms=20.0)) == 1


def test_n_plus_one_counts_redis_and_new_semconv_database_spans() -> None:
    root = span_record(1, None, 0, 200)
    kids = [span_record(10 + i, 1, i * 12, i * 12 + 11, "GET", kind="CLIENT",
                        db__system__name="redis", db__query__text="GET ?") for i in range(5)]
    (finding,) = detect_n_plus_one([one_trace(root, *kids)])
    assert finding.details["db_system"] == "redis"


@pytest.mark.parametrize(
    ("statement", "shape"),
    [
        ("SELECT * FROM t WHERE id = 42", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE name = 'O''Brien' AND x = -1.5e3",
         "SELECT * FROM t WHERE name = ? AND x = ?"),
        ("SELECT * FROM t WHERE id = $1 AND k = $12", "SELECT * FROM t WHERE id = ? AND k = ?"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
        ("SELECT * FROM t WHERE id IN ($1,$2)", "SELECT * FROM t WHERE id IN (?)"),
        ("SELECT * FROM t WHERE id = ANY($1::bigint[])", "SELECT * FROM t WHERE id = ANY(?)"),
        ("SELECT * FROM t WHERE id = ANY(ARRAY[1,2,3])", "SELECT * FROM t WHERE id = ANY(?)"),
        ("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')", "INSERT INTO t (a, b) VALUES (?)"),
        ("SELECT t1.c2 FROM t1  /* hint */ WHERE\n  t1.id = 5 -- note",
         "SELECT t1.c2 FROM t1 WHERE t1.id = ?"),
    ],
)
def test_statement_shape_strips_literals(statement: str, shape: str) -> None:
    assert statement_shape(statement) == shape


# -- sequential calls ---------------------------------------------------------------------------


def _parent_with(children: list[SpanRecord], parent_ms: float = 100) -> Trace:
    return one_trace(span_record(1, None, 0, parent_ms, "recommendations.for_product"),
                     *children)


def test_sequential_independent_reads_are_found() -> None:
    kids = [
        select(10, 1, 1.0, 10, "SELECT * FROM products WHERE id = 1"),
        span_record(11, 1, 11.5, 21.5, "GET", kind="CLIENT", db__system="redis",
                    db__statement="GET ?"),
        span_record(12, 1, 22.0, 32.0, "search", kind="CLIENT",
                    db__system__name="elasticsearch", db__operation__name="search"),
    ]
    (finding,) = detect_sequential_calls([_parent_with(kids)])
    assert finding.detector == SEQUENTIAL_CALLS
    assert finding.span_ids == [sid(10), sid(11), sid(12)]
    assert finding.details["distinct_targets"] == 3
    assert finding.details["total_ms"] == pytest.approx(30.0)
    assert finding.details["saving_ms"] == pytest.approx(20.0)


def test_overlapping_siblings_are_not_sequential() -> None:
    kids = [
        select(10, 1, 1.0, 10, "SELECT * FROM a WHERE id = 1"),
        select(11, 1, 5.0, 10, "SELECT * FROM b WHERE id = 1"),
        select(12, 1, 9.0, 10, "SELECT * FROM c WHERE id = 1"),
    ]
    assert detect_sequential_calls([_parent_with(kids)]) == []


def test_sequential_calls_with_gaps_or_writes_or_too_little_time_are_not_reported() -> None:
    gaps = [select(10 + i, 1, 1 + i * 12.0, 10, f"SELECT * FROM t{i}") for i in range(3)]
    assert detect_sequential_calls([_parent_with(gaps)]) == []  # 2 ms between calls
    writes = [
        span_record(10 + i, 1, 1 + i * 10.5, 1 + i * 10.5 + 10, "UPDATE", kind="CLIENT",
                    db__system="postgresql", db__statement=f"UPDATE t{i} SET x = 1")
        for i in range(3)
    ]
    assert detect_sequential_calls([_parent_with(writes)]) == []
    brief = [select(10 + i, 1, 1 + i * 5.5, 5, f"SELECT * FROM t{i}") for i in range(3)]
    assert detect_sequential_calls([_parent_with(brief)]) == []  # 15 ms < 20 ms
    small_share = [select(10 + i, 1, 1 + i * 10.5, 10, f"SELECT * FROM t{i}") for i in range(3)]
    assert detect_sequential_calls([_parent_with(small_share, parent_ms=200)]) == []  # 15%


def test_a_write_between_reads_breaks_the_run() -> None:
    kids = [
        select(10, 1, 1.0, 10, "SELECT * FROM a"),
        select(11, 1, 11.5, 10, "SELECT * FROM b"),
        span_record(12, 1, 22.0, 32.0, "POST", kind="CLIENT", http__request__method="POST",
                    url__full="http://pay/charge"),
        select(13, 1, 32.5, 10, "SELECT * FROM c"),
        span_record(14, 1, 43.0, 53.0, "GET", kind="CLIENT", http__request__method="GET",
                    url__full="http://stock/1"),
        select(15, 1, 53.5, 10, "SELECT * FROM d FOR UPDATE"),
    ]
    trace = _parent_with(kids, parent_ms=64)
    # Six calls back to back, but the POST and the SELECT ... FOR UPDATE are not reads.
    assert detect_sequential_calls([trace]) == []
    pairs = detect_sequential_calls([trace], min_calls=2)
    assert [f.span_ids for f in pairs] == [[sid(10), sid(11)], [sid(13), sid(14)]]
    assert pairs[1].details["targets"] == ["postgresql: SELECT * FROM c", "HTTP GET http://stock/1"]


# -- orphans and errors -------------------------------------------------------------------------


def test_orphan_spans_are_spans_whose_parent_is_missing() -> None:
    trace = one_trace(span_record(1, None, 0, 10), span_record(2, 1, 1, 5),
                      span_record(3, 99, 2, 4, "process"))
    assert [s.span_id for s in trace.orphans] == [sid(3)]
    assert [s.span_id for s in trace.roots] == [sid(1)]
    (finding,) = detect_orphans([trace])
    assert finding.detector == ORPHAN_SPANS
    assert finding.span_ids == [sid(3)]
    assert finding.details["missing_parent_ids"] == [sid(99)]
    assert detect_orphans([one_trace(span_record(1, None, 0, 10), span_record(2, 1, 1, 5))]) == []


def _calls(errors: int, calls: int, message: str = "gateway timeout") -> list[Trace]:
    spans = [
        span_record(i + 1, None, i * 10, i * 10 + 5, "payment.charge", service="payment",
                    status="ERROR" if i < errors else "OK",
                    message=message if i < errors else "", trace_id=format(i + 1, "032x"))
        for i in range(calls)
    ]
    return group_traces(spans)


def test_error_hot_spot_at_5_percent_over_10_calls() -> None:
    traces = _calls(errors=1, calls=20)
    (finding,) = detect_error_hot_spots(operation_stats(traces))
    assert finding.detector == ERROR_HOT_SPOT
    assert finding.details["errors"] == 1
    assert finding.details["error_rate"] == 0.05
    assert finding.details["top_messages"] == [{"message": "gateway timeout", "count": 1}]
    assert finding.details["example_trace_ids"] == [format(1, "032x")]
    assert finding.severity == "warning"


def test_no_error_hot_spot_below_the_rate_or_the_call_count() -> None:
    assert detect_error_hot_spots(operation_stats(_calls(errors=1, calls=30))) == []
    assert detect_error_hot_spots(operation_stats(_calls(errors=9, calls=9))) == []
    assert len(detect_error_hot_spots(operation_stats(_calls(9, 9)), min_calls=5)) == 1


def test_error_hot_spot_groups_messages_by_frequency() -> None:
    spans = [
        span_record(i + 1, None, i, i + 1, "charge", status="ERROR",
                    message="declined" if i % 3 else "timeout", trace_id=format(i + 1, "032x"))
        for i in range(12)
    ]
    (finding,) = detect_error_hot_spots(operation_stats(group_traces(spans)))
    assert finding.severity == "error"
    assert finding.details["top_messages"] == [
        {"message": "declined", "count": 8}, {"message": "timeout", "count": 4}]


# -- self time and operation statistics ---------------------------------------------------------


def test_self_time_subtracts_the_union_of_children_clipped_to_the_parent() -> None:
    trace = one_trace(
        span_record(1, None, 0, 100, "parent"),
        span_record(2, 1, 10, 50),
        span_record(3, 1, 30, 70),    # overlaps the first child: not subtracted twice
        span_record(4, 1, 90, 120),   # outlives the parent: only 10 ms count
        span_record(5, 3, 40, 60),    # a grandchild: the child's business, not the parent's
    )
    parent = trace.by_id[sid(1)]
    assert self_time_ns(trace, parent) == 30 * MS
    assert self_time_ns(trace, trace.by_id[sid(3)]) == 20 * MS
    stats = {op.name: op for op in operation_stats([trace])}
    assert stats["parent"].self_ns == 30 * MS
    assert stats["parent"].total_ns == 100 * MS
    assert stats["op"].count == 4
    assert stats["op"].self_ns == (40 + 20 + 30 + 20) * MS


def test_operation_stats_keep_the_spread_of_self_time_per_call() -> None:
    """The sum of squared self times gives each operation's variance of self time per call:
    a parent's children are taken out of each call before it is squared."""
    traces = group_traces([
        span_record(1, None, 0, 100, "parent", trace_id=1),
        span_record(2, 1, 10, 50, trace_id=1),        # parent's self: 60 ms
        span_record(3, None, 0, 30, "parent", trace_id=2),
        span_record(4, 3, 0, 20, trace_id=2),         # parent's self: 10 ms
        span_record(5, None, 0, 50, "parent", trace_id=3),  # no child: 50 ms
    ])
    stats = {op.name: op for op in operation_stats(traces)}
    parent, child = stats["parent"], stats["op"]
    assert parent.self_ns == 120 * MS
    assert parent.self_sq_ns2 == (60**2 + 10**2 + 50**2) * MS * MS
    assert parent.self_variance_ns2 == pytest.approx(statistics.variance([60, 10, 50]) * MS**2)
    assert child.self_variance_ns2 == pytest.approx(statistics.variance([40, 20]) * MS**2)
    lone = operation_stats([one_trace(span_record(1, None, 0, 5, "lone"))])[0]
    assert lone.count == 1 and lone.self_variance_ns2 is None  # no spread from one call


def test_operation_stats_percentiles_and_sorting() -> None:
    spans = [span_record(i + 1, None, 0, (i + 1) * 1.0, "fast" if i < 100 else "slow",
                         trace_id=format(i + 1, "032x")) for i in range(110)]
    ops = operation_stats(group_traces(spans))
    by_name = {op.name: op for op in ops}
    assert by_name["fast"].histogram.percentile_ms(50) == pytest.approx(50.0, rel=1e-3)
    assert by_name["fast"].histogram.percentile_ms(95) == pytest.approx(95.0, rel=1e-3)
    assert [op.name for op in sort_operations(ops, "p95")] == ["slow", "fast"]
    assert [op.name for op in sort_operations(ops, "count")] == ["fast", "slow"]
    assert [op.name for op in sort_operations(ops, "total")] == ["fast", "slow"]


# -- critical path ------------------------------------------------------------------------------


def _path_tree() -> Trace:
    #  A [0,100]
    #  ├── B [10,40] ── D [15,35]
    #  └── C [20,90] ├── E [30,60]
    #                └── F [65,85]
    return one_trace(
        span_record(1, None, 0, 100, "A"), span_record(2, 1, 10, 40, "B"),
        span_record(3, 1, 20, 90, "C"), span_record(4, 2, 15, 35, "D"),
        span_record(5, 3, 30, 60, "E"), span_record(6, 3, 65, 85, "F"),
    )


def test_critical_path_on_a_hand_made_tree() -> None:
    path = critical_path(_path_tree())
    got = [(s.name, (a - T0) // MS, (b - T0) // MS) for s, a, b in path.segments]
    assert got == [("A", 0, 20), ("C", 20, 30), ("E", 30, 60), ("C", 60, 65), ("F", 65, 85),
                   ("C", 85, 90), ("A", 90, 100)]
    assert path.total_ns == 100 * MS
    assert dict(((n, ns // MS) for (_, n), ns in path.by_operation())) == {
        "A": 30, "C": 20, "E": 30, "F": 20}
    assert path.span_ids == {sid(1), sid(3), sid(5), sid(6)}
    assert path_time_by_operation([_path_tree()]) == {
        ("svc", k): v * MS for k, v in {"A": 30, "C": 20, "E": 30, "F": 20}.items()}


def test_critical_path_clips_overflowing_children_and_drops_outside_ones() -> None:
    trace = one_trace(
        span_record(1, None, 0, 100, "root"),
        span_record(2, 1, 50, 130, "async"),      # outlives the root: clipped to [50, 100]
        span_record(3, 1, 10, 40, "early"),
        span_record(4, 1, 110, 150, "after"),     # wholly after the root: dropped
    )
    got = [(s.name, (a - T0) // MS, (b - T0) // MS) for s, a, b in critical_path(trace).segments]
    assert got == [("root", 0, 10), ("early", 10, 40), ("root", 40, 50), ("async", 50, 100)]


def test_critical_path_skips_a_sibling_ending_after_the_point() -> None:
    # Concurrent children: the one that ends last is on the path, the other is not, and the
    # parent's time before the last one started is attributed to the parent.
    trace = one_trace(span_record(1, None, 0, 100, "root"), span_record(2, 1, 10, 90, "long"),
                      span_record(3, 1, 20, 60, "short"))
    got = [(s.name, (a - T0) // MS, (b - T0) // MS) for s, a, b in critical_path(trace).segments]
    assert got == [("root", 0, 10), ("long", 10, 90), ("root", 90, 100)]


# -- histograms -----------------------------------------------------------------------------------


def test_merged_histograms_equal_one_histogram_of_all_samples() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(8, 1.5) for _ in range(20_000)]  # µs, ~3 ms median
    whole = LatencyHistogram()
    whole.record_many_us(int(v) for v in samples)
    first, second = LatencyHistogram(), LatencyHistogram()
    first.record_many_us(int(v) for v in samples[:7_000])
    second.record_many_us(int(v) for v in samples[7_000:])
    merged = LatencyHistogram().merge(first).merge(second)
    assert merged.summary() == whole.summary()
    assert merged.count == 20_000
    # Through the wire format, as load workers send them.
    over_wire = LatencyHistogram.decode(first.encode()).merge(
        LatencyHistogram.decode(second.encode()))
    assert over_wire.summary() == whole.summary()
    # Within HDR precision (3 significant figures) of the exact percentiles.
    exact = sorted(int(v) for v in samples)
    for q in (50, 90, 99, 99.9):
        rank = max(int(q / 100 * len(exact) + 0.5), 1) - 1
        assert merged.percentile_ms(q) == pytest.approx(exact[rank] / 1000, rel=2e-3)


def test_histogram_agrees_with_the_hdrhistogram_reference() -> None:
    rng = random.Random(3)
    values = [rng.randint(1, 5_000_000) for _ in range(5_000)] + [1, 3_600_000_000]
    reference = HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        reference.record_value(v)
    ours = LatencyHistogram()
    ours.record_many_us(values)
    for q in (0, 1, 25, 50, 75, 90, 99, 99.9, 100):
        assert ours.percentiles_us([q])[q] == reference.get_value_at_percentile(q)
    assert ours.mean_us == pytest.approx(reference.get_mean_value())
    assert ours.max_us == reference.get_max_value()
    assert ours.min_us == reference.get_min_value()


def test_histogram_units_clamping_and_empty_summary() -> None:
    h = LatencyHistogram()
    assert h.summary()["p99_ms"] is None and h.count == 0
    h.record_ns(2_500_000)
    h.record_s(0.004)
    h.record_us(0)            # a zero duration still counts (as 1 µs)
    h.record_us(10**12)       # beyond an hour: clamped
    s = h.summary()
    assert s["count"] == 4
    assert s["min_ms"] == 0.001
    assert s["p50_ms"] == pytest.approx(2.5, rel=1e-3)
    assert s["max_ms"] == pytest.approx(3_600_000, rel=1e-3)
    empty_first = LatencyHistogram().merge(h)
    assert empty_first.summary() == s
    with pytest.raises(ValueError, match="HdrHistogram"):
        LatencyHistogram.decode("not a histogram")


# -- the trace store and the readers --------------------------------------------------------------


def _sdk_trace(processor_for: Any) -> None:
    """A small two-service trace with every attribute type, events, links, errors."""
    providers = {
        name: TracerProvider(resource=Resource.create({"service.name": name}))
        for name in ("gateway", "product")
    }
    for provider in providers.values():
        for processor in processor_for():
            provider.add_span_processor(processor)
    gateway = providers["gateway"].get_tracer("ecomctl.tests", "1.0")
    product = providers["product"].get_tracer("ecomctl.tests")
    with gateway.start_as_current_span(
        "GET /api/products/{id}", kind=SpanKind.SERVER,
        attributes={"http.route": "/api/products/{id}", "http.response.status_code": 200,
                    "ratio": 0.25, "cached": True, "tags": ["a", "b"], "ids": [1, 2, 3]},
    ) as root:
        root.add_event("cache miss", {"ecom.cache.level": "l1"})
        with product.start_as_current_span(
            "SELECT", kind=SpanKind.CLIENT, links=[Link(root.get_span_context())],
            attributes={"db.system": "postgresql", "db.statement": "SELECT 1"},
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "relation missing"))
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()


def _by_id(spans: list[SpanRecord]) -> list[SpanRecord]:
    return sorted(spans, key=lambda s: s.span_id)


def test_otlp_json_lines_round_trip(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    exporter = OtlpJsonLinesExporter(tmp_path / "store" / "run.jsonl")
    _sdk_trace(lambda: [SimpleSpanProcessor(memory), SimpleSpanProcessor(exporter)])
    exporter.shutdown()
    expected = _by_id(from_sdk_spans(memory.get_finished_spans()))
    got = _by_id(read_file(tmp_path / "store" / "run.jsonl"))
    assert got == expected
    assert {s.kind for s in got} == {"SERVER", "CLIENT"}
    assert got[0].attributes or got[1].attributes
    child = next(s for s in got if s.name == "SELECT")
    assert child.status == "ERROR" and child.status_message == "relation missing"
    assert child.links == [(child.trace_id, child.parent_span_id)]
    # Spec-shaped: one document per batch, hex ids, 64-bit numbers as strings, int enums.
    lines = (tmp_path / "store" / "run.jsonl").read_text().splitlines()
    assert len(lines) == 2  # SimpleSpanProcessor: a batch per span
    doc = json.loads(lines[0])
    (resource_spans,) = doc["resourceSpans"]
    (scope_spans,) = resource_spans["scopeSpans"]
    (first,) = scope_spans["spans"]
    assert scope_spans["scope"] == {"name": "ecomctl.tests"}
    assert first["kind"] == 3 and first["status"] == {"code": 2, "message": "relation missing"}
    assert isinstance(first["startTimeUnixNano"], str) and len(first["traceId"]) == 32
    assert {"key": "db.system", "value": {"stringValue": "postgresql"}} in first["attributes"]


def test_batched_export_groups_spans_by_resource_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "batched.jsonl"
    exporter = OtlpJsonLinesExporter(path)
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=60_000)
    _sdk_trace(lambda: [processor])
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    services = [
        next(a["value"]["stringValue"] for a in rs["resource"]["attributes"]
             if a["key"] == "service.name")
        for rs in json.loads(lines[0])["resourceSpans"]
    ]
    assert sorted(services) == ["gateway", "product"]
    assert len(read_file(path)) == 2


def test_base64_ids_from_protobuf_json_format() -> None:
    memory = InMemorySpanExporter()
    _sdk_trace(lambda: [SimpleSpanProcessor(memory)])
    finished: list[ReadableSpan] = list(memory.get_finished_spans())
    text = MessageToJson(encode_spans(finished))
    assert '"traceId"' in text and "==" in text  # base64, as json_format writes bytes
    assert _by_id(parse_text(text)) == _by_id(from_sdk_spans(finished))
    snake = MessageToJson(encode_spans(finished), preserving_proto_field_name=True)
    assert '"resource_spans"' in snake
    assert _by_id(parse_text(snake)) == _by_id(from_sdk_spans(finished))


def test_console_span_exporter_output() -> None:
    memory = InMemorySpanExporter()
    out = io.StringIO()
    _sdk_trace(lambda: [SimpleSpanProcessor(memory), SimpleSpanProcessor(
        ConsoleSpanExporter(out=out))])
    got = _by_id(parse_text(out.getvalue()))
    expected = _by_id(from_sdk_spans(memory.get_finished_spans()))
    assert [s.span_id for s in got] == [s.span_id for s in expected]
    for ours, theirs in zip(got, expected, strict=True):
        # The console exporter prints times rounded to the microsecond.
        assert abs(ours.start_ns - theirs.start_ns) <= 1000
        assert abs(ours.end_ns - theirs.end_ns) <= 1000
        assert (ours.trace_id, ours.parent_span_id, ours.name, ours.service, ours.kind,
                ours.status, ours.status_message, ours.attributes, ours.links) == (
            theirs.trace_id, theirs.parent_span_id, theirs.name, theirs.service, theirs.kind,
            theirs.status, theirs.status_message, theirs.attributes, theirs.links)


def test_jaeger_api_response() -> None:
    response = {
        "data": [{
            "traceID": "a3ce929d0e0e4736",  # Jaeger drops leading zeros of 64-bit ids
            "spans": [
                {"traceID": "a3ce929d0e0e4736", "spanID": "1", "operationName": "GET /x",
                 "references": [], "startTime": 1_700_000_000_000_000, "duration": 5_000,
                 "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                          {"key": "http.response.status_code", "type": "int64", "value": 500},
                          {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                          {"key": "otel.status_description", "type": "string", "value": "x"}],
                 "processID": "p1"},
                {"traceID": "a3ce929d0e0e4736", "spanID": "2", "operationName": "SELECT",
                 "references": [
                     {"refType": "CHILD_OF", "traceID": "a3ce929d0e0e4736", "spanID": "1"},
                     {"refType": "FOLLOWS_FROM", "traceID": "ff", "spanID": "9"}],
                 "startTime": 1_700_000_000_001_000, "duration": 2_000,
                 "tags": [{"key": "error", "type": "bool", "value": True}],
                 "processID": "p2"},
            ],
            "processes": {"p1": {"serviceName": "gateway", "tags": []},
                          "p2": {"serviceName": "product", "tags": []}},
        }],
        "total": 0, "limit": 0, "offset": 0, "errors": None,
    }
    root, child = sorted(parse_text(json.dumps(response)), key=lambda s: s.start_ns)
    assert root.trace_id == "0000000000000000a3ce929d0e0e4736"
    assert (root.kind, root.status, root.status_message, root.service) == (
        "SERVER", "ERROR", "x", "gateway")
    assert root.attributes == {"http.response.status_code": 500}
    assert root.end_ns - root.start_ns == 5 * MS
    assert child.parent_span_id == root.span_id == "0000000000000001"
    assert child.links == [("000000000000000000000000000000ff", "0000000000000009")]
    assert child.status == "ERROR" and child.service == "product"


def test_unreadable_input_says_where(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"resourceSpans": []}\n{"resourceSpans": [}\n')
    with pytest.raises(ConfigError, match=r"bad.jsonl: line 2 .*not valid JSON"):
        read_file(bad)
    unknown = tmp_path / "unknown.json"
    unknown.write_text('\n\n{"hello": 1}')
    with pytest.raises(ConfigError, match=r"line 3 .*not a span document"):
        read_file(unknown)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"00f067aa0ba902b7"'
                       ',"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}')
    with pytest.raises(ConfigError, match=r"line 1 .*malformed OTLP JSON: missing field 'traceId'"):
        read_file(missing)
    bad_id = tmp_path / "bad_id.jsonl"
    bad_id.write_text(missing.read_text().replace('"spanId"', '"traceId":"xyz","spanId"'))
    with pytest.raises(ConfigError, match=r"trace id 'xyz' is neither 32 hex digits nor base64"):
        read_file(bad_id)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_file(binary)
    with pytest.raises(ConfigError, match="no such file"):
        load_spans(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ConfigError, match="needs a service"):
        load_spans("jaeger://127.0.0.1:17686")
    with pytest.raises(ConfigError, match="jaeger://HOST:PORT"):
        jaeger_base_url("jaeger://nohostport")
    assert parse_lookback("90m") == 90 * 60_000_000
    with pytest.raises(ConfigError, match="lookback"):
        parse_lookback("soon")


def test_load_spans_from_a_directory_with_service_and_limit(tmp_path: Path) -> None:
    def doc(trace: int, service: str, start_ms: int) -> str:
        # The span spelled by hand, as some writers do: enum names for the kind and status
        # code, and an end time that is a number, not a string.
        return json.dumps(otlp_document(service, [{
            "traceId": format(trace, "032x"), "spanId": format(trace, "016x"),
            "name": "op", "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": str(T0 + start_ms * MS),
            "endTimeUnixNano": T0 + start_ms * MS + MS,
            "status": {"code": "STATUS_CODE_OK"}}]))

    (tmp_path / "a.jsonl").write_text(doc(1, "cart", 0) + "\n" + doc(2, "search", 10) + "\n")
    (tmp_path / "b.json").write_text(json.dumps([json.loads(doc(3, "cart", 20))], indent=2))
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(load_spans(tmp_path)) == 3
    assert {s.trace_id[-1] for s in load_spans(tmp_path, service="cart")} == {"1", "3"}
    assert [s.trace_id[-1] for s in load_spans(tmp_path, limit=1)] == ["3"]
    assert {s.kind for s in load_spans(tmp_path)} == {"SERVER"}
    assert {s.status for s in load_spans(tmp_path)} == {"OK"}


def test_trace_store_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert trace_store_dir({"ECOMCTL_HOME": str(tmp_path)}) == tmp_path / "traces"
    assert trace_store_dir({"ECOMCTL_TRACE_DIR": str(tmp_path / "t")}) == tmp_path / "t"
    monkeypatch.setenv("ECOMCTL_TRACE_DIR", str(tmp_path / "store"))
    assert latest_trace_file() is None
    (tmp_path / "store").mkdir()
    older, newer = tmp_path / "store" / "a.jsonl", tmp_path / "store" / "b.jsonl"
    older.write_text("")
    newer.write_text("")
    import os

    os.utime(older, ns=(2_000_000_000_000_000_000, 2_000_000_000_000_000_000))
    assert latest_trace_file() == older


# -- grouping and the report --------------------------------------------------------------------


def test_span_records_are_frozen_values() -> None:
    record = span_record(1, None, 5, 10, "GET /x", service="gateway")
    assert record.duration_ns == 5 * MS and record.operation == ("gateway", "GET /x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "other"  # type: ignore[misc]
    assert record == span_record(1, None, 5, 10, "GET /x", service="gateway")
    assert len({record, span_record(1, None, 5, 10, "GET /x", service="gateway")}) == 1


def test_group_traces_dedupes_and_orders() -> None:
    a = span_record(1, None, 5, 10, trace_id="1" * 32)
    b = span_record(2, None, 0, 3, trace_id="2" * 32)
    traces = group_traces([a, b, a, span_record(3, 1, 6, 7, trace_id="1" * 32)])
    assert [t.trace_id for t in traces] == ["2" * 32, "1" * 32]
    assert len(traces[1].spans) == 2
    assert traces[1].children[sid(1)][0].span_id == sid(3)
    assert traces[1].duration_ns == 5 * MS and traces[1].root == a
    # A child starting at the same instant as its parent, listed first, still finds it.
    same = one_trace(span_record(5, 4, 0, 1), span_record(4, None, 0, 2))
    assert same.orphans == [] and [s.span_id for s in same.children[sid(4)]] == [sid(5)]
    assert [(s.span_id, d) for s, d in same.walk()] == [(sid(4), 0), (sid(5), 1)]


def test_analyze_to_dict_is_json_and_complete() -> None:
    n_plus_one = _n_selects(5, 12.0)
    errors = [s for t in _calls(errors=3, calls=12) for s in t.spans]
    orphan = [span_record(500, 12345, 0, 1, "late", trace_id="9" * 32)]
    result = analyze(group_traces([*n_plus_one, *errors, *orphan]), top=5)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["schema"] == SCHEMA
    assert data["counts"] == {"traces": 14, "spans": 6 + 12 + 1, "services": 4, "orphans": 1,
                              "error_spans": 3, "traces_with_errors": 3}
    assert data["finding_counts"] == {N_PLUS_ONE: 1, SEQUENTIAL_CALLS: 1, ORPHAN_SPANS: 1,
                                      ERROR_HOT_SPOT: 1}
    assert {f["detector"] for f in data["findings"]} == {
        N_PLUS_ONE, SEQUENTIAL_CALLS, ORPHAN_SPANS, ERROR_HOT_SPOT}
    (slowest, *_) = data["critical_path"]["slowest_traces"]
    assert slowest["trace_id"] == TRACE and slowest["duration_ms"] == 200.0
    assert sum(seg["duration_ms"] for seg in slowest["segments"]) == pytest.approx(200.0)
    ops = {(op["service"], op["name"]): op for op in data["operations"]}
    assert ops[("product", "SELECT")]["count"] == 5
    assert ops[("product", "SELECT")]["p50_ms"] == pytest.approx(12.0, rel=1e-3)
    assert set(ops[("product", "SELECT")]) == {
        "service", "name", "count", "errors", "error_rate", "min_ms", "mean_ms", "p50_ms",
        "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "total_ms", "self_ms"}
    assert data["trace_latency"]["count"] == 14
    assert data["critical_path"]["overall"][0]["name"] in {"SELECT", "checkout.complete"}


def test_analyze_of_nothing() -> None:
    data = analyze([]).to_dict()
    assert data["counts"]["spans"] == 0 and data["operations"] == []
    assert data["critical_path"] == {"overall": [], "slowest_traces": []}
