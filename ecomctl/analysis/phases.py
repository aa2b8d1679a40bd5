"""Before, during and after a fault window, and how long the shop took to recover.

The input is the run's per-second timeline: what completed in each second, over all requests
(or journeys) and per target (a load run's endpoints, a simulation's journeys), each with its
latency histogram; phases merge the seconds' histograms exactly. Overall figures dilute a
fault that hits one endpoint (a slow payment gateway slows checkout, a few percent of the
requests), so each phase also has its figures per target.

Recovery time runs from the end of a window until p95 is back within 20% of its value before
the fault, for the overall latency and for every target the window slowed; the window's
recovery is the slowest of them. None of the anchor tools measures it, and it is what a fault
drill is for: did the shop come back, and how fast?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecomctl.histogram import LatencyHistogram

RECOVERY_TOLERANCE = 0.2
"""Recovered: p95 within this share above its before-the-fault value..."""
RECOVERY_MIN_ABSOLUTE_MS = 5.0
"""...or within this many milliseconds of it: 7 ms then 11 ms is +57% but noise, not an
outage still felt (the rule ``gate compare`` applies to regressions)."""
RECOVERY_MIN_SAMPLES = 5
"""Samples a recovery check needs: it widens its window (from 1 s) until it has them."""
RECOVERY_MAX_WINDOW_S = 10
OVERALL = ""


@dataclass
class Tally:
    """What completed in one second, overall or for one target."""

    count: int = 0
    errors: int = 0
    histogram: LatencyHistogram | None = None
    encoded: Sequence[str] = ()
    """Or encoded histograms (merged when read): a long run's seconds stay small."""

    def latency(self) -> LatencyHistogram:
        if self.histogram is not None:
            return self.histogram
        return LatencyHistogram.decode_sum(self.encoded)


@dataclass
class TimeBucket(Tally):
    """One second of the run."""

    t: int = 0
    """Seconds from the start of the run (the bucket covers [t, t+1))."""
    checkouts: int = 0
    """Paid checkouts."""
    targets: Mapping[str, Tally] = field(default_factory=dict)
    """Per endpoint (load run) or journey (simulation)."""

    def tally(self, target: str) -> Tally | None:
        return self if target == OVERALL else self.targets.get(target)


