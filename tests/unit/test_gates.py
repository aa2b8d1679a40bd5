"""Performance gates: the gates file (valid and invalid, every error naming its line),
thresholds and units, evaluation against constructed result documents and spans, baseline
comparison with relative AND absolute thresholds, and JUnit XML that parsers accept."""

from __future__ import annotations

import random
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml, Skipped, TestSuite

from ecomctl.errors import ConfigError
from ecomctl.gates import (
    COMPARE_SUITE,
    GATES_SUITE,
    CompareOptions,
    GatesFileError,
    cases_from_comparison,
    cases_from_report,
    load_gates,
    parse_gates,
    write_junit,
)
from ecomctl.gates import compare_results as compare_records
from ecomctl.gates import evaluate as evaluate_record
from ecomctl.gates.compare import Comparison, describe_delta, latency_verdict
from ecomctl.gates.evaluate import GateReport, evaluate_traces, format_value
from ecomctl.gates.junit import JUnitCase, junit_xml
from ecomctl.gates.spec import Kind, parse_quantity, parse_threshold
from ecomctl.histogram import LatencyHistogram
from ecomctl.resources import fixtures_dir
from ecomctl.results import Result, parse_result
from tests.spans import span_record

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gates"

# -- building result documents -----------------------------------------------------------------

# What each kind requires beside the sections a test is about.
_REQUIRED: dict[str, dict[str, Any]] = {
    "checkout-simulate": {
        "config": {"shoppers": 1, "via": "inprocess", "latency_origin": "actual start"},
        "totals": {"journeys": 0, "errors": 0, "error_rate": 0.0, "throughput_per_s": 0.0},
        "journeys": {}, "invariants": []},
    "load-run": {
        "config": {"locustfile": "mixed_shop.py", "users": 1, "host": "http://127.0.0.1:8000"},
        "totals": {"requests": 0, "failures": 0, "error_rate": 0.0, "rps": 0.0},
        "endpoints": {}},
}


def typed(document: dict[str, Any]) -> Result:
    """A test's document, completed with the fields its kind requires and read as the
    record ``ecomctl gate`` reads (no duration unless the test gives one)."""
    kind = document.get("kind", "checkout-simulate")
    return parse_result({"schema": "ecomctl.result/v1", "kind": kind,
                         "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 0.0,
                         "ok": True, **_REQUIRED.get(kind, {}), **document})


def evaluate(spec: Any, document: dict[str, Any], **options: Any) -> GateReport:
    return evaluate_record(spec, typed(document), **options)


def compare_results(baseline: dict[str, Any], current: dict[str, Any],
                    options: CompareOptions | None = None) -> Comparison:
    return compare_records(typed(baseline), typed(current), options)



def latency(samples_ms: list[float], errors: int = 0) -> dict[str, Any]:
    """A journey/endpoint summary as the simulator writes it: HdrHistogram summary + hdr."""
    histogram = LatencyHistogram()
    for ms in samples_ms:
        histogram.record_us(ms * 1000)
    return {**histogram.summary(), "errors": errors, "hdr": histogram.encode()}


def span_op(service: str, name: str, p95: float, count: int = 100, errors: int = 0
            ) -> dict[str, Any]:
    return {"service": service, "name": name, "count": count, "errors": errors,
            "error_rate": errors / count, "min_ms": p95 / 10, "mean_ms": p95 / 2,
            "p50_ms": p95 / 2, "p90_ms": p95 * 0.9, "p95_ms": p95, "p99_ms": p95 * 1.2,
            "p999_ms": p95 * 1.5, "max_ms": p95 * 2, "total_ms": 0.0, "self_ms": 0.0}


def make_result(**overrides: Any) -> dict[str, Any]:
    rng = random.Random(7)
    result: dict[str, Any] = {
        "schema": "ecomctl.result/v1",
        "kind": "checkout-simulate",
        "totals": {"journeys": 300, "errors": 3, "error_rate": 0.01,
                   "throughput_per_s": 25.0, "checkouts_per_s": 2.5},
        "journeys": {
            # checkout: 100 samples 100..199 ms (p95 ~ 195 ms), 3 errors
            "checkout": latency([100 + i for i in range(100)], errors=3),
            "browse": latency([rng.uniform(5, 40) for _ in range(200)]),
        },
        "spans": [
            span_op("checkout", "checkout.complete", 180.0),
            span_op("shipment", "process order-events", 12.0),
            span_op("analytics", "process order-events", 9.0, errors=2),
            span_op("checkout", "BEGIN;", 2.0),
        ],
        "cache": {
            "product": {"requests": 1000, "hit_ratio": 0.86,
                        "levels": {"l1": {"hits": 750, "misses": 250, "hit_ratio": 0.75},
                                   "l2": {"hits": 110, "misses": 140, "hit_ratio": 0.44}}},
            "recommendation": {"requests": 100, "hit_ratio": 0.45,
                               "levels": {"l2": {"hits": 45, "misses": 55, "hit_ratio": 0.45}}},
        },
        "invariants": [
            {"name": "no oversold stock", "ok": True, "detail": "ok"},
            {"name": "money conserved", "ok": True, "detail": "ok"},
        ],
        "ok": True,
    }
    result.update(overrides)
    return result


def gates(text: str) -> Any:
    return parse_gates(textwrap.dedent(text), "gates.yaml")


def by_key(report: Any) -> dict[tuple[str, str, str], Any]:
    return {(o.section, o.target, o.metric): o for o in report.outcomes}


# -- parsing valid files -----------------------------------------------------------------------

