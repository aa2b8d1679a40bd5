"""Exemplars: the traces behind each percentile, picked from the percentile's own bucket
(analysis/exemplars), and the report's links to them (reports/trace_links)."""

from __future__ import annotations

import re
from typing import Any

from ecomctl.analysis.exemplars import Sample, bucket_of, phase_exemplars, pick_exemplars
from ecomctl.reports.trace_links import TraceLinks, exemplar_cell
from ecomctl.results import Exemplar, LatencySummary

SUMMARY = {"p50_ms": 10.0, "p90_ms": 20.0, "p95_ms": 30.0, "p99_ms": 40.0, "max_ms": 50.0}


def _samples(*durations: float) -> list[Sample]:
    return [Sample(d, f"t{d:g}") for d in durations]


def test_each_rung_gets_the_traces_of_its_bucket_closest_to_it_first() -> None:
    samples = _samples(1, 5, 9, 10, 11, 19.5, 20, 25, 31, 39, 40, 50, 50.5)

    found = pick_exemplars(samples, SUMMARY)

    ids = {rung: [e["trace_id"] for e in items] for rung, items in found.items()}
    assert ids == {"p50": ["t10", "t9", "t5"], "p90": ["t20", "t19.5", "t11"],
                   "p95": ["t25"], "p99": ["t40", "t39", "t31"], "max": ["t50"]}
    for rung, items in found.items():
        lower, upper = bucket_of(SUMMARY, rung)
        assert all(lower < e["duration_ms"] <= upper for e in items), rung


def test_empty_buckets_and_missing_rungs_are_left_out() -> None:
    found = pick_exemplars(_samples(12, 45), {"p50_ms": 10.0, "p90_ms": 20.0, "max_ms": 50.0})
    assert found == {"p90": [{"trace_id": "t12", "duration_ms": 12.0}],
                     "max": [{"trace_id": "t45", "duration_ms": 45.0}]}
    assert pick_exemplars([], SUMMARY) == {}
    assert len(pick_exemplars(_samples(*range(1, 11)), SUMMARY, per_rung=2)["p50"]) == 2


def test_a_percentile_cell_links_to_its_traces_with_its_bucket() -> None:
    latency = LatencySummary(**SUMMARY)
    exemplars = {"p95": [Exemplar("a" * 32, 29.5), Exemplar("b" * 32, 25.0)]}
    links = TraceLinks("http://127.0.0.1:19411/zipkin")

    cell = exemplar_cell("30.0", latency, exemplars, "p95", links)

    hrefs = re.findall(r'href="([^"]+)"', cell)
    assert hrefs == [f"http://127.0.0.1:19411/zipkin/traces/{c * 32}" for c in "ab"]
    assert 'data-lo="20.0" data-hi="30.0"' in cell and cell.startswith("30.0")
    # No links asked for, or none for that rung: the value alone.
    assert exemplar_cell("30.0", latency, exemplars, "p95", None) == "30.0"
    assert exemplar_cell("10.0", latency, exemplars, "p50", links) == "10.0"
    # Without a trace UI, links go to the page's own waterfall.
    assert f'href="#trace-{"a" * 32}"' in exemplar_cell("30.0", latency, exemplars, "p95",
                                                        TraceLinks(None))


def test_fault_phases_get_the_traces_that_ended_inside_them() -> None:
    """A sample belongs to the phase that holds the middle of the second it ended in, as
    the phases' own figures count it; targets get theirs, the phase all of them."""
    phase = {"p50_ms": 10.0, "p95_ms": 100.0, "p99_ms": 200.0}
    report: dict[str, Any] = {"fault_windows": [{
        "before": {"from_s": 0.0, "to_s": 5.0, **phase,
                   "targets": {"checkout": dict(phase), "browse": dict(phase)}},
        "during": {"from_s": 5.0, "to_s": 10.0, **phase, "targets": {"checkout": dict(phase)}},
        "after": {"from_s": None, "to_s": None},
    }]}
    timed = {"checkout": [(4.9, Sample(90.0, "c-before")), (5.0, Sample(95.0, "c-during")),
                          (9.99, Sample(8.0, "c-late"))],
             "browse": [(0.2, Sample(150.0, "b-before")), (10.0, Sample(9.0, "b-after"))]}

    phase_exemplars(report, timed)

    window = report["fault_windows"][0]

    def ids(figures: dict[str, Any]) -> dict[str, list[str]]:
        found = figures["exemplars"]
        return {rung: [e["trace_id"] for e in items] for rung, items in found.items()}

    assert ids(window["before"]) == {"p95": ["c-before"], "p99": ["b-before"]}
    assert ids(window["before"]["targets"]["checkout"]) == {"p95": ["c-before"]}
    assert ids(window["before"]["targets"]["browse"]) == {"p99": ["b-before"]}
    assert ids(window["during"]) == {"p50": ["c-late"], "p95": ["c-during"]}
    assert "exemplars" not in window["after"]  # the run ended before it
