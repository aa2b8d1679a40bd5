"""One call from traces to everything the analysis says about them.

``analyze(traces).to_dict()`` is embedded in other result documents (the checkout
simulator's JSON), so its shape is a contract; ``schema`` changes when it does::

    {
      "schema": "ecomctl.trace-analysis/1",
      "counts": {"traces": int, "spans": int, "services": int, "orphans": int,
                 "error_spans": int, "traces_with_errors": int},
      "services": [str, ...],                      # sorted
      "trace_latency": LATENCY,                    # root span durations: what callers
                                                   # waited (async work after the root,
                                                   # e.g. Kafka consumers, not included)
      "operations": [                              # every (service, span name),
                                                   # most self time first
        {"service": str, "name": str, "count": int, "errors": int, "error_rate": float,
         "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms",
         "total_ms": float, "self_ms": float}, ...],   # LATENCY's keys, flat
      "critical_path": {
        "overall": [SHARE, ...],                   # top operations by time on the critical
                                                   # path, summed over all traces; share of
                                                   # the summed root durations
        "slowest_traces": [                        # by root duration, slowest first
          {"trace_id": str, "root": {"span_id", "service", "name"} | null,
           "duration_ms": float,
           "segments": [{"span_id", "service", "name", "offset_ms", "duration_ms"}, ...],
           "by_operation": [SHARE, ...]}, ...]
      },
      "finding_counts": {"n_plus_one": int, "sequential_calls": int, "orphan_spans": int,
                         "error_hot_spot": int},   # all findings, before truncation
      "findings": [                                # per detector the `top` with most impact
        {"detector": str, "severity": "info"|"warning"|"error", "trace_id": str | null,
         "span_ids": [str, ...], "message": str, "details": {...}}, ...]
    }

    LATENCY = {"count": int, "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
               "p999_ms", "max_ms": float | null (null when count is 0)}
    SHARE = {"service": str, "name": str, "ms": float, "share": float (0..1)}

Finding details per detector: n_plus_one {parent_span_id, parent{service,name}, db_system,
statement_shape, count, total_ms}; sequential_calls {parent_span_id, parent, targets,
distinct_targets, total_ms, parent_share, saving_ms}; orphan_spans {missing_parent_ids,
spans[{span_id, service, name}]}; error_hot_spot {service, name, count, errors, error_rate,
top_messages[{message, count}], example_trace_ids}.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ecomctl.analysis.critical_path import (
    CriticalPath,
    critical_path,
    operation_shares,
    path_time_by_operation,
)
from ecomctl.analysis.detectors import DETECTORS, DetectorThresholds, Finding, run_detectors
from ecomctl.analysis.model import Trace, paused_gc
from ecomctl.analysis.stats import OperationStats, operation_stats
from ecomctl.histogram import LatencyHistogram

SCHEMA = "ecomctl.trace-analysis/1"


@dataclass(slots=True)
class TraceAnalysis:
    trace_count: int
    span_count: int
    services: list[str]
    orphan_count: int
    error_spans: int
    traces_with_errors: int
    trace_latency: LatencyHistogram
    operations: list[OperationStats]
    path_totals: list[tuple[tuple[str, str], int]]  # over all traces, largest first
    path_total_ns: int
    slowest: list[CriticalPath]
    findings: list[Finding]
    top: int = 10
    finding_counts: dict[str, int] = field(default_factory=dict)

    def top_findings(self) -> list[Finding]:
        """Per detector (in DETECTORS order), the ``top`` findings with the most impact."""
        result: list[Finding] = []
        for detector in DETECTORS:
            mine = [f for f in self.findings if f.detector == detector]
            mine.sort(key=lambda f: -f.impact_ns)
            result.extend(mine[: self.top])
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "counts": {
                "traces": self.trace_count,
                "spans": self.span_count,
                "services": len(self.services),
                "orphans": self.orphan_count,
                "error_spans": self.error_spans,
                "traces_with_errors": self.traces_with_errors,
            },
            "services": self.services,
            "trace_latency": self.trace_latency.summary(),
            "operations": [op.to_dict() for op in self.operations],
            "critical_path": {
                "overall": operation_shares(self.path_totals[: self.top], self.path_total_ns),
                "slowest_traces": [path.to_dict() for path in self.slowest],
            },
            "finding_counts": dict(self.finding_counts),
            "findings": [f.to_dict() for f in self.top_findings()],
        }


def analyze(
    traces: Sequence[Trace],
    *,
    top: int = 10,
    slowest: int = 3,
    thresholds: DetectorThresholds | None = None,
) -> TraceAnalysis:
    """Operations, critical paths and findings over ``traces`` (from ``group_traces``)."""
    with paused_gc():
        return _analyze(list(traces), top, slowest, thresholds)


def _analyze(
    traces: list[Trace], top: int, slowest: int, thresholds: DetectorThresholds | None
) -> TraceAnalysis:
    operations = operation_stats(traces)
    totals = sorted(path_time_by_operation(traces).items(), key=lambda kv: (-kv[1], kv[0]))
    # What the caller waited: the root span, not the asynchronous work that outlives it.
    durations = [
        root.end_ns - root.start_ns if (root := trace.root) is not None else 0
        for trace in traces
    ]
    ranked = heapq.nlargest(slowest, range(len(traces)), key=durations.__getitem__)
    trace_latency = LatencyHistogram()
    trace_latency.record_many_ns(durations)
    findings = run_detectors(traces, operations, thresholds)
    counts = dict.fromkeys(DETECTORS, 0)
    for finding in findings:
        counts[finding.detector] += 1
    error_spans = sum(op.errors for op in operations)
    return TraceAnalysis(
        trace_count=len(traces),
        span_count=sum(len(trace.spans) for trace in traces),
        services=sorted({op.service for op in operations}),
        orphan_count=sum(len(trace.orphans) for trace in traces),
        error_spans=error_spans,
        traces_with_errors=len(set().union(*(op.error_trace_ids for op in operations))),
        trace_latency=trace_latency,
        operations=operations,
        path_totals=totals,
        path_total_ns=sum(durations),
        slowest=[critical_path(traces[i]) for i in ranked],
        findings=findings,
        top=top,
        finding_counts=counts,
    )