FULL = """\
version: 1
journeys:            # latency of simulate journeys
  checkout: {p95: "< 1500ms", p99: "< 3s", error_rate: "< 5%"}
  "*": {p99: "< 5s"}
endpoints:
  "GET /api/products/{id}": {p95: "< 300ms"}
spans:
  "checkout checkout.complete": {p95: "< 1s"}
totals: {error_rate: "< 5%", throughput_per_s: "> 1", checkouts_per_s: "> 0.5/s"}
cache: {product: {hit_ratio: ">= 0.5", l1_hit_ratio: ">= 50%"}}
invariants: hold
traces:
  - name: checkout spans carry the order id
    select: {name: checkout.complete, kind: internal, attributes: {ecom.order.total: "*"}}
    assert: ["count >= 1", "duration < 2s", "attr ecom.order.id exists"]
  - select: {service: shipment, status: ERROR, attributes: {ecom.outcome: null}}
    assert: count == 0
"""


def test_a_full_gates_file_parses_into_gates_with_their_lines() -> None:
    spec = gates(FULL)
    assert spec.source == "gates.yaml" and spec.version == 1
    found = {(g.section, g.pattern, g.metric): g for g in spec.metrics}
    assert len(found) == len(spec.metrics) == 11
    p95 = found[("journeys", "checkout", "p95")]
    assert (p95.threshold.op, p95.threshold.value, p95.threshold.kind) == ("<", 1500.0,
                                                                          Kind.DURATION)
    assert p95.line == 3
    assert found[("journeys", "checkout", "p99")].threshold.value == 3000.0
    assert found[("journeys", "checkout", "error_rate")].threshold.value == pytest.approx(0.05)
    assert found[("journeys", "*", "p99")].line == 4
    assert found[("endpoints", "GET /api/products/{id}", "p95")].threshold.value == 300.0
    assert found[("spans", "checkout checkout.complete", "p95")].line == 8
    assert found[("totals", "", "throughput_per_s")].threshold.value == 1.0
    assert found[("totals", "", "checkouts_per_s")].threshold.value == 0.5
    assert found[("cache", "product", "l1_hit_ratio")].threshold.value == pytest.approx(0.5)
    assert spec.invariants is not None and spec.invariants.names is None
    assert spec.invariants.line == 11

    first, second = spec.traces
    assert first.name == "checkout spans carry the order id" and first.line == 13
    assert first.selector.kind == "INTERNAL"
    assert first.selector.attributes == (("ecom.order.total", "*"),)
    assert [a.subject for a in first.assertions] == ["count", "duration", "attr"]
    assert first.assertions[1].threshold is not None
    assert first.assertions[1].threshold.value == 2000.0
    assert first.assertions[2].attribute == "ecom.order.id"
    assert first.assertions[2].op == "exists"
    # A nameless gate is named after its selector; a single assertion needs no list.
    assert second.name == "service=shipment, status=ERROR, ecom.outcome=<absent>"
    assert len(second.assertions) == 1 and second.assertions[0].line == 17
    assert len(spec) == 11 + 1 + 2


def test_the_shipped_default_gates_file_is_valid() -> None:
    spec = load_gates(fixtures_dir() / "gates" / "default.yaml")
    sections = {g.section for g in spec.metrics}
    assert {"journeys", "totals", "cache"} <= sections
    assert spec.invariants is not None and spec.invariants.names is None
    names = {t.name for t in spec.traces}
    assert "completed checkouts carry the order id" in names
    metrics = {(g.section, g.pattern, g.metric): g.threshold for g in spec.metrics}
    assert metrics[("journeys", "checkout", "p95")].value == 1500.0
    assert metrics[("journeys", "browse", "p95")].value == 500.0
    assert metrics[("totals", "", "error_rate")].value == pytest.approx(0.05)
    assert metrics[("cache", "product", "hit_ratio")].value == 0.5


def test_invariants_may_be_named() -> None:
    spec = gates("invariants: [money conserved, no oversold stock]\n")
    assert spec.invariants is not None
    assert spec.invariants.names == ("money conserved", "no oversold stock")


# -- thresholds and units ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "op", "value"),
    [
        ("< 300ms", Kind.DURATION, "<", 300.0),
        ("<300ms", Kind.DURATION, "<", 300.0),
        ("<= 1.5s", Kind.DURATION, "<=", 1500.0),
        ("< 250us", Kind.DURATION, "<", 0.25),
        ("< 1%", Kind.RATIO, "<", 0.01),
        ("< 0.5 %", Kind.RATIO, "<", 0.005),
        (">= 0.8", Kind.RATIO, ">=", 0.8),
        ("> 20/s", Kind.RATE, ">", 20.0),
        ("> 600/min", Kind.RATE, ">", 10.0),
        ("> 1", Kind.RATE, ">", 1.0),
        ("== 0", Kind.COUNT, "==", 0.0),
        ("= 3", Kind.COUNT, "==", 3.0),
        ("!= 2", Kind.COUNT, "!=", 2.0),
    ],
)
def test_thresholds_and_their_units(text: str, kind: Kind, op: str, value: float) -> None:
    threshold = parse_threshold(text, kind)
    assert threshold.op == op
    assert threshold.value == pytest.approx(value)
    assert threshold.kind is kind


