"""What a gate measures on a result record: its targets by section, and a metric of each.

Journeys, endpoints, span operations and fault phases are typed summaries (a count, errors,
latency percentiles); bench rows are typed too. Cache statistics are kept as the producer's
JSON in a result (the two kinds write different shapes), so they are read as a mapping here.
Every lookup answers ``(value, why it is missing)``: a gate fails with the reason, never with
an exception.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias

from ecomctl.gates.spec import LATENCY_FIELDS, glob_match
from ecomctl.results import (
    BenchResult,
    BenchRowResult,
    LatencyStats,
    LatencySummary,
    LoadRunResult,
    Operation,
    Result,
    SimulationResult,
)
from ecomctl.results.common import PhaseFigures
from ecomctl.results.fields import Record

if TYPE_CHECKING:
    from ecomctl.histogram import LatencyHistogram

Summary: TypeAlias = LatencyStats | Operation | PhaseFigures
"""A target with a count, errors and latency percentiles."""
Target: TypeAlias = Summary | BenchRowResult | Mapping[str, Any]
"""A summary, a bench row, or a service's cache statistics."""
Found: TypeAlias = tuple[float | None, str]
"""(the value, or None and why it is missing)."""

_RUNS = (SimulationResult, LoadRunResult)

# Totals metrics whose field differs between result kinds (simulate first, then load run).
_TOTALS_FIELDS = {
    "throughput_per_s": ("throughput_per_s", "rps"), "rps": ("rps", "throughput_per_s"),
    "errors": ("errors", "failures"), "failures": ("failures", "errors"),
}


def as_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def field_value(record: Record, name: str) -> float | None:
    """A numeric field of ``record`` by name, or one its producer added (``extra``)."""
    known = {f.name for f in dataclasses.fields(record)} - {"extra", "keys"}
    return as_number(getattr(record, name) if name in known else record.extra.get(name))


# -- targets ----------------------------------------------------------------------------------


def summaries(result: Result, section: str) -> dict[str, Summary]:
    """target -> summary of ``journeys``, ``endpoints``, ``spans`` (keyed ``"service name"``)
    or ``phases`` (``during``, and ``during POST /api/checkout`` for one target)."""
    if isinstance(result, BenchResult):
        return {}
    if section == "journeys":
        return dict(result.journeys or {})
    if section == "endpoints":
        return dict(result.endpoints) if isinstance(result, LoadRunResult) else {}
    if section == "spans":
        return {f"{op.service} {op.name}": op for op in result.spans or []}
    if section == "phases":
        out: dict[str, Summary] = {}
        for phase, figures in (result.phases or {}).items():
            out[phase] = figures
            for name, target in (figures.targets or {}).items():
                out[f"{phase} {name}"] = target
        return out
    return {}


def result_targets(result: Result, section: str) -> dict[str, Target]:
    """target -> what a gate of ``section`` reads on it."""
    if section == "bench":
        return ({row.name: row for row in result.rows} if isinstance(result, BenchResult)
                else {})
    if section == "cache":
        cache = result.cache if isinstance(result, _RUNS) else None
        return {str(k): v for k, v in (cache or {}).items() if isinstance(v, Mapping)}
    return dict(summaries(result, section))


def matches(section: str, pattern: str, name: str, target: Target) -> bool:
    if glob_match(name, pattern):
        return True
    # A span pattern may name the operation alone, whatever service runs it.
    return section == "spans" and isinstance(target, Operation) and glob_match(target.name,
                                                                                pattern)


# -- metrics of one target --------------------------------------------------------------------


def latency_of(target: Summary) -> LatencySummary:
    if isinstance(target, PhaseFigures):  # phases carry p50, p95 and p99 only
        return LatencySummary(p50_ms=target.p50_ms, p95_ms=target.p95_ms, p99_ms=target.p99_ms)
    return target.latency


def error_rate(target: Summary) -> float | None:
    """errors / count (the producer's rounded error_rate when there are no counts)."""
    if target.count and target.errors is not None:
        return target.errors / target.count
    return as_number(target.error_rate)


def summary_metric(target: Summary, metric: str, duration_s: float | None) -> Found:
    if metric == "rps":
        value = as_number(target.rps) if isinstance(target, LatencyStats) else None
        if value is None and target.count is not None and duration_s:
            value = target.count / duration_s
        return (value, "") if value is not None else (None, "no rps (and no duration_s)")
    if metric in LATENCY_FIELDS:
        value = as_number(latency_of(target).get(LATENCY_FIELDS[metric]))
        if value is None:
            return None, "no samples" if not target.count else f"no {LATENCY_FIELDS[metric]}"
        return value, ""
    if metric == "error_rate":
        value = error_rate(target)
        return (value, "") if value is not None else (None, "no samples")
    value = field_value(target, metric)
    return (value, "") if value is not None else (None, f"no {metric!r} in the result")