@dataclass
class _Sum:
    histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    count: int = 0
    errors: int = 0
    checkouts: int = 0

    def add(self, tally: Tally, checkouts: int = 0) -> None:
        self.histogram.merge(tally.latency())
        self.count += tally.count
        self.errors += tally.errors
        self.checkouts += checkouts

    def figures(self, length: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "errors": self.errors,
                               "error_rate": round(self.errors / self.count, 4)
                               if self.count else 0.0}
        if length is not None:
            length = max(0.0, length)
            out["seconds"] = round(length, 3)
            out["throughput_per_s"] = round(self.count / length, 3) if length else 0.0
            out["checkouts_per_s"] = round(self.checkouts / length, 3) if length else 0.0
        for name, q in (("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)):
            out[name] = round(self.histogram.percentile_ms(q), 3) if self.count else None
        return out


def _inside(bucket: TimeBucket, spans: Iterable[tuple[float, float]]) -> bool:
    # A second belongs to the phase holding its middle.
    return any(lo <= bucket.t + 0.5 < hi for lo, hi in spans)


def _phase(buckets: Sequence[TimeBucket], spans: Sequence[tuple[float, float]]) -> dict[str, Any]:
    overall, targets = _Sum(), dict[str, _Sum]()
    for bucket in buckets:
        if not _inside(bucket, spans):
            continue
        overall.add(bucket, bucket.checkouts)
        for name, tally in bucket.targets.items():
            targets.setdefault(name, _Sum()).add(tally)
    figures = overall.figures(sum(hi - lo for lo, hi in spans))
    if len(spans) == 1:
        figures = {"from_s": round(spans[0][0], 3), "to_s": round(spans[0][1], 3), **figures}
    figures["targets"] = {name: s.figures() for name, s in sorted(targets.items())}
    return figures


def phase_figures(buckets: Sequence[TimeBucket], lo: float, hi: float) -> dict[str, Any]:
    """p50/p95/p99, error rate and rates over ``[lo, hi)`` seconds of the run, overall and
    per target."""
    return _phase(buckets, [(lo, hi)])


def recovery_s(buckets: Sequence[TimeBucket], end_s: float, limit_s: float,
               baseline_p95_ms: float | None, target: str = OVERALL) -> float | None:
    """Seconds from ``end_s`` until the p95 of ``target`` is back within
    ``recovered_bound_ms`` of ``baseline_p95_ms``; None when it never is before ``limit_s``
    (the next window or the end of the run) or there is no baseline. Each check takes the
    samples of the seconds from its start until there are ``RECOVERY_MIN_SAMPLES``."""
    if baseline_p95_ms is None:
        return None
    bound = recovered_bound_ms(baseline_p95_ms)
    after = [b for b in buckets if end_s <= b.t + 0.5 < limit_s]
    # Each second's histogram is decoded once, and only the seconds a check can still reach
    # are kept: an hour that never recovers decodes 3,600 histograms, not five times that.
    decoded: dict[int, Tally | None] = {}
    for i, first in enumerate(after):
        decoded.pop(i - 1, None)
        window = _Sum()
        for j in range(i, len(after)):
            if after[j].t >= first.t + RECOVERY_MAX_WINDOW_S:
                break
            if j not in decoded:
                decoded[j] = _decoded(after[j].tally(target))
            tally = decoded[j]
            if tally is not None:
                window.add(tally)
            if window.count >= RECOVERY_MIN_SAMPLES:
                break
        if window.count < RECOVERY_MIN_SAMPLES:
            continue
        if window.histogram.percentile_ms(95.0) <= bound:
            return round(max(0.0, first.t - end_s), 3)
    return None


def recovered_bound_ms(baseline_p95_ms: float) -> float:
    """The highest p95 that counts as back to ``baseline_p95_ms`` (and as not slowed)."""
    return max(baseline_p95_ms * (1 + RECOVERY_TOLERANCE),
               baseline_p95_ms + RECOVERY_MIN_ABSOLUTE_MS)


def _decoded(tally: Tally | None) -> Tally | None:
    if tally is None or tally.histogram is not None:
        return tally
    return Tally(tally.count, tally.errors, tally.latency())


@dataclass(frozen=True)
class Window:
    label: str
    start_s: float
    end_s: float


def _slowed(before: Mapping[str, Any], during: Mapping[str, Any]) -> list[str]:
    """The targets whose p95 rose beyond the tolerance during the window (with enough
    samples on both sides to say so)."""
    names = []
    for name, figures in during["targets"].items():
        base = before["targets"].get(name)
        if (base and base["count"] >= RECOVERY_MIN_SAMPLES
                and figures["count"] >= RECOVERY_MIN_SAMPLES
                and figures["p95_ms"] > recovered_bound_ms(base["p95_ms"])):
            names.append(name)
    return names


def _window_recovery(buckets: Sequence[TimeBucket], window: Window, limit_s: float,
                     before: Mapping[str, Any], during: Mapping[str, Any]) -> dict[str, Any]:
    """The window's recovery: the slowest of overall and of every target it slowed."""
    checks = {OVERALL: before["p95_ms"]}
    checks.update({name: before["targets"][name]["p95_ms"] for name in _slowed(before, during)})
    times = {name: recovery_s(buckets, window.end_s, limit_s, base, name)
             for name, base in checks.items()}
    never = [name or "overall" for name, value in times.items() if value is None]
    slowest = max(times, key=lambda n: times[n] or 0.0)
    return {
        "recovery_s": None if never else times[slowest],
        "recovery_of": never[0] if never else slowest or "overall",
        "slowed": [name for name in checks if name],
    }


def _before(window: Window, previous_end: float) -> tuple[float, float]:
    """As long as the window, right before it (not before the previous window's end): the
    shop's state just before the fault, not its warm-up at the start of the run."""
    return max(previous_end, window.start_s - (window.end_s - window.start_s)), window.start_s


def _after(window: Window, next_start: float) -> tuple[float, float]:
    """As long as the window, right after it (not past the next window's start)."""
    return window.end_s, min(next_start, window.end_s + (window.end_s - window.start_s))


def fault_phases(buckets: Sequence[TimeBucket], windows: Sequence[Window],
                 run_s: float) -> dict[str, Any]:
    """``{"phases": {before, during, after}, "windows": [...], "recovery_s"}``.

    Each phase is as long as its window: before is the stretch of that length right before
    it (since the previous window at most), after the stretch right after it (until the
    next window at most). ``phases`` sums up every window: before the first, during any,
    after the last. Each window has its recovery time against its own before-p95, looked
    for until the next window or the end of the run.
    """
    ordered = sorted(windows, key=lambda w: w.start_s)
    if not ordered:
        return {}
    per_window: list[dict[str, Any]] = []
    for i, window in enumerate(ordered):
        previous_end = ordered[i - 1].end_s if i else 0.0
        next_start = ordered[i + 1].start_s if i + 1 < len(ordered) else run_s
        before = phase_figures(buckets, *_before(window, previous_end))
        during = phase_figures(buckets, window.start_s, window.end_s)
        per_window.append({
            "fault": window.label, "start_s": window.start_s, "end_s": window.end_s,
            "before": before, "during": during,
            "after": phase_figures(buckets, *_after(window, next_start)),
            **_window_recovery(buckets, window, next_start, before, during),
        })
    recoveries = [w["recovery_s"] for w in per_window]
    return {
        "phases": {
            "before": phase_figures(buckets, *_before(ordered[0], 0.0)),
            "during": _phase(buckets, [(w.start_s, w.end_s) for w in ordered]),
            "after": phase_figures(buckets, *_after(max(ordered, key=lambda w: w.end_s),
                                                    run_s)),
        },
        "windows": per_window,
        # The slowest window's; None when one never recovered.
        "recovery_s": None if None in recoveries
        else max(r for r in recoveries if r is not None),
    }


def fault_report(buckets: Sequence[TimeBucket], windows: Sequence[dict[str, Any]],
                 run_s: float) -> dict[str, Any]:
    """The result's ``fault_windows`` (each as scheduled and as it happened, ``start_s`` and
    ``end_s`` from the run's start, with its phases and recovery), ``phases`` and
    ``recovery_s``; empty without windows."""
    if not windows:
        return {}
    happened = [Window(w["fault"], w["start_s"], w["end_s"]) for w in windows
                if w["start_s"] is not None and w["end_s"] is not None]
    analysis = fault_phases(buckets, happened, run_s)
    by_start = {(w["fault"], w["start_s"]): w for w in analysis.get("windows", [])}
    return {"fault_windows": [{**w, **by_start.get((w["fault"], w["start_s"]), {})}
                              for w in windows],
            "phases": analysis.get("phases"), "recovery_s": analysis.get("recovery_s")}