@pytest.mark.parametrize(
    ("text", "kind", "complaint"),
    [
        ("300ms", Kind.DURATION, "expected OPERATOR VALUE"),
        ("<< 3ms", Kind.DURATION, "not a number"),
        ("< 300", Kind.DURATION, "a unit is required"),
        ("< 3 apples", Kind.DURATION, "unknown unit 'apples'"),
        ("< 5", Kind.RATIO, "write 5% for a percentage"),
        ("< 5ms", Kind.RATIO, "a ratio is a percentage"),
        ("> 1%", Kind.RATE, "a rate is a number per second"),
        ("> 3ms", Kind.COUNT, "a count takes no unit"),
        ("< fast", Kind.DURATION, "not a number"),
    ],
)
def test_bad_thresholds_say_why(text: str, kind: Kind, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_threshold(text, kind)


def test_threshold_comparisons() -> None:
    assert parse_threshold("< 300ms", Kind.DURATION).holds(299.9)
    assert not parse_threshold("< 300ms", Kind.DURATION).holds(300.0)
    assert parse_threshold("<= 300ms", Kind.DURATION).holds(300.0)
    assert parse_threshold(">= 50%", Kind.RATIO).holds(0.5)
    assert not parse_threshold("> 0.5", Kind.RATIO).holds(0.5)
    assert parse_threshold("!= 0", Kind.COUNT).holds(1)
    assert parse_quantity("2s", Kind.DURATION) == 2000.0
    assert format_value(1500.0, Kind.DURATION) == "1.5s"
    assert format_value(0.0386, Kind.RATIO) == "3.86%"
    assert format_value(84.91, Kind.RATE) == "84.9/s"


# -- invalid files name the line at fault --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        # YAML syntax errors: the line of the scanner's or parser's mark.
        ("version: 1\njourneys:\n  checkout: {p95: \"< 1s\"\n", 4, "YAML syntax error"),
        ("version: 1\njourneys:\n  checkout:\n    p95: \"< 1s\"\n   p99: \"< 2s\"\n", 5,
         "YAML syntax error"),
        # '>' starts a folded block in YAML: say to quote it.
        ("version: 1\ntotals:\n  throughput_per_s: > 1\n", 3, "quote thresholds"),
        ("version: 1\njourneys:\n  checkout:\n    p96: \"< 1s\"\n", 4,
         "unknown metric 'p96' for journeys"),
        ("version: 1\n\n\njourneys:\n  checkout: {p95: \"< 300\"}\n", 5,
         "journeys.checkout.p95: '300': a duration needs a unit"),
        ("version: 1\njourneys:\n  checkout:\n    error_rate: \"< 5\"\n", 4,
         "write 5% for a percentage"),
        ("version: 1\njourneys:\n  checkout:\n    p95: 300\n", 4, "has no operator"),
        ("version: 1\njournies:\n  checkout: {p95: \"< 1s\"}\n", 2,
         "unknown section 'journies'"),
        ("version: 2\n", 1, "unsupported version '2'"),
        ("totals:\n  throughput: \"> 1\"\n", 2, "unknown metric 'throughput' for totals"),
        ("cache:\n  product:\n    miss_ratio: \"< 5%\"\n", 3, "unknown metric 'miss_ratio'"),
        ("journeys:\n  checkout: {p95: \"< 1s\"}\n  checkout: {p99: \"< 2s\"}\n", 3,
         "duplicate key 'checkout' (first on line 2)"),
        ("journeys: [checkout]\n", 1, "journeys: expected a mapping"),
        ("invariants: maybe\n", 1, "invariants: expected 'hold'"),
        ("traces:\n  - name: x\n    select: {nme: checkout.complete}\n    assert: [count > 1]\n",
         3, "unknown selector 'nme'"),
        ("traces:\n  - select: {kind: SEVER}\n    assert: [count > 1]\n", 2,
         "select.kind: 'SEVER' is not one of"),
        ("traces:\n  - select: {name: x}\n    assert:\n      - count >= 1\n"
         "      - latency < 2s\n", 5, "unknown assertion 'latency < 2s'"),
        ("traces:\n  - select: {name: x}\n    assert: [\"duration < 2\"]\n", 3,
         "a duration needs a unit"),
        ("traces:\n  - select: {name: x}\n    assert: [\"attr k =\"]\n", 3,
         "a value must follow '=='"),
        ("traces:\n  - select: {name: x}\n    expect: [count > 1]\n", 3,
         "unknown key 'expect' in a trace gate"),
        ("traces:\n  - name: no selector\n    assert: [count > 1]\n", 2,
         "trace gate without 'select'"),
        ("version: 1\n", 1, "defines no gates"),
    ],
)
def test_invalid_gates_files_name_the_line_at_fault(text: str, line: int, message: str) -> None:
    with pytest.raises(GatesFileError) as caught:
        parse_gates(text, "gates.yaml")
    error = caught.value
    assert error.line == line, str(error)
    assert message in str(error)
    assert str(error).startswith(f"gates.yaml:{line}: ")
    assert isinstance(error, ConfigError)  # the CLI's exit 2


def test_the_documented_error_message_shape() -> None:
    text = "version: 1\n" + "\n" * 10 + "journeys:\n  checkout: {p96: \"< 1s\"}\n"
    with pytest.raises(GatesFileError) as caught:
        parse_gates(text, "gates.yaml")
    assert str(caught.value).startswith("gates.yaml:13: unknown metric 'p96'")


def test_an_empty_or_missing_gates_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(GatesFileError, match="empty gates file"):
        parse_gates("", "gates.yaml")
    with pytest.raises(ConfigError, match="no such gates file"):
        load_gates(tmp_path / "absent.yaml")


# -- evaluation ------------------------------------------------------------------------------------


