"""Exemplars: the traces behind a latency percentile, so a p99 in a report can be followed to
the requests that make it up.

A row of percentiles (p50, p90, p95, p99, max) cuts the measured durations into buckets: the
p50's holds what took at most the p50, the p90's what took more than the p50 and at most the
p90, and so on. Each rung gets up to ``PER_RUNG`` traces from its bucket, the ones closest to
the rung (a trace id with its duration), so every link lands on a trace that shows that
percentile's latency.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ecomctl.analysis.model import SpanRecord, Trace

K = TypeVar("K")

RUNGS = ("p50", "p90", "p95", "p99", "max")
PER_RUNG = 3


@dataclass(frozen=True, order=True)
class Sample:
    """One measured duration, and the trace it was measured in."""

    duration_ms: float
    trace_id: str


def pick_exemplars(
    samples: Iterable[Sample], summary: Mapping[str, Any], per_rung: int = PER_RUNG
) -> dict[str, list[dict[str, Any]]]:
    """``rung -> [{trace_id, duration_ms}]`` for each rung of ``summary`` (its ``p50_ms``,
    ``p90_ms``... values), closest to the rung first; rungs without a value are left out,
    and so are rungs whose bucket is empty."""
    ordered = sorted(samples)
    durations = [s.duration_ms for s in ordered]
    found: dict[str, list[dict[str, Any]]] = {}
    lower = float("-inf")
    for rung in RUNGS:
        upper = summary.get(f"{rung}_ms")
        if upper is None:
            continue
        first = bisect.bisect_right(durations, lower)
        last = bisect.bisect_right(durations, upper)
        chosen = ordered[max(first, last - per_rung):last][::-1]
        if chosen:
            found[rung] = [{"trace_id": s.trace_id, "duration_ms": round(s.duration_ms, 3)}
                           for s in chosen]
        lower = upper
    return found


def bucket_of(summary: Mapping[str, Any], rung: str) -> tuple[float, float]:
    """The (exclusive, inclusive] duration range a rung's exemplars come from."""
    lower = float("-inf")
    for name in RUNGS:
        upper = summary.get(f"{name}_ms")
        if upper is None:
            continue
        if name == rung:
            return lower, upper
        lower = upper
    raise KeyError(rung)


def span_exemplars(
    traces: Iterable[Trace], key_of: Callable[[SpanRecord], K | None],
    summaries: Mapping[K, Mapping[str, Any]], per_rung: int = PER_RUNG,
) -> dict[K, dict[str, list[dict[str, Any]]]]:
    """Exemplars for each row of ``summaries`` (a key -> its percentiles) from the spans
    ``key_of`` files under that key (None: no row's)."""
    samples: dict[K, list[Sample]] = {key: [] for key in summaries}
    for trace in traces:
        for span in trace.spans:
            key = key_of(span)
            if key is not None and key in samples:
                samples[key].append(Sample((span.end_ns - span.start_ns) / 1e6, span.trace_id))
    return {key: pick_exemplars(found, summaries[key], per_rung)
            for key, found in samples.items()}


def attach_exemplars(rows: Mapping[K, dict[str, Any]], traces: Iterable[Trace],
                     key_of: Callable[[SpanRecord], K | None]) -> None:
    """Adds ``exemplars`` to each row of ``rows`` (a key -> its percentiles), in place."""
    for key, found in span_exemplars(traces, key_of, rows).items():
        rows[key]["exemplars"] = found


def attach_operation_exemplars(operations: Iterable[dict[str, Any]],
                               traces: Iterable[Trace]) -> None:
    """The same for a trace analysis's operation rows (each with its service and name)."""
    attach_exemplars({(o["service"], o["name"]): o for o in operations}, traces, operation_of)


def journey_of(span: SpanRecord) -> str | None:
    """A shopper journey's root span (``journey.checkout``) -> the journey (``checkout``)."""
    if span.parent_span_id is None and span.name.startswith("journey."):
        return span.name.removeprefix("journey.")
    return None


def operation_of(span: SpanRecord) -> tuple[str, str]:
    return span.service, span.name


def timed_samples(traces: Iterable[Trace], key_of: Callable[[SpanRecord], str | None],
                  origin_ns: int) -> dict[str, list[tuple[float, Sample]]]:
    """Per key, each of its spans as a sample with the seconds after ``origin_ns`` at
    which it ended (the input of :func:`phase_exemplars`)."""
    timed: dict[str, list[tuple[float, Sample]]] = {}
    for trace in traces:
        for span in trace.spans:
            key = key_of(span)
            if key is not None:
                timed.setdefault(key, []).append((
                    (span.end_ns - origin_ns) / 1e9,
                    Sample((span.end_ns - span.start_ns) / 1e6, span.trace_id)))
    return timed


def attach_phase_exemplars(report: Mapping[str, Any], traces: Iterable[Trace],
                           key_of: Callable[[SpanRecord], str | None], origin_ns: int) -> None:
    """:func:`phase_exemplars` for a report's fault windows, from the spans ``key_of`` files
    under each target; ``origin_ns``: when the run's timeline starts. No windows, no work."""
    if report.get("fault_windows"):
        phase_exemplars(report, timed_samples(traces, key_of, origin_ns))


def phase_exemplars(report: Mapping[str, Any],
                    timed: Mapping[str, Sequence[tuple[float, Sample]]]) -> None:
    """Adds ``exemplars`` to the phases of a fault report (``fault_windows[*]`` before,
    during and after: overall and per target), in place. ``timed``: per target, each sample
    with the seconds from the run's start at which it completed; a sample belongs to the
    phase that holds the middle of its second, as the phases' figures count it."""
    everything = [item for items in timed.values() for item in items]

    def inside(items: Sequence[tuple[float, Sample]], lo: float, hi: float) -> list[Sample]:
        return [sample for t, sample in items if lo <= math.floor(t) + 0.5 < hi]

    for window in report.get("fault_windows") or ():
        for phase in ("before", "during", "after"):
            figures = window.get(phase)
            if not isinstance(figures, dict) or figures.get("from_s") is None:
                continue
            lo, hi = float(figures["from_s"]), float(figures["to_s"])
            figures["exemplars"] = pick_exemplars(inside(everything, lo, hi), figures)
            for name, target in (figures.get("targets") or {}).items():
                if isinstance(target, dict):
                    target["exemplars"] = pick_exemplars(inside(timed.get(name, ()), lo, hi),
                                                         target)
