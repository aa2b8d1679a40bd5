"""Comparing a run with a baseline run: did any journey, endpoint or span get slower?

For every target present in both results (journeys, endpoints, and span operations
keyed ``"service name"``) the latency percentiles (p50, p95, p99 by default) are compared.
A latency change is a regression only when it exceeds BOTH the relative threshold
(``max_regression``, e.g. 10%) and the absolute one (``min_absolute_ms``, e.g. 5 ms): 2 ms to
3 ms is +50% but only +1 ms, which is noise, not a regression. Improvements are the same test
downwards; they are reported, never failed. The error rate (errors / count) is compared by
an absolute tolerance in percentage points (``max_error_increase``, e.g. 0.01 = +1 point).

Targets found in only one run are listed as appeared or disappeared, and targets with fewer
than ``min_count`` samples in either run are not compared (their percentiles are noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ecomctl.gates.evaluate import format_ms
from ecomctl.gates.spec import LATENCY_FIELDS
from ecomctl.gates.targets import Summary, as_number, error_rate, latency_of, summaries
from ecomctl.results import Result

Verdict = Literal["regression", "improvement", "same"]
Status = Literal["compared", "appeared", "disappeared", "too few samples"]

SECTIONS = ("journeys", "endpoints", "spans")
DEFAULT_PERCENTILES = ("p50", "p95", "p99")


@dataclass(frozen=True, slots=True)
class CompareOptions:
    max_regression: float = 0.10  # relative: 0.10 = +10%
    min_absolute_ms: float = 5.0  # and at least this many milliseconds
    max_error_increase: float = 0.01  # absolute: 0.01 = +1 percentage point
    min_count: int = 1  # fewer samples in either run: not compared
    percentiles: tuple[str, ...] = DEFAULT_PERCENTILES

    def __post_init__(self) -> None:
        unknown = [p for p in self.percentiles if p not in LATENCY_FIELDS]
        if unknown:
            raise ValueError(f"unknown percentile(s) {', '.join(unknown)} (expected "
                             f"{', '.join(LATENCY_FIELDS)})")

    def to_dict(self) -> dict[str, Any]:
        return {"max_regression": self.max_regression, "min_absolute_ms": self.min_absolute_ms,
                "max_error_increase": self.max_error_increase, "min_count": self.min_count,
                "percentiles": list(self.percentiles)}


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str  # p50, p95, p99... or error_rate
    baseline: float  # ms, or a ratio for error_rate
    current: float
    verdict: Verdict

    @property
    def change(self) -> float:
        return self.current - self.baseline

    @property
    def relative(self) -> float | None:
        """The change relative to the baseline; None when the baseline is 0."""
        return self.change / self.baseline if self.baseline else None

    def to_dict(self) -> dict[str, Any]:
        relative = self.relative
        return {"metric": self.metric, "baseline": self.baseline, "current": self.current,
                "change": round(self.change, 6),
                "relative": None if relative is None else round(relative, 6),
                "verdict": self.verdict}


@dataclass(frozen=True, slots=True)
class TargetComparison:
    section: str  # journeys | endpoints | spans
    target: str
    status: Status
    baseline_count: int | None = None
    current_count: int | None = None
    deltas: tuple[MetricDelta, ...] = ()

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.verdict == "regression"]

    @property
    def improvements(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.verdict == "improvement"]

    @property
    def verdict(self) -> str:
        """regression (any metric), improvement (some, none worse), same, or the status."""
        if self.status != "compared":
            return self.status
        if self.regressions:
            return "regression"
        return "improvement" if self.improvements else "same"

    def to_dict(self) -> dict[str, Any]:
        return {"section": self.section, "target": self.target, "status": self.status,
                "verdict": self.verdict, "baseline_count": self.baseline_count,
                "current_count": self.current_count,
                "deltas": [d.to_dict() for d in self.deltas]}


@dataclass(frozen=True, slots=True)
class Comparison:
    options: CompareOptions
    targets: tuple[TargetComparison, ...] = field(default=())

    @property
    def regressed(self) -> list[TargetComparison]:
        return [t for t in self.targets if t.regressions]

    @property
    def passed(self) -> bool:
        return not self.regressed

    def with_status(self, status: str) -> list[TargetComparison]:
        return [t for t in self.targets if t.status == status]

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for target in self.targets:
            counts[target.verdict] = counts.get(target.verdict, 0) + 1
        return {"schema": "ecomctl.gates-compare/v1", "passed": self.passed,
                "options": self.options.to_dict(), "counts": counts,
                "targets": [t.to_dict() for t in self.targets]}


def latency_verdict(baseline: float, current: float, options: CompareOptions) -> Verdict:
    """Worse (or better) by more than both the relative and the absolute threshold?"""
    change = current - baseline
    if abs(change) <= options.min_absolute_ms:
        return "same"
    relative = abs(change) / baseline if baseline > 0 else math.inf
    if relative <= options.max_regression:
        return "same"
    return "regression" if change > 0 else "improvement"


def error_verdict(baseline: float, current: float, options: CompareOptions) -> Verdict:
    change = current - baseline
    # A hair of tolerance so that 1.00 points on a 1-point limit is not float noise.
    if abs(change) <= options.max_error_increase + 1e-12:
        return "same"
    return "regression" if change > 0 else "improvement"


def _compare_target(section: str, target: str, base: Summary, cur: Summary,
                    options: CompareOptions) -> TargetComparison:
    base_count, cur_count = base.count or 0, cur.count or 0
    if min(base_count, cur_count) < max(options.min_count, 1):
        return TargetComparison(section, target, "too few samples", base_count, cur_count)
    deltas: list[MetricDelta] = []
    for metric in options.percentiles:
        key = LATENCY_FIELDS[metric]
        before = as_number(latency_of(base).get(key))
        after = as_number(latency_of(cur).get(key))
        if before is not None and after is not None:
            deltas.append(MetricDelta(metric, before, after,
                                      latency_verdict(before, after, options)))
    before, after = error_rate(base), error_rate(cur)
    if before is not None and after is not None:
        deltas.append(MetricDelta("error_rate", before, after,
                                  error_verdict(before, after, options)))
    return TargetComparison(section, target, "compared", base_count, cur_count, tuple(deltas))


def compare_results(
    baseline: Result,
    current: Result,
    options: CompareOptions | None = None,
) -> Comparison:
    """Every journey, endpoint and span operation of the two runs, compared."""
    options = options or CompareOptions()
    targets: list[TargetComparison] = []
    for section in SECTIONS:
        before, after = summaries(baseline, section), summaries(current, section)
        for target in sorted(before.keys() | after.keys()):
            if target not in after:
                count = before[target].count or 0
                targets.append(TargetComparison(section, target, "disappeared", count, None))
            elif target not in before:
                count = after[target].count or 0
                targets.append(TargetComparison(section, target, "appeared", None, count))
            else:
                targets.append(_compare_target(section, target, before[target],
                                               after[target], options))
    return Comparison(options, tuple(targets))


def describe_delta(delta: MetricDelta) -> str:
    """``p95 100ms -> 130ms (+30ms, +30%)``; error rates in percent and points."""
    if delta.metric == "error_rate":
        points = delta.change * 100
        return (f"error_rate {delta.baseline * 100:.3g}% -> {delta.current * 100:.3g}% "
                f"({points:+.3g} points)")
    relative = delta.relative
    rel = "from 0" if relative is None else f"{relative * 100:+.1f}%"
    return (f"{delta.metric} {format_ms(delta.baseline)} -> {format_ms(delta.current)} "
            f"({'+' if delta.change >= 0 else '-'}{format_ms(abs(delta.change))}, {rel})")