def test_passing_and_failing_metric_gates() -> None:
    spec = gates("""\
        journeys:
          checkout: {p95: "< 300ms", p50: "< 100ms", error_rate: "< 5%", count: ">= 100"}
          browse: {p99: "< 10ms"}
        totals: {error_rate: "< 5%", throughput_per_s: "> 20/s", checkouts_per_s: "> 5/s"}
        """)
    report = evaluate(spec, make_result())
    outcomes = by_key(report)
    p95 = outcomes[("journeys", "checkout", "p95")]
    assert p95.passed and p95.observed == pytest.approx(195, abs=1)
    p50 = outcomes[("journeys", "checkout", "p50")]
    assert not p50.passed  # ~150 ms
    assert p50.message.startswith("p50 ") and "required < 100ms" in p50.message
    assert p50.line == 2
    rate = outcomes[("journeys", "checkout", "error_rate")]
    assert rate.passed and rate.observed == pytest.approx(0.03)  # errors / count
    assert outcomes[("journeys", "checkout", "count")].passed
    assert not outcomes[("journeys", "browse", "p99")].passed
    assert outcomes[("totals", "totals", "throughput_per_s")].passed
    checkouts = outcomes[("totals", "totals", "checkouts_per_s")]
    assert not checkouts.passed and checkouts.observed_text == "2.5/s"
    assert not report.passed
    assert len(report.failures) == 3
    # The report keeps the file's order.
    assert [o.line for o in report.outcomes] == sorted(o.line for o in report.outcomes)


def test_load_run_results_use_their_own_field_names() -> None:
    # `load run` writes rps/failures and per-endpoint rps; simulate throughput_per_s/errors.
    result = {
        "schema": "ecomctl.result/v1", "kind": "load-run", "duration_s": 50.0,
        "totals": {"requests": 5000, "failures": 25, "error_rate": 0.005, "rps": 100.0,
                   "journeys": 400, "checkouts": {"paid": 50, "payment_declined": 2}},
        "endpoints": {"GET /api/products/{id}": {**latency([3.0] * 4000), "rps": 80.0},
                      "POST /api/checkout": latency([120.0] * 52)},
        "journeys": {"checkout": latency([300.0] * 52)},
    }
    spec = gates("""\
        totals: {throughput_per_s: "> 50/s", errors: "< 30", checkouts_per_s: ">= 1/s",
                 requests: "> 1000", p95: "< 500ms"}
        endpoints:
          "GET /api/products/{id}": {rps: "> 60/s", p95: "< 10ms"}
          "POST *": {rps: "> 1/s"}
        journeys: {checkout: {rps: "> 1/s"}}
        """)
    report = evaluate(spec, result)
    observed = {(o.target, o.metric): o.observed for o in report.outcomes}
    assert report.passed, report.failures
    assert observed[("totals", "throughput_per_s")] == 100.0
    assert observed[("totals", "errors")] == 25
    assert observed[("totals", "checkouts_per_s")] == 1.0  # 50 paid / 50 s
    assert observed[("totals", "p95")] == pytest.approx(300, rel=0.01)  # over the journeys
    assert observed[("GET /api/products/{id}", "rps")] == 80.0
    assert observed[("POST /api/checkout", "rps")] == 52 / 50.0
    assert observed[("checkout", "rps")] == 52 / 50.0


def test_a_wildcard_reaches_every_journey_present() -> None:
    result = make_result()
    result["journeys"]["search"] = latency([900.0] * 10)
    report = evaluate(gates('journeys:\n  "*": {p99: "< 500ms"}\n'), result)
    targets = {o.target: o.passed for o in report.outcomes}
    assert targets == {"browse": True, "checkout": True, "search": False}


def test_a_missing_target_fails_with_a_clear_message() -> None:
    spec = gates("""\
        journeys:
          checkout: {p95: "< 1s"}
          wishlist: {p95: "< 1s"}
        endpoints:
          "*": {p95: "< 1s"}
        spans:
          "order order.refund": {p95: "< 1s"}
        cache:
          search: {hit_ratio: "> 0.5"}
        """)
    report = evaluate(spec, make_result())
    outcomes = by_key(report)
    assert outcomes[("journeys", "checkout", "p95")].passed
    wishlist = outcomes[("journeys", "wishlist", "p95")]
    assert not wishlist.passed and wishlist.observed is None
    assert wishlist.observed_text == "missing"
    assert "no journey matches 'wishlist'" in wishlist.message
    assert "present: browse, checkout" in wishlist.message
    assert outcomes[("endpoints", "*", "p95")].message == "the result has no endpoints"
    assert "no span operation matches 'order order.refund'" in outcomes[
        ("spans", "order order.refund", "p95")].message
    assert not outcomes[("cache", "search", "hit_ratio")].passed


def test_a_journey_without_samples_fails_instead_of_crashing() -> None:
    result = make_result()
    result["journeys"]["cart"] = latency([])
    report = evaluate(gates('journeys:\n  cart: {p95: "< 1s", error_rate: "< 1%"}\n'), result)
    assert [(o.passed, o.message) for o in report.outcomes] == [
        (False, "no samples"), (False, "no samples")]


def test_span_keys_match_service_and_name_or_the_name_alone() -> None:
    spec = gates("""\
        spans:
          "checkout checkout.complete": {p95: "< 200ms"}
          "process order-events": {error_rate: "== 0"}
          "checkout *": {count: ">= 1"}
        """)
    report = evaluate(spec, make_result())
    found = {(o.target, o.metric): o.passed for o in report.outcomes}
    assert found == {
        ("checkout checkout.complete", "p95"): True,
        ("analytics process order-events", "error_rate"): False,  # 2 errors
        ("shipment process order-events", "error_rate"): True,
        ("checkout BEGIN;", "count"): True,
        ("checkout checkout.complete", "count"): True,
    }


