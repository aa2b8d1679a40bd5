"""Per-operation statistics: count, errors, duration percentiles, total and self time.

An operation is (service, span name). Self time is a span's duration minus the union of its
children's intervals clipped to the span, so concurrent children are not subtracted twice
and a child outliving its parent (async work) only counts while the parent was open.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ecomctl.analysis.model import SpanRecord, Trace
from ecomctl.histogram import LatencyHistogram

SortKey = Literal["p95", "total", "self", "count", "errors"]


@dataclass(slots=True)
class OperationStats:
    service: str
    name: str
    count: int = 0
    errors: int = 0
    total_ns: int = 0
    self_ns: int = 0
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    # status message -> count, over this operation's error spans
    error_messages: dict[str, int] = field(default_factory=dict)
    error_examples: list[SpanRecord] = field(default_factory=list)  # the first few
    error_trace_ids: set[str] = field(default_factory=set)
    # The sum of each call's self time squared (ns²): with self_ns and count, the spread of
    # the self time per call (``traces diff`` tells a shift from noise with it).
    self_sq_ns2: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @property
    def self_variance_ns2(self) -> float | None:
        """The sample variance of the self time per call; None under two calls."""
        if self.count < 2:
            return None
        mean = self.self_ns / self.count
        return max(self.self_sq_ns2 - mean * self.self_ns, 0.0) / (self.count - 1)

    def to_dict(self) -> dict[str, Any]:
        """Flat: service, name, count, errors, error_rate, the latency summary (min_ms,
        mean_ms, p50_ms ... p999_ms, max_ms), total_ms and self_ms."""
        return {
            "service": self.service,
            "name": self.name,
            "count": self.count,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            **{k: v for k, v in self.histogram.summary().items() if k != "count"},
            "total_ms": round(self.total_ns / 1e6, 3),
            "self_ms": round(self.self_ns / 1e6, 3),
        }


def covered_ns(start: int, end: int, children: list[SpanRecord]) -> int:
    """Length of the union of ``children``'s intervals clipped to [start, end]; children are
    sorted by start (as ``Trace.children`` keeps them)."""
    covered = 0
    run_start = run_end = start
    for child in children:
        cs = child.start_ns
        ce = child.end_ns
        if cs < start:
            cs = start
        if ce > end:
            ce = end
        if ce <= cs:
            continue
        if cs > run_end:
            covered += run_end - run_start
            run_start, run_end = cs, ce
        elif ce > run_end:
            run_end = ce
    return covered + run_end - run_start


def self_time_ns(trace: Trace, span: SpanRecord) -> int:
    """``span``'s duration minus the time its children (clipped to it) cover."""
    kids = trace.children.get(span.span_id)
    duration = span.end_ns - span.start_ns
    return duration - covered_ns(span.start_ns, span.end_ns, kids) if kids else duration


def operation_stats(traces: Iterable[Trace], *, error_examples: int = 5) -> list[OperationStats]:
    """One entry per operation over all ``traces``, most self time first."""
    # Per operation: [durations (ns), time covered by children (ns), error spans or None,
    # the correction of the durations' squares into self times' squares (ns²)]. Counts and
    # totals come from the durations list afterwards (C-level len/sum): the hot loop does as
    # little as possible per span.
    acc: dict[tuple[str, str], list[Any]] = {}
    for trace in traces:
        for span in trace.spans:
            key = (span.service, span.name)
            entry = acc.get(key)
            if entry is None:
                entry = acc[key] = [[], 0, None, 0]
            entry[0].append(span.end_ns - span.start_ns)
            if span.status == "ERROR":
                if entry[2] is None:
                    entry[2] = []
                entry[2].append(span)
        by_id = trace.by_id
        for parent_id, kids in trace.children.items():  # only parents have time to subtract
            parent = by_id[parent_id]
            covered = covered_ns(parent.start_ns, parent.end_ns, kids)
            entry = acc[(parent.service, parent.name)]
            entry[1] += covered
            # (d - c)² = d² + c² - 2dc: the squares of the durations, corrected per parent.
            entry[3] += covered * (covered - 2 * (parent.end_ns - parent.start_ns))
    result = []
    for (service, name), (durations, covered, error_spans, square_fix) in acc.items():
        histogram = LatencyHistogram()
        histogram.record_many_ns(durations)
        total = sum(durations)
        messages: dict[str, int] = {}
        for span in error_spans or ():
            messages[span.status_message] = messages.get(span.status_message, 0) + 1
        result.append(
            OperationStats(
                service, name, len(durations), len(error_spans or ()), total, total - covered,
                histogram, messages, (error_spans or [])[:error_examples],
                {span.trace_id for span in error_spans or ()},
                sum(map(operator.mul, durations, durations)) + square_fix,
            )
        )
    return sort_operations(result, "self")


def sort_operations(stats: list[OperationStats], by: SortKey = "self") -> list[OperationStats]:
    """Largest first by p95 latency, total time, self time, call count or errors."""
    keys: dict[str, Callable[[OperationStats], float]] = {
        "p95": lambda s: s.histogram.percentile_ms(95.0),
        "total": lambda s: s.total_ns,
        "self": lambda s: s.self_ns,
        "count": lambda s: s.count,
        "errors": lambda s: s.errors,
    }
    if by not in keys:
        raise ValueError(f"sort by {by!r}: expected one of {sorted(keys)}")
    key = keys[by]
    return sorted(stats, key=lambda s: (-key(s), s.service, s.name))