def cache_metric(stats: Mapping[str, Any], metric: str) -> Found:
    if metric.endswith("_hit_ratio") and metric != "hit_ratio":
        level = metric.removesuffix("_hit_ratio")
        levels = stats.get("levels")
        level_stats = levels.get(level) if isinstance(levels, Mapping) else None
        if not isinstance(level_stats, Mapping):
            return None, f"no cache level {level!r}"
        value = as_number(level_stats.get("hit_ratio"))
    else:
        value = as_number(stats.get(metric))
    return (value, "") if value is not None else (None, f"no {metric} (no requests?)")


def bench_metric(row: BenchRowResult, metric: str) -> Found:
    """``ratio``, or the ``value`` of the row's ``floor`` / ``ecomctl`` figure."""
    value = (row.floor.value if metric == "floor" else row.ecomctl.value if metric == "ecomctl"
             else field_value(row, metric))
    return (value, "") if value is not None else (None, f"no {metric} in the bench row")


def target_metric(target: Target, metric: str, duration_s: float | None) -> Found:
    if isinstance(target, BenchRowResult):
        return bench_metric(target, metric)
    if isinstance(target, LatencyStats | Operation | PhaseFigures):
        return summary_metric(target, metric, duration_s)
    return cache_metric(target, metric)


# -- the whole run ----------------------------------------------------------------------------


class Totals:
    """The totals block, plus latency over the merged histograms (merged once, on demand)."""

    def __init__(self, result: Result) -> None:
        self._result = result
        self._merged: tuple[LatencyHistogram | None, str] | None = None

    def metric(self, metric: str) -> Found:
        if metric in LATENCY_FIELDS:
            histogram, why = self._histogram()
            if histogram is None:
                return None, why
            if not histogram.count:
                return None, "no samples"
            return _histogram_metric(histogram, metric), ""
        result = self._result
        if isinstance(result, _RUNS):
            for field in _TOTALS_FIELDS.get(metric, (metric,)):
                value = field_value(result.totals, field)
                if value is not None:
                    return value, ""
            checkouts = result.totals.checkouts
            if metric == "checkouts_per_s" and checkouts is not None and result.duration_s:
                return float(checkouts.get("paid", 0)) / result.duration_s, ""
        return None, f"no totals.{metric} in the result"

    def _histogram(self) -> tuple[LatencyHistogram | None, str]:
        if self._merged is None:
            self._merged = self._merge()
        return self._merged

    def _merge(self) -> tuple[LatencyHistogram | None, str]:
        from ecomctl.histogram import LatencyHistogram

        for section in ("journeys", "endpoints"):
            stats = summaries(self._result, section)
            if not stats:
                continue
            merged = LatencyHistogram()
            for name, target in stats.items():
                encoded = target.hdr if isinstance(target, LatencyStats) else None
                if encoded is None:
                    return None, f"{section}.{name} has no histogram (hdr) to merge"
                try:
                    merged.merge(LatencyHistogram.decode(encoded))
                except ValueError as exc:
                    return None, f"{section}.{name}: {exc}"
            return merged, ""
        return None, "no journeys or endpoints in the result"


def _histogram_metric(histogram: LatencyHistogram, metric: str) -> float:
    if metric == "min":
        return histogram.min_us / 1000
    if metric == "max":
        return histogram.max_us / 1000
    if metric == "mean":
        return round(histogram.mean_us / 1000, 3)
    quantile = 99.9 if metric in ("p999", "p99.9") else float(metric[1:])
    return histogram.percentile_ms(quantile)


def recovery_ms(result: Result) -> Found:
    """The slowest fault window's recovery time, in ms."""
    if not isinstance(result, _RUNS) or not result.fault_windows:
        return None, "the result has no fault windows (run with --fault-schedule)"
    windows = result.fault_windows
    value = as_number(result.recovery_s)
    if value is None:
        slow = [w.fault for w in windows if w.recovery_s is None]
        return None, (f"p95 did not come back within 20% (or 5 ms) of before the fault after "
                      f"{', '.join(slow) or 'a window'}")
    # Decimal, as the threshold is: 1.001 s * 1000 is 1000.9999999999999 in binary, and
    # would pass "recovery < 1001ms".
    return float(Decimal(repr(value)) * 1000), ""