def test_a_literal_name_with_brackets_matches_itself() -> None:
    result = {"kind": "load-run", "endpoints": {"GET /api/items/[id]": latency([10.0] * 5)}}
    report = evaluate(gates('endpoints:\n  "GET /api/items/[id]": {p95: "< 1s"}\n'), result)
    assert [(o.target, o.passed) for o in report.outcomes] == [("GET /api/items/[id]", True)]


def test_totals_latency_comes_from_the_merged_journey_histograms() -> None:
    result = make_result()
    merged = LatencyHistogram()
    for journey in result["journeys"].values():
        merged.merge(LatencyHistogram.decode(journey["hdr"]))
    report = evaluate(gates('totals: {p50: "< 1s", p99: "< 1s", max: "< 1s"}\n'), result)
    observed = {o.metric: o.observed for o in report.outcomes}
    assert observed["p50"] == merged.percentile_ms(50)
    assert observed["p99"] == merged.percentile_ms(99)
    assert observed["max"] == merged.max_us / 1000
    # 300 samples: 200 browse (5..40 ms) and 100 checkout (100..199 ms).
    assert 5 <= observed["p50"] <= 40 and 190 <= observed["p99"] <= 200

    del result["journeys"]["browse"]["hdr"]
    report = evaluate(gates('totals: {p95: "< 1s"}\n'), result)
    assert not report.passed
    assert report.outcomes[0].message == "journeys.browse has no histogram (hdr) to merge"


def test_cache_hit_ratios_per_service_and_level() -> None:
    spec = gates("""\
        cache:
          product: {hit_ratio: ">= 0.5", l1_hit_ratio: ">= 80%"}
          "*": {requests: "> 0"}
          recommendation: {l1_hit_ratio: "> 0.1"}
        """)
    outcomes = by_key(evaluate(spec, make_result()))
    assert outcomes[("cache", "product", "hit_ratio")].passed
    l1 = outcomes[("cache", "product", "l1_hit_ratio")]
    assert not l1.passed and l1.observed == 0.75
    assert outcomes[("cache", "recommendation", "requests")].passed
    no_level = outcomes[("cache", "recommendation", "l1_hit_ratio")]
    assert not no_level.passed and no_level.message == "no cache level 'l1'"


def test_invariants_hold_or_fail_each_by_name() -> None:
    result = make_result()
    assert evaluate(gates("invariants: hold\n"), result).passed
    result["invariants"].append({"name": "one shipment per paid order", "ok": False,
                                 "detail": "2 paid orders without a shipment"})
    report = evaluate(gates("invariants: hold\n"), result)
    assert [(o.target, o.passed) for o in report.outcomes] == [
        ("no oversold stock", True), ("money conserved", True),
        ("one shipment per paid order", False)]
    assert report.failures[0].message == "2 paid orders without a shipment"

    named = evaluate(gates("invariants: [money conserved, refunds balance]\n"), result)
    assert [(o.target, o.passed, o.observed_text) for o in named.outcomes] == [
        ("money conserved", True, "ok"), ("refunds balance", False, "missing")]
    empty = evaluate(gates("invariants: hold\n"), make_result(invariants=[]))
    assert not empty.passed and empty.outcomes[0].message == "the result has no invariants"


# -- trace assertions ------------------------------------------------------------------------------

# Every span a root starting at the same instant: the assertions look at durations,
# outcomes and attributes, not at the tree.
SPANS = [
    span_record(1, None, 0, 120, "checkout.complete", service="checkout", trace_id=1,
                attributes={"ecom.order.id": "o-1", "ecom.checkout.outcome": "paid",
                            "ecom.user.id": 7}),
    span_record(2, None, 0, 2500, "checkout.complete", service="checkout", trace_id=2,
                attributes={"ecom.order.id": "o-2", "ecom.checkout.outcome": "payment_declined",
                            "ecom.user.id": 8}),
    span_record(3, None, 0, 2, "checkout.complete", service="checkout", trace_id=3,
                attributes={"ecom.outcome": "OutOfStock", "ecom.user.id": 9}),
    span_record(4, None, 0, 10, "process order-events", service="shipment", kind="CONSUMER",
                trace_id=1),
    span_record(5, None, 0, 30, "process order-events", service="analytics", kind="CONSUMER",
                status="ERROR", trace_id=1),
    span_record(6, None, 0, 50, "POST", service="payment", kind="CLIENT", trace_id=1,
                attributes={"ecom.retry": False}),
]


def trace_outcomes(text: str) -> dict[str, Any]:
    spec = gates(text)
    return {o.metric: o for o in evaluate_traces(spec.traces, SPANS)}


def test_count_errors_and_the_worst_duration() -> None:
    found = trace_outcomes("""\
        traces:
          - name: checkouts
            select: {name: checkout.complete}
            assert: ["count == 3", "duration < 2s", "duration > 1ms", "errors == 0"]
        """)
    assert found["count == 3"].passed
    slow = found["duration < 2s"]
    assert not slow.passed
    assert slow.observed == 2500.0 and slow.observed_text == "worst 2.5s"
    assert "1 of 3 spans break < 2s" in slow.message
    assert f"trace {2:032x}" in slow.message
    fast = found["duration > 1ms"]
    assert fast.passed and fast.observed == 2.0  # the worst for a lower bound: the minimum
    assert found["errors == 0"].passed and found["count == 3"].target == "checkouts"


