"""Evaluating a gates file against a result document (``ecomctl.result/v1``).

Every gate becomes one ``GateOutcome`` per target it reaches (a glob reaches each matching
journey, endpoint, span operation or cache), in the order of the gates file. A target missing
from the result, a metric with no samples, or a trace file that cannot be read is a failed
outcome with a message saying so, never an exception: CI should read why, not a traceback.

Percentiles come from the result's latency summaries; ``error_rate`` is ``errors / count``;
the totals' latency metrics come from the exact merge of the journeys' (or, for load runs,
the endpoints') HdrHistograms. Trace assertions read the spans of ``result["trace_file"]``
(relative paths are taken from the result file's directory) or of an explicit source.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecomctl.errors import ConfigError
from ecomctl.gates.spec import (
    LATENCY_FIELDS,
    GatesSpec,
    InvariantsGate,
    Kind,
    MetricGate,
    Threshold,
    TraceAssertion,
    TraceGate,
    attribute_text,
    glob_match,
)

if TYPE_CHECKING:
    from ecomctl.analysis.model import SpanRecord
    from ecomctl.histogram import LatencyHistogram

_SINGULAR = {"journeys": "journey", "endpoints": "endpoint", "spans": "span operation",
             "cache": "cache", "bench": "bench row", "phases": "phase"}


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """One gate on one target: what was observed against what was required."""

    section: str  # journeys | endpoints | spans | totals | cache | bench | invariants | traces
    target: str  # a journey, "service name", a cache's service, an invariant, a trace gate
    metric: str  # p95, error_rate... ; "holds" for invariants; the assertion for traces
    threshold: str  # "< 1500ms"; "ok" for invariants
    observed: float | None  # in the metric's canonical unit (ms, ratio, /s, count)
    observed_text: str  # for people: "193ms", "0.33%", "missing"
    passed: bool
    message: str  # why it failed, or a detail worth showing
    line: int  # of the gate in the gates file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GateReport:
    source: str  # the gates file
    outcomes: tuple[GateOutcome, ...]
    trace_source: str | None = None  # where trace assertions read spans, if any
    spans_read: int = 0

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[GateOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "ecomctl.gates-report/v1",
            "gates_file": self.source,
            "passed": self.passed,
            "gates": len(self.outcomes),
            "failures": len(self.failures),
            "trace_source": self.trace_source,
            "spans_read": self.spans_read,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


# -- formatting -------------------------------------------------------------------------------


def format_value(value: float | None, kind: Kind) -> str:
    """A canonical value (ms, ratio, per second, count) as people write it."""
    if value is None:
        return "-"
    if kind is Kind.DURATION:
        return format_ms(value)
    if kind is Kind.RATIO:
        return f"{value * 100:.3g}%" if value else "0%"
    if kind is Kind.RATE:
        return f"{value:.3g}/s" if value < 1000 else f"{value:.0f}/s"
    return f"{value:g}"


def format_ms(ms: float) -> str:
    if abs(ms) >= 1000:
        return f"{ms / 1000:.3g}s"
    if abs(ms) >= 1 or ms == 0:
        return f"{ms:.4g}ms"
    return f"{ms * 1000:.3g}us"


# -- metric gates -----------------------------------------------------------------------------


def result_targets(result: Mapping[str, Any], section: str) -> dict[str, Mapping[str, Any]]:
    """target -> summary (or cache statistics) of one section of a result document; span
    operations are keyed ``"service name"``."""
    if section == "spans":
        spans = result.get("spans")
        if not isinstance(spans, list):
            return {}
        return {f"{op.get('service')} {op.get('name')}": op for op in spans
                if isinstance(op, Mapping)}
    if section == "phases":
        return _phase_targets(result.get("phases"))
    if section == "bench":
        rows = result.get("rows")
        if not isinstance(rows, list):
            return {}
        return {str(row.get("name")): row for row in rows if isinstance(row, Mapping)}
    block = result.get(section)
    if not isinstance(block, Mapping):
        return {}
    return {str(k): v for k, v in block.items() if isinstance(v, Mapping)}


def _phase_targets(phases: Any) -> dict[str, Mapping[str, Any]]:
    """``during`` (overall) and ``during POST /api/checkout`` (one endpoint or journey)."""
    if not isinstance(phases, Mapping):
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for phase, figures in phases.items():
        if not isinstance(figures, Mapping):
            continue
        out[str(phase)] = figures
        targets = figures.get("targets")
        for name, target in (targets.items() if isinstance(targets, Mapping) else ()):
            if isinstance(target, Mapping):
                out[f"{phase} {name}"] = target
    return out


def _matches(section: str, pattern: str, target: str, summary: Mapping[str, Any]) -> bool:
    if glob_match(target, pattern):
        return True
    # A span pattern may name the operation alone, whatever service runs it.
    return section == "spans" and glob_match(str(summary.get("name", "")), pattern)





def as_number(value: Any) -> float | None:
    """A JSON number as a float; None for anything else (null, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def error_rate(summary: Mapping[str, Any]) -> float | None:
    """errors / count (the result's own rounded error_rate when there are no counts)."""
    count, errors = as_number(summary.get("count")), as_number(summary.get("errors"))
    if count and errors is not None:
        return errors / count
    return as_number(summary.get("error_rate"))


def _summary_metric(summary: Mapping[str, Any], metric: str,
                    duration_s: float | None) -> tuple[float | None, str]:
    """(value, why it is missing) of a latency-summary metric."""
    if metric == "rps":
        value = as_number(summary.get("rps"))
        count = as_number(summary.get("count"))
        if value is None and count is not None and duration_s:
            value = count / duration_s
        return (value, "") if value is not None else (None, "no rps (and no duration_s)")
    if metric in LATENCY_FIELDS:
        value = as_number(summary.get(LATENCY_FIELDS[metric]))
        if value is None:
            no_samples = not summary.get("count")
            return None, "no samples" if no_samples else f"no {LATENCY_FIELDS[metric]}"
        return value, ""
    if metric == "error_rate":
        value = error_rate(summary)
        return (value, "") if value is not None else (None, "no samples")
    value = as_number(summary.get(metric))
    return (value, "") if value is not None else (None, f"no {metric!r} in the result")


def _recovery_ms(result: Mapping[str, Any]) -> tuple[float | None, str]:
    """The slowest fault window's recovery time, in ms."""
    windows = result.get("fault_windows")
    if not isinstance(windows, list) or not windows:
        return None, "the result has no fault windows (run with --fault-schedule)"
    value = as_number(result.get("recovery_s"))
    if value is None:
        slow = [str(w.get("fault")) for w in windows
                if isinstance(w, Mapping) and w.get("recovery_s") is None]
        return None, (f"p95 did not come back within 20% of before the fault after "
                      f"{', '.join(slow) or 'a window'}")
    # Decimal, as the threshold is: 1.001 s * 1000 is 1000.9999999999999 in binary, and
    # would pass "recovery < 1001ms".
    return float(Decimal(repr(value)) * 1000), ""


def _cache_metric(stats: Mapping[str, Any], metric: str) -> tuple[float | None, str]:
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


def _bench_metric(row: Mapping[str, Any], metric: str) -> tuple[float | None, str]:
    """``ratio``, or the ``value`` of the row's ``floor`` / ``ecomctl`` figure."""
    field = row.get(metric)
    value = as_number(field.get("value") if isinstance(field, Mapping) else field)
    return (value, "") if value is not None else (None, f"no {metric} in the bench row")


# Totals metrics whose field differs between result kinds (simulate first, then load run).
_TOTALS_FIELDS = {
    "throughput_per_s": ("throughput_per_s", "rps"), "rps": ("rps", "throughput_per_s"),
    "errors": ("errors", "failures"), "failures": ("failures", "errors"),
}


class _Totals:
    """The totals block, plus latency over the merged histograms (merged once, on demand)."""

    def __init__(self, result: Mapping[str, Any]) -> None:
        self._result = result
        totals = result.get("totals")
        self._totals: Mapping[str, Any] = totals if isinstance(totals, Mapping) else {}
        self._merged: tuple[LatencyHistogram | None, str] | None = None

    def metric(self, metric: str) -> tuple[float | None, str]:
        if metric in LATENCY_FIELDS:
            histogram, why = self._histogram()
            if histogram is None:
                return None, why
            if not histogram.count:
                return None, "no samples"
            return _histogram_metric(histogram, metric), ""
        for field in _TOTALS_FIELDS.get(metric, (metric,)):
            value = as_number(self._totals.get(field))
            if value is not None:
                return value, ""
        if metric == "checkouts_per_s":
            checkouts = self._totals.get("checkouts")
            paid = as_number(checkouts.get("paid", 0)) if isinstance(checkouts, Mapping) else None
            duration = as_number(self._result.get("duration_s"))
            if paid is not None and duration:
                return paid / duration, ""
        return None, f"no totals.{metric} in the result"

    def _histogram(self) -> tuple[LatencyHistogram | None, str]:
        if self._merged is None:
            self._merged = self._merge()
        return self._merged

    def _merge(self) -> tuple[LatencyHistogram | None, str]:
        from ecomctl.histogram import LatencyHistogram

        for section in ("journeys", "endpoints"):
            summaries = result_targets(self._result, section)
            if not summaries:
                continue
            merged = LatencyHistogram()
            for name, summary in summaries.items():
                encoded = summary.get("hdr")
                if not isinstance(encoded, str):
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


def _outcome(
    gate: MetricGate, target: str, value: float | None, why: str
) -> GateOutcome:
    threshold = gate.threshold
    if value is None:
        return GateOutcome(gate.section, target, gate.metric, threshold.text, None, "missing",
                           False, why, gate.line)
    observed = format_value(value, threshold.kind)
    passed = threshold.holds(value)
    message = "" if passed else f"{gate.metric} {observed}, required {threshold.text}"
    return GateOutcome(gate.section, target, gate.metric, threshold.text, value, observed,
                       passed, message, gate.line)


def evaluate_metrics(
    gates: Iterable[MetricGate], result: Mapping[str, Any]
) -> list[GateOutcome]:
    totals = _Totals(result)
    duration_s = as_number(result.get("duration_s"))
    outcomes: list[GateOutcome] = []
    for gate in gates:
        if gate.section == "totals":
            outcomes.append(_outcome(gate, "totals", *totals.metric(gate.metric)))
            continue
        if gate.section == "recovery":
            outcomes.append(_outcome(gate, "recovery", *_recovery_ms(result)))
            continue
        summaries = result_targets(result, gate.section)
        targets = [(t, s) for t, s in summaries.items()
                   if _matches(gate.section, gate.pattern, t, s)]
        if not targets:
            outcomes.append(_missing_target(gate, summaries))
            continue
        for target, summary in sorted(targets):
            if gate.section == "cache":
                outcomes.append(_outcome(gate, target, *_cache_metric(summary, gate.metric)))
            elif gate.section == "bench":
                outcomes.append(_outcome(gate, target, *_bench_metric(summary, gate.metric)))
            else:
                outcomes.append(_outcome(gate, target,
                                         *_summary_metric(summary, gate.metric, duration_s)))
    return outcomes


def _missing_target(gate: MetricGate, present: Mapping[str, Any]) -> GateOutcome:
    what = _SINGULAR[gate.section]
    if not present:
        why = f"the result has no {gate.section}"
    else:
        names = sorted(present)
        shown = ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")
        why = f"no {what} matches {gate.pattern!r} in the result (present: {shown})"
    return GateOutcome(gate.section, gate.pattern, gate.metric, gate.threshold.text, None,
                       "missing", False, why, gate.line)


# -- invariants -------------------------------------------------------------------------------


def evaluate_invariants(gate: InvariantsGate, result: Mapping[str, Any]) -> list[GateOutcome]:
    listed = result.get("invariants")
    invariants = {str(i.get("name")): i for i in listed or () if isinstance(i, Mapping)}

    def outcome(name: str, invariant: Mapping[str, Any] | None) -> GateOutcome:
        if invariant is None:
            return GateOutcome("invariants", name, "holds", "ok", None, "missing", False,
                               f"invariant {name!r} is not in the result", gate.line)
        ok = invariant.get("ok") is True
        detail = str(invariant.get("detail", ""))
        return GateOutcome("invariants", name, "holds", "ok", 1.0 if ok else 0.0,
                           "ok" if ok else "broken", ok, "" if ok else detail, gate.line)

    if gate.names is None:
        if not invariants:
            return [GateOutcome("invariants", "*", "holds", "ok", None, "missing", False,
                                "the result has no invariants", gate.line)]
        return [outcome(name, inv) for name, inv in invariants.items()]
    return [outcome(name, invariants.get(name)) for name in gate.names]


# -- trace assertions -------------------------------------------------------------------------


def _where(span: SpanRecord) -> str:
    return f"trace {span.trace_id} span {span.span_id} ({span.service} {span.name})"


def _assert(gate: TraceGate, assertion: TraceAssertion,
            selected: Sequence[SpanRecord]) -> GateOutcome:
    def outcome(observed: float | None, text: str, passed: bool, message: str) -> GateOutcome:
        threshold = assertion.threshold.text if assertion.threshold else assertion.op
        return GateOutcome("traces", gate.name, assertion.text, threshold, observed, text,
                           passed, message, assertion.line)

    threshold = assertion.threshold
    if assertion.subject in ("count", "errors"):
        assert threshold is not None
        value = float(len(selected) if assertion.subject == "count"
                      else sum(1 for s in selected if s.is_error))
        passed = threshold.holds(value)
        message = "" if passed else (f"{assertion.subject} {value:g}, required "
                                     f"{threshold.text} (select {gate.selector.describe()})")
        return outcome(value, f"{value:g}", passed, message)
    if not selected:
        return outcome(None, "no spans", False,
                       f"no span matched (select {gate.selector.describe()})")
    if assertion.subject == "duration":
        assert threshold is not None
        return _duration(selected, threshold, outcome)
    broken = [s for s in selected if not _attribute_holds(assertion, s)]
    total = len(selected)
    if not broken:
        return outcome(float(total), f"{total}/{total} spans", True, "")
    key = assertion.attribute
    problem = {"exists": f"lack {key}", "missing": f"carry {key}",
               "==": f"lack {key} = {assertion.value}",
               "!=": f"have {key} = {assertion.value}"}[assertion.op]
    return outcome(float(total - len(broken)), f"{total - len(broken)}/{total} spans", False,
                   f"{len(broken)} of {total} spans {problem}, e.g. {_where(broken[0])}")


_Outcome = Callable[[float | None, str, bool, str], GateOutcome]


def _duration(selected: Sequence[SpanRecord], threshold: Threshold,
              outcome: _Outcome) -> GateOutcome:
    worst_first = sorted(selected, key=lambda s: s.duration_ns, reverse=threshold.upper_bound)
    broken = [s for s in worst_first if not threshold.holds(s.duration_ns / 1e6)]
    worst = broken[0] if broken else worst_first[0]
    ms = worst.duration_ns / 1e6
    text = f"worst {format_ms(ms)}"
    if not broken:
        return outcome(ms, text, True, "")
    return outcome(ms, text, False, f"{len(broken)} of {len(selected)} spans break "
                                    f"{threshold.text}; worst {format_ms(ms)}: {_where(worst)}")


def _attribute_holds(assertion: TraceAssertion, span: SpanRecord) -> bool:
    value = span.attributes.get(assertion.attribute)
    if assertion.op == "exists":
        return value is not None
    if assertion.op == "missing":
        return value is None
    equal = value is not None and attribute_text(value) == assertion.value
    return equal if assertion.op == "==" else not equal


def evaluate_traces(gates: Iterable[TraceGate], spans: Sequence[SpanRecord]) -> list[GateOutcome]:
    """Each trace gate's assertions over the spans its selector picks."""
    outcomes: list[GateOutcome] = []
    for gate in gates:
        selected = [s for s in spans if gate.selector.matches(s)]
        outcomes += [_assert(gate, a, selected) for a in gate.assertions]
    return outcomes


def _unreadable(gates: Iterable[TraceGate], why: str) -> list[GateOutcome]:
    return [
        GateOutcome("traces", gate.name, a.text,
                    a.threshold.text if a.threshold else a.op, None, "no spans", False, why,
                    a.line)
        for gate in gates for a in gate.assertions
    ]


def trace_file_of(result: Mapping[str, Any], result_dir: Path | None) -> Path | None:
    """The result's trace capture; a relative path is taken from the result's directory."""
    value = result.get("trace_file")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and result_dir is not None:
        path = result_dir / path
    return path


# -- the whole file ---------------------------------------------------------------------------


def evaluate(
    spec: GatesSpec,
    result: Mapping[str, Any],
    *,
    traces: str | Path | None = None,
    result_dir: Path | None = None,
) -> GateReport:
    """Every gate of ``spec`` against ``result``.

    ``traces`` overrides the result's ``trace_file`` (any ``load_spans`` source); when given,
    an unreadable source raises ``ConfigError``, whereas an unreadable ``trace_file`` of the
    result fails the trace gates with the reason.
    """
    outcomes = evaluate_metrics(spec.metrics, result)
    if spec.invariants is not None:
        outcomes += evaluate_invariants(spec.invariants, result)
    trace_source: str | None = None
    spans_read = 0
    if spec.traces:
        spans, trace_source, why = _trace_spans(result, traces, result_dir)
        if spans is None:
            outcomes += _unreadable(spec.traces, why)
        else:
            spans_read = len(spans)
            outcomes += evaluate_traces(spec.traces, spans)
    return _report(spec, outcomes, trace_source, spans_read)


def _trace_spans(
    result: Mapping[str, Any], traces: str | Path | None, result_dir: Path | None
) -> tuple[list[SpanRecord] | None, str | None, str]:
    """(spans or None, the source, why there are none)."""
    from ecomctl.analysis.readers import load_spans

    if traces is not None:
        return load_spans(traces), str(traces), ""
    path = trace_file_of(result, result_dir)
    if path is None:
        return None, None, "the result names no trace_file (pass --traces FILE)"
    try:
        return load_spans(path), str(path), ""
    except ConfigError as exc:
        return None, str(path), f"cannot read the result's trace file: {exc}"


def _report(spec: GatesSpec, outcomes: list[GateOutcome], trace_source: str | None,
            spans_read: int) -> GateReport:
    # The file's order: people read the table next to the gates file.
    ordered = sorted(enumerate(outcomes), key=lambda item: (item[1].line, item[0]))
    return GateReport(spec.source, tuple(o for _, o in ordered), trace_source, spans_read)
