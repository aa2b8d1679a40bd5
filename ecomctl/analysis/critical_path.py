"""The critical path of a trace, computed as Jaeger UI computes it.

Start at the root with the whole root interval open. Repeatedly: among the current span's
children (clipped to the span; children wholly outside it are dropped), take the one that
finished last before the current point in time; the gap between its end and that point is the
current span's own time on the path; descend into it with the point at its end. When a span
has no such child, its remaining time back to its start is on the path, and the walk returns
to its parent with the point at the span's start. A returning walk only takes children that
ended strictly before the point, as Jaeger does.

The segments cover the root's interval exactly, without overlaps, so "time on the critical
path" per operation adds up to the root's duration.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ecomctl.analysis.model import SpanRecord, Trace

_end = attrgetter("end_ns")


# A stretch of the critical path spent in a span itself (not in a child): (span, start, end).
# Plain tuples: a trace analysis makes one per span on every path.
PathSegment = tuple[SpanRecord, int, int]


@dataclass(slots=True)
class CriticalPath:
    trace_id: str
    root: SpanRecord | None
    segments: list[PathSegment]  # chronological

    @property
    def total_ns(self) -> int:
        """The root's duration: the segments cover it exactly."""
        return self.root.end_ns - self.root.start_ns if self.root else 0

    @property
    def span_ids(self) -> set[str]:
        return {span.span_id for span, _, _ in self.segments}

    def by_operation(self) -> list[tuple[tuple[str, str], int]]:
        """(service, name) -> time on the path, largest first."""
        totals = segment_time_by_operation(self.segments)
        return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))

    def to_dict(self) -> dict[str, Any]:
        total = self.total_ns
        origin = self.root.start_ns if self.root else 0
        return {
            "trace_id": self.trace_id,
            "root": _label(self.root) if self.root else None,
            "duration_ms": round(total / 1e6, 3),
            "segments": [
                {
                    "span_id": span.span_id,
                    "service": span.service,
                    "name": span.name,
                    "offset_ms": round((start - origin) / 1e6, 3),
                    "duration_ms": round((end - start) / 1e6, 3),
                }
                for span, start, end in self.segments
            ],
            "by_operation": operation_shares(self.by_operation(), total),
        }


def _label(span: SpanRecord) -> dict[str, str]:
    return {"span_id": span.span_id, "service": span.service, "name": span.name}


def operation_shares(
    items: Iterable[tuple[tuple[str, str], int]], total_ns: int
) -> list[dict[str, Any]]:
    return [
        {
            "service": service,
            "name": name,
            "ms": round(ns / 1e6, 3),
            "share": round(ns / total_ns, 4) if total_ns else 0.0,
        }
        for (service, name), ns in items
    ]


def critical_path(trace: Trace, root: SpanRecord | None = None) -> CriticalPath:
    """The critical path from ``root`` (default: the trace's root), as segments."""
    top = root or trace.root
    segments: list[PathSegment] = []
    if top is not None:
        _walk(trace, top, segments, None)
        segments.reverse()  # the walk goes backwards in time
    return CriticalPath(trace.trace_id, top, segments)


def path_time_by_operation(traces: Iterable[Trace]) -> dict[tuple[str, str], int]:
    """Time on the critical path per (service, name), summed over ``traces`` (no segments
    are kept: each span's time on the path is added up as the walk leaves it)."""
    totals: dict[tuple[str, str], int] = {}
    for trace in traces:
        top = trace.root
        if top is not None:
            _walk(trace, top, None, totals)
    return totals


def segment_time_by_operation(segments: Iterable[PathSegment]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for span, start, end in segments:
        key = (span.service, span.name)
        totals[key] = totals.get(key, 0) + end - start
    return totals


def _walk(
    trace: Trace,
    top: SpanRecord,
    segments: list[PathSegment] | None,
    totals: dict[tuple[str, str], int] | None,
) -> None:
    """Jaeger's walk from ``top``; appends segments (latest first) and/or adds each span's
    time on the path to ``totals``."""
    children = trace.children
    kids = children.get(top.span_id)
    if not kids:
        if top.end_ns > top.start_ns:
            if segments is not None:
                segments.append((top, top.start_ns, top.end_ns))
            if totals is not None:
                key = (top.service, top.name)
                totals[key] = totals.get(key, 0) + top.end_ns - top.start_ns
        return
    # A frame: [span, clipped start, clipped end, children by end (latest first), next index,
    # the span's own time on the path so far]. Children are clipped when taken; leaves get no
    # frame at all (most spans are leaves).
    stack: list[list[Any]] = [
        [top, top.start_ns, top.end_ns, sorted(kids, key=_end, reverse=True), 0, 0]
    ]
    point = top.end_ns
    while stack:
        current = stack[-1]
        span, start, end, ordered, i, _ = current
        n = len(ordered)
        # Next child that overlaps the span and, when returning, ended before the point.
        while i < n:
            child = ordered[i]
            if child.end_ns <= start or child.start_ns >= end:
                i += 1  # wholly outside the parent: Jaeger drops it
            elif child.end_ns >= point and point < end:
                i += 1  # returning: only children that ended strictly before the point
            else:
                break
        if i < n:
            child = ordered[i]
            current[4] = i + 1
            cs = child.start_ns if child.start_ns > start else start
            ce = child.end_ns if child.end_ns < end else end
            if ce < point:
                if segments is not None:
                    segments.append((span, ce, point))
                current[5] += point - ce
            grandchildren = children.get(child.span_id)
            if grandchildren:
                stack.append(
                    [child, cs, ce, sorted(grandchildren, key=_end, reverse=True), 0, 0]
                )
                point = ce
            else:
                if cs < ce:
                    if segments is not None:
                        segments.append((child, cs, ce))
                    if totals is not None:
                        key = (child.service, child.name)
                        totals[key] = totals.get(key, 0) + ce - cs
                point = cs
        else:
            if start < point:
                if segments is not None:
                    segments.append((span, start, point))
                current[5] += point - start
            if totals is not None and current[5]:
                key = (span.service, span.name)
                totals[key] = totals.get(key, 0) + current[5]
            stack.pop()
            point = start