def test_attribute_assertions_hold_for_every_selected_span() -> None:
    found = trace_outcomes("""\
        traces:
          - select: {name: checkout.complete}
            assert: ["attr ecom.order.id exists", "attr ecom.user.id != 0",
                     "attr ecom.internal missing"]
          - select: {name: checkout.complete, attributes: {ecom.checkout.outcome: "*"}}
            assert: ["count == 2", "attr ecom.order.id exists"]
          - select: {name: checkout.complete, attributes: {ecom.outcome: null}}
            assert: ["count == 2"]
          - select: {service: payment, attributes: {ecom.retry: false}}
            assert: ["attr ecom.retry = false", "count = 1"]
          - select: {name: "checkout.*", attributes: {ecom.user.id: "7"}}
            assert: ["attr ecom.order.id = 'o-1'"]
        """)
    lacking = found["attr ecom.order.id exists"]  # the later gate's outcome wins the key
    assert lacking.passed and lacking.observed_text == "2/2 spans"
    assert found["attr ecom.user.id != 0"].passed
    assert found["attr ecom.internal missing"].passed
    assert found["count == 2"].passed
    assert found["attr ecom.retry = false"].passed and found["count = 1"].passed
    assert found["attr ecom.order.id = 'o-1'"].passed

    every = trace_outcomes("""\
        traces:
          - select: {name: checkout.complete}
            assert: ["attr ecom.order.id exists"]
        """)["attr ecom.order.id exists"]
    assert not every.passed and every.observed_text == "2/3 spans"
    assert every.message.startswith("1 of 3 spans lack ecom.order.id, e.g. trace ")


def test_selectors_by_kind_status_and_service() -> None:
    found = trace_outcomes("""\
        traces:
          - select: {name: process order-events}
            assert: ["count >= 1", "errors == 0"]
          - select: {kind: consumer, status: error}
            assert: ["count == 1"]
          - select: {service: "ship*"}
            assert: ["count == 1"]
        """)
    assert found["count >= 1"].passed
    errors = found["errors == 0"]
    assert not errors.passed and errors.observed == 1.0
    assert "select name=process order-events" in errors.message
    assert found["count == 1"].passed


def test_assertions_on_no_selected_span() -> None:
    found = trace_outcomes("""\
        traces:
          - select: {name: refund.issue}
            assert: ["count == 0", "errors == 0", "duration < 1s", "attr x exists"]
        """)
    assert found["count == 0"].passed and found["errors == 0"].passed
    # Per-span assertions that check nothing would pass silently: they fail instead.
    for metric in ("duration < 1s", "attr x exists"):
        assert not found[metric].passed
        assert found[metric].message == "no span matched (select name=refund.issue)"


def test_trace_gates_read_the_result_trace_file_relative_to_the_result() -> None:
    spec = load_gates(fixtures_dir() / "gates" / "default.yaml")
    import json

    result = json.loads((FIXTURES / "result.json").read_text())
    report = evaluate(spec, result, result_dir=FIXTURES)
    assert report.passed, report.failures
    assert report.trace_source == str(FIXTURES / "traces.otlp.jsonl")
    assert report.spans_read == 125


def test_an_unreadable_trace_file_fails_the_trace_gates(tmp_path: Path) -> None:
    spec = gates("""\
        journeys: {checkout: {p95: "< 1s"}}
        traces:
          - select: {name: checkout.complete}
            assert: ["count >= 1", "duration < 1s"]
        """)
    missing = evaluate(spec, make_result(trace_file=str(tmp_path / "gone.jsonl")))
    assert [o.passed for o in missing.outcomes] == [True, False, False]
    assert "cannot read the result's trace file" in missing.outcomes[1].message
    nameless = evaluate(spec, make_result())
    assert "names no trace_file" in nameless.outcomes[1].message
    # An explicit --traces source is the user's input: a bad one is a ConfigError (exit 2).
    with pytest.raises(ConfigError):
        evaluate(spec, make_result(), traces=tmp_path / "nothing.jsonl")
    explicit = evaluate(spec, make_result(), traces=FIXTURES / "traces.otlp.jsonl")
    assert [o.passed for o in explicit.outcomes] == [True, True, True]


# -- baseline comparison --------------------------------------------------------------------------


def one_journey(p50: float, p95: float, p99: float, count: int = 100, errors: int = 0
                ) -> dict[str, Any]:
    return {"schema": "ecomctl.result/v1", "journeys": {"checkout": {
        "count": count, "errors": errors, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}}}


def test_tiny_numbers_need_the_absolute_threshold_too() -> None:
    # +50% but only +1 ms: noise, not a regression.
    options = CompareOptions(max_regression=0.10, min_absolute_ms=5.0)
    comparison = compare_results(one_journey(2, 2, 2), one_journey(3, 3, 3), options)
    assert comparison.passed
    (target,) = comparison.targets
    assert {d.verdict for d in target.deltas} == {"same"}
    assert target.deltas[0].relative == pytest.approx(0.5)


def test_a_real_regression_exceeds_both_thresholds() -> None:
    options = CompareOptions(max_regression=0.10, min_absolute_ms=5.0)
    comparison = compare_results(one_journey(50, 100, 150), one_journey(50, 130, 150), options)
    assert not comparison.passed
    (target,) = comparison.regressed
    (delta,) = target.regressions
    assert (delta.metric, delta.baseline, delta.current) == ("p95", 100, 130)
    assert delta.relative == pytest.approx(0.3)
    assert describe_delta(delta) == "p95 100ms -> 130ms (+30ms, +30.0%)"
    # Under the relative threshold (+8%, +8 ms): same.
    assert compare_results(one_journey(50, 100, 150), one_journey(50, 108, 150),
                           options).passed


