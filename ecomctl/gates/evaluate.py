"""Evaluating a gates file against a result (``ecomctl.results``' records).

Every gate becomes one ``GateOutcome`` per target it reaches (a glob reaches each matching
journey, endpoint, span operation or cache), in the order of the gates file. A target missing
from the result, a metric with no samples, or a trace file that cannot be read is a failed
outcome with a message saying so, never an exception: CI should read why, not a traceback.

Percentiles come from the result's latency summaries (``targets``); ``error_rate`` is
``errors / count``; the totals' latency metrics come from the exact merge of the journeys'
(or, for load runs, the endpoints') HdrHistograms. Trace assertions read the spans of its
``trace_file`` (relative paths are taken from the result file's directory) or of an
explicit source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecomctl.analysis.attributes import attribute
from ecomctl.errors import ConfigError
from ecomctl.gates.spec import (
    GatesSpec,
    InvariantsGate,
    Kind,
    MetricGate,
    Threshold,
    TraceAssertion,
    TraceGate,
    attribute_text,
)
from ecomctl.gates.targets import (
    Target,
    Totals,
    matches,
    recovery_ms,
    result_targets,
    target_metric,
)
from ecomctl.results import Invariant, LoadRunResult, Result, SimulationResult

if TYPE_CHECKING:
    from ecomctl.analysis.model import SpanRecord

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


def evaluate_metrics(gates: Iterable[MetricGate], result: Result) -> list[GateOutcome]:
    totals = Totals(result)
    outcomes: list[GateOutcome] = []
    for gate in gates:
        if gate.section == "totals":
            outcomes.append(_outcome(gate, "totals", *totals.metric(gate.metric)))
            continue
        if gate.section == "recovery":
            outcomes.append(_outcome(gate, "recovery", *recovery_ms(result)))
            continue
        present = result_targets(result, gate.section)
        reached = sorted((name, target) for name, target in present.items()
                         if matches(gate.section, gate.pattern, name, target))
        if not reached:
            outcomes.append(_missing_target(gate, present))
            continue
        for name, target in reached:
            outcomes.append(_outcome(gate, name,
                                     *target_metric(target, gate.metric, result.duration_s)))
    return outcomes


def _missing_target(gate: MetricGate, present: Mapping[str, Target]) -> GateOutcome:
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


def evaluate_invariants(gate: InvariantsGate, result: Result) -> list[GateOutcome]:
    listed = result.invariants if isinstance(result, SimulationResult | LoadRunResult) else None
    invariants = {i.name: i for i in listed or ()}

    def outcome(name: str, invariant: Invariant | None) -> GateOutcome:
        if invariant is None:
            return GateOutcome("invariants", name, "holds", "ok", None, "missing", False,
                               f"invariant {name!r} is not in the result", gate.line)
        ok = invariant.ok
        detail = invariant.detail or ""
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
    value = attribute(span.attributes, assertion.attribute)  # current or deprecated name
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


def trace_file_of(result: Result, result_dir: Path | None) -> Path | None:
    """The result's trace capture; a relative path is taken from the result's directory."""
    value = result.trace_file if isinstance(result, SimulationResult | LoadRunResult) else None
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and result_dir is not None:
        path = result_dir / path
    return path


# -- the whole file ---------------------------------------------------------------------------


def evaluate(
    spec: GatesSpec,
    result: Result,
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
    result: Result, traces: str | Path | None, result_dir: Path | None
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