def test_verdict_boundaries() -> None:
    options = CompareOptions(max_regression=0.10, min_absolute_ms=5.0)
    assert latency_verdict(100, 110, options) == "same"  # exactly +10%: not beyond it
    assert latency_verdict(100, 110.5, options) == "regression"
    assert latency_verdict(40, 45, options) == "same"  # exactly +5 ms
    assert latency_verdict(0, 6, options) == "regression"  # from nothing
    assert latency_verdict(130, 100, options) == "improvement"


def test_improvements_are_shown_and_never_fail() -> None:
    comparison = compare_results(one_journey(80, 200, 400), one_journey(40, 100, 200))
    assert comparison.passed
    assert comparison.targets[0].verdict == "improvement"
    assert comparison.to_dict()["counts"] == {"improvement": 1}


def test_error_rate_by_an_absolute_tolerance_in_points() -> None:
    options = CompareOptions(max_error_increase=0.01)
    same = compare_results(one_journey(1, 1, 1, errors=1), one_journey(1, 1, 1, errors=2),
                           options)
    assert same.passed  # 1% -> 2%: +1 point is within +1 point
    worse = compare_results(one_journey(1, 1, 1, errors=1), one_journey(1, 1, 1, errors=3),
                            options)
    assert not worse.passed
    (delta,) = worse.regressed[0].regressions
    assert delta.metric == "error_rate"
    assert describe_delta(delta) == "error_rate 1% -> 3% (+2 points)"


def test_targets_that_appear_disappear_or_have_too_few_samples() -> None:
    baseline = make_result()
    current = make_result()
    del current["journeys"]["browse"]
    current["spans"].append(span_op("search", "search.query", 40.0, count=3))
    current["spans"][1] = span_op("shipment", "process order-events", 500.0, count=4)
    comparison = compare_results(baseline, current, CompareOptions(min_count=10))
    statuses = {(t.section, t.target): t.status for t in comparison.targets}
    assert statuses[("journeys", "browse")] == "disappeared"
    assert statuses[("spans", "search search.query")] == "appeared"
    assert statuses[("spans", "shipment process order-events")] == "too few samples"
    assert statuses[("journeys", "checkout")] == "compared"
    assert comparison.passed  # mentioned, not failed
    assert compare_results(baseline, current, CompareOptions(min_count=1)).regressed[0].target \
        == "shipment process order-events"


def test_span_operations_are_compared_by_service_and_name() -> None:
    baseline = make_result()
    current = make_result()
    current["spans"][0] = span_op("checkout", "checkout.complete", 400.0)
    comparison = compare_results(baseline, current)
    assert [(t.section, t.target) for t in comparison.regressed] == [
        ("spans", "checkout checkout.complete")]
    assert {d.metric for d in comparison.regressed[0].regressions} == {"p50", "p95", "p99"}


def test_unknown_percentiles_are_refused() -> None:
    with pytest.raises(ValueError, match="p96"):
        CompareOptions(percentiles=("p95", "p96"))


# -- JUnit -----------------------------------------------------------------------------------------


def check_counts(suite: TestSuite, tests: int, failures: int, skipped: int) -> None:
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (
        tests, failures, 0, skipped)
    cases = list(suite)
    assert len(cases) == tests
    assert sum(1 for c in cases if any(isinstance(r, Failure) for r in c.result)) == failures
    assert sum(1 for c in cases if any(isinstance(r, Skipped) for r in c.result)) == skipped


def test_junit_for_a_gates_report_is_accepted_by_junitparser(tmp_path: Path) -> None:
    spec = gates("""\
        journeys:
          checkout: {p95: "< 300ms", p50: "< 100ms"}
          "<weird & name>": {p95: "< 1s"}
        invariants: hold
        """)
    report = evaluate(spec, make_result())
    path = tmp_path / "reports" / "gates.xml"
    write_junit(path, GATES_SUITE, cases_from_report(report), time_s=0.25,
                properties={"gates_file": "gates.yaml"})

    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "ecomctl.gates" and suite.time == 0.25
    check_counts(suite, tests=5, failures=2, skipped=0)
    cases = {c.name: c for c in suite}
    assert set(cases) == {"checkout p95 < 300ms", "checkout p50 < 100ms",
                          "<weird & name> p95 < 1s", "no oversold stock", "money conserved"}
    failing = cases["checkout p50 < 100ms"]
    assert failing.classname == "journeys" and not failing.is_passed
    (failure,) = failing.result
    assert "required < 100ms" in failure.message and "gates.yaml:2" in failure.text
    assert cases["checkout p95 < 300ms"].is_passed

    # And plain ElementTree reads the same structure (what most CI plugins use).
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("failures") == "2"
    (suite_element,) = root.findall("testsuite")
    for attribute in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp"):
        assert suite_element.get(attribute) is not None, attribute
    assert len(suite_element.findall("testcase")) == 5
    assert len(suite_element.findall("testcase/failure")) == 2
    prop = suite_element.find("properties/property")
    assert prop is not None and prop.get("value") == "gates.yaml"


def test_junit_for_a_comparison_marks_regressions_and_skips() -> None:
    baseline = make_result()
    current = make_result()
    del current["journeys"]["browse"]
    current["spans"][0] = span_op("checkout", "checkout.complete", 400.0)
    text = junit_xml(COMPARE_SUITE, cases_from_comparison(compare_results(baseline, current)))
    suite = next(iter(JUnitXml.fromstring(text)))
    assert suite.name == "ecomctl.compare"
    check_counts(suite, tests=6, failures=1, skipped=1)
    failed = next(c for c in suite if not c.is_passed and not c.is_skipped)
    assert (failed.classname, failed.name) == ("spans", "checkout checkout.complete")
    assert failed.result[0].message.startswith("regression: p50 ")


def test_junit_survives_characters_xml_cannot_carry() -> None:
    text = junit_xml("s", [JUnitCase("spans", "bad\x00name\x1b", "fail\x07ed", "a & b < c")])
    root = ET.fromstring(text)
    case = root.find("testsuite/testcase")
    assert case is not None and case.get("name") == "bad\ufffdname\ufffd"
    failure = case.find("failure")
    assert failure is not None and failure.text == "a & b < c"


# -- bench results ------------------------------------------------------------------------------


def _bench_result(ratios: dict[str, float]) -> dict[str, Any]:
    from ecomctl.results import BenchFigure, BenchMachine, BenchResult, BenchRowResult

    rows = [BenchRowResult.measured(name, name, BenchFigure.measured("floor", 1000.0, "x/s"),
                                    BenchFigure.measured("ecomctl", 1000.0 * ratio, "x/s"), 0.5)
            for name, ratio in ratios.items()]
    return BenchResult.measured(rows, started_at="t", quick=True, duration_s=1.0,
                                machine=BenchMachine(cores=1)).to_dict()


def test_bench_ratios_are_gated_by_row_name() -> None:
    spec = parse_gates('version: 1\nbench:\n  gateway: {ratio: ">= 0.2"}\n'
                       '  "w*": {ratio: ">= 1.05", ecomctl: "> 100"}\n')
    report = evaluate(spec, _bench_result({"gateway": 0.25, "workers": 1.0}))
    outcomes = {(o.target, o.metric): o for o in report.outcomes}
    assert outcomes[("gateway", "ratio")].passed
    assert not outcomes[("workers", "ratio")].passed
    assert outcomes[("workers", "ratio")].observed == 1.0
    assert outcomes[("workers", "ecomctl")].passed
    assert not report.passed


def test_the_shipped_bench_gates_parse_and_name_every_row() -> None:
    spec = load_gates(Path(__file__).parents[2] / "fixtures" / "gates" / "bench.yaml")
    assert {g.pattern for g in spec.metrics} == {"seed", "gateway", "gateway-locust",
                                                 "tracing", "tracing-locust", "workers",
                                                 "checkout", "consumer-lag", "drain",
                                                 "consumers"}


def _fault_result(recovery_s: float | None) -> dict[str, Any]:
    phase = {"count": 200, "errors": 4, "error_rate": 0.02, "throughput_per_s": 20.0,
             "checkouts_per_s": 1.5, "p50_ms": 40.0, "p95_ms": 90.0, "p99_ms": 120.0}
    return {"schema": "ecomctl.result/v1", "kind": "load-run", "duration_s": 60,
            "phases": {"before": phase, "after": phase,
                       "during": {**phase, "p95_ms": 950.0, "targets": {
                           "POST /api/checkout": {"count": 20, "errors": 0, "p95_ms": 1900.0}}}},
            "fault_windows": [{"fault": "payment-slow=800", "start_s": 20, "end_s": 35,
                               "recovery_s": recovery_s}],
            "recovery_s": recovery_s}


def test_phase_and_recovery_gates() -> None:
    spec = gates('phases:\n  during: {p95: "< 1s", checkouts_per_s: "> 1/s"}\n'
                 '  "during POST /api/*": {p95: "< 2s"}\n'
                 '  after: {p95: "< 100ms"}\nrecovery: "< 10s"\n')
    report = evaluate(spec, _fault_result(4.0))
    assert report.passed, [o.message for o in report.failures]
    observed = {(o.section, o.target, o.metric): o.observed for o in report.outcomes}
    assert observed[("recovery", "recovery", "recovery")] == 4000.0
    assert observed[("phases", "during", "p95")] == 950.0
    assert observed[("phases", "during POST /api/checkout", "p95")] == 1900.0

    tighter = evaluate(gates('recovery: "< 2s"\n'), _fault_result(4.0))
    assert not tighter.passed
    assert "recovery 4s, required < 2s" in tighter.failures[0].message

    never = evaluate(gates('recovery: "< 10s"\n'), _fault_result(None))
    assert not never.passed and "did not come back" in never.failures[0].message
    no_windows = evaluate(gates('recovery: "< 10s"\n'), make_result())
    assert "no fault windows" in no_windows.failures[0].message


@pytest.mark.parametrize("recovery_s", [1.652, 1.001, 1.005, 0.29])
def test_a_recovery_gate_at_exactly_the_observed_time_compares_exactly(
    recovery_s: float,
) -> None:
    """CI: ``recovery < 1652ms`` passed a measured 1.652 s, as 1652ms parsed to
    1652.0000000000002 ms in binary floating point (and 1.001 s * 1000 is 1000.999...)."""
    ms = f"{recovery_s * 1000:.0f}ms"
    strict = evaluate(gates(f'recovery: "< {ms}"\n'), _fault_result(recovery_s))
    assert not strict.passed, [o.observed for o in strict.outcomes]
    assert evaluate(gates(f'recovery: "<= {ms}"\n'), _fault_result(recovery_s)).passed


@pytest.mark.parametrize(("text", "complaint"), [
    ('phases:\n  meanwhile: {p95: "< 1s"}\n', "unknown phase 'meanwhile'"),
    ('phases:\n  during: {p90: "< 1s"}\n', "unknown metric 'p90' for phases"),
    ('recovery: "< 10"\n', "needs a unit"),
])
def test_phase_gate_mistakes_name_their_line(text: str, complaint: str) -> None:
    with pytest.raises(GatesFileError, match=complaint):
        gates(text)
