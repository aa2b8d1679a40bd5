"""Two sets of traces compared operation by operation: which span got slower, what appeared or
vanished, where the critical path moved, and which detector findings are new.

    result = diff_traces(group_traces(load_spans(base)), group_traces(load_spans(current)))
    result.operations[0]                      # the slowest-growing operation (default sort)
    result.evaluate([parse_fail_rule("p95>+20% and p95>+5ms")])   # what CI fails on
    result.to_dict()                          # the documented JSON shape below

An operation is (service, span name), as in the analysis. An operation found in only one run
counts as zero calls (and zero time) in the other, so a statement that appeared is a change
from nothing, not a missing row.

**Self time added** is the current self time per call minus the baseline's, times the current
calls: how much longer the current run spent in the operation itself than the baseline would
have for the same calls. Unlike a difference of totals it does not move when one run simply
made more calls, and unlike a percentile it charges a slower statement where the time went,
not every span above it. But a few calls that vary a lot (logins queueing for the password
hash on a busy machine) can add more of it by chance than a real slowdown does, so the
default order is the **signal**: the self time added that the noise cannot explain. The
shift per call is judged against its standard error (Welch's, from each run's spread of self
time per call over its calls): ``signal = calls x (|shift| - 3 standard errors)``, with the
shift's sign, and 0 when the shift is within three standard errors. A statement 50 ms slower
on each of 17 calls is nearly all signal; logins 190 ms slower on average over 6 calls that
each took anything from 0.3 to 3.5 s are none. One call has no spread to judge it by: its
spread is taken as large as its time, so a single call is never signal on its own. Rows with
the same signal (0, within noise) follow by self time added. ``t`` (shift / standard error)
is reported beside it, and ``why`` says it in words: ``+50.9 ms/call over 17 calls, t=85``.

Traces whose root carries ``ecom.setup`` (``checkout simulate`` marks its shoppers' logins so:
work before the measured run) are left out of both sides unless ``include_setup``.

JSON (``TraceDiff.to_dict()``)::

    {
      "schema": "ecomctl.trace-diff/1",
      "sort": "self" | "p50" | "p95" | "p99" | "calls" | "path" | "errors",
      "base": SIDE, "current": SIDE,
      "counts": {"operations": int, "compared": int, "appeared": int, "vanished": int},
      "operations": [                           # by the sort key, the largest increase first
        {"service": str, "name": str, "status": "compared" | "appeared" | "vanished",
         "why": str,                            # why the row ranks where it does
         "statement": str | null,               # database spans: the statement shape that
                                                # took the most time (current run first)
         "base": OP | null, "current": OP | null,
         "change": {"count": int, "p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms",
                    "self_per_call_ms", "self_added_ms", "signal_ms", "error_rate",
                    "path_share": float,
                    "standard_error_ms": float,  # of the self time shift per call
                    "t": float | null},         # shift / standard error; null without spread
         "relative": {"count", "p50", "p95", "p99", "self_per_call": float | null}},
        ...],                                   # relative: null when the base is 0
      "findings": {"base": {detector: int}, "current": {detector: int},
                   "new": [FINDING + {"occurrences": int}, ...],     # in current only
                   "resolved": [FINDING + {"occurrences": int}, ...]},  # in base only
      "fail_on": {"min_count": int, "rules": [{"rule": str, "broken": bool,
                  "breaches": [{"service": str | null, "name": str | null,
                                "observed": str}, ...]}, ...]},
      "passed": bool
    }

    SIDE = {"source": str | null, "traces": int, "spans": int, "trace_latency": LATENCY,
            "setup_traces_left_out": int}
    OP = {"count", "errors", "error_rate", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
          "mean_ms", "self_ms" (total), "self_per_call_ms", "self_sd_ms" (null under 2 calls),
          "path_ms", "path_share"}

``--fail-on`` rules (``parse_fail_rule``): ``METRIC OP CHANGE``, several joined by ``and``
(all must hold for one operation). OP is ``> >= < <=``. CHANGE is relative (``+20%``) or
absolute in the metric's unit: a duration for ``p50 p90 p95 p99 p999 max mean self added``
(``+5ms``, ``+1.5s``), a number for ``calls`` and ``findings``, percentage points for
``error_rate`` and ``path`` (``+5%`` or ``+5pt``). ``self`` is self time per call; ``added``
is self time added and ``signal`` the part of it beyond noise (both absolute only);
``findings`` counts new findings (alone in its rule).
An operation is judged only with at least ``min_count`` calls in each run it appears in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ecomctl.analysis.detectors import (
    DETECTORS,
    ERROR_HOT_SPOT,
    N_PLUS_ONE,
    ORPHAN_SPANS,
    SEQUENTIAL_CALLS,
    DetectorThresholds,
    Finding,
    statement_shape,
)
from ecomctl.analysis.model import Trace, without_setup
from ecomctl.analysis.report import TraceAnalysis, analyze
from ecomctl.analysis.stats import OperationStats
from ecomctl.durations import parse_duration_ms

SCHEMA = "ecomctl.trace-diff/1"

NOISE_ERRORS = 3.0
"""How many standard errors a shift of self time per call must stand clear of to count as
signal. Three, not two: the calls of one run share its conditions (a busy CPU slows all of
them together), so they vary less independently than the standard error assumes."""

Status = Literal["compared", "appeared", "vanished"]

# Latency metrics: name in rules -> key of a latency summary.
_LATENCY = {"p50": "p50_ms", "p90": "p90_ms", "p95": "p95_ms", "p99": "p99_ms",
            "p999": "p999_ms", "max": "max_ms", "mean": "mean_ms"}
_TIME_METRICS = (*_LATENCY, "self", "added", "signal")
_TOTAL_METRICS = ("added", "signal")  # over all calls: absolute changes only
_RATIO_METRICS = ("error_rate", "path")
_COUNT_METRICS = ("calls",)
RULE_METRICS = (*_TIME_METRICS, *_COUNT_METRICS, *_RATIO_METRICS, "findings")


# -- one operation on one side -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationSide:
    """An operation's figures in one run."""

    count: int
    errors: int
    latency: dict[str, Any]  # LatencyHistogram.summary() without count (ms, None when empty)
    self_ns: int
    path_ns: int  # time on the critical path, summed over the run's traces
    path_share: float  # of the run's summed root durations
    self_variance_ns2: float | None = None  # of the self time per call; None under 2 calls

    @classmethod
    def of(cls, stats: OperationStats, path_ns: int, path_total_ns: int) -> OperationSide:
        latency = {k: v for k, v in stats.histogram.summary().items() if k != "count"}
        return cls(stats.count, stats.errors, latency, stats.self_ns, path_ns,
                   path_ns / path_total_ns if path_total_ns else 0.0,
                   stats.self_variance_ns2)

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    @property
    def self_per_call_ns(self) -> float:
        return self.self_ns / self.count if self.count else 0.0

    @property
    def mean_variance_ms2(self) -> float:
        """The variance of the mean self time per call (ms²). One call has no spread to
        measure: it is taken as large as the call's time (so one call is never signal)."""
        if not self.count:
            return 0.0
        per_call = self.self_per_call_ns / 1e6
        variance = (self.self_variance_ns2 / 1e12 if self.self_variance_ns2 is not None
                    else per_call * per_call)
        return variance / self.count

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            **{key: self.latency.get(key) for key in
               ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")},
            "self_ms": round(self.self_ns / 1e6, 3),
            "self_per_call_ms": round(self.self_per_call_ns / 1e6, 3),
            "self_sd_ms": (None if self.self_variance_ns2 is None
                           else round(math.sqrt(self.self_variance_ns2) / 1e6, 3)),
            "path_ms": round(self.path_ns / 1e6, 3),
            "path_share": round(self.path_share, 4),
        }


def _value(side: OperationSide | None, metric: str) -> float:
    """``metric`` on one side in its unit (ms, calls, ratio); an absent side is zero."""
    if side is None:
        return 0.0
    if metric in _LATENCY:
        value = side.latency.get(_LATENCY[metric])
        return float(value) if value is not None else 0.0
    if metric == "self":
        return side.self_per_call_ns / 1e6
    if metric == "calls":
        return float(side.count)
    if metric == "error_rate":
        return side.error_rate
    if metric == "path":
        return side.path_share
    raise ValueError(f"no per-side value for {metric!r}")


@dataclass(slots=True)
class OperationDiff:
    service: str
    name: str
    base: OperationSide | None
    current: OperationSide | None
    statement: str | None = None

    @property
    def status(self) -> Status:
        if self.base is None:
            return "appeared"
        if self.current is None:
            return "vanished"
        return "compared"

    @property
    def self_added_ns(self) -> float:
        """(current self time per call - the baseline's) x current calls; all the current
        self time for an operation that appeared, minus the baseline's when it vanished."""
        if self.current is None:
            return -float(self.base.self_ns) if self.base else 0.0
        base_per_call = self.base.self_per_call_ns if self.base else 0.0
        return self.current.self_ns - base_per_call * self.current.count

    @property
    def calls(self) -> int:
        """The calls a shift per call is multiplied by: the current run's, the baseline's
        for an operation that vanished."""
        side = self.current or self.base
        return side.count if side else 0

    @property
    def standard_error_ms(self) -> float:
        """Welch's standard error of the shift of self time per call (an absent side adds
        nothing: it spent no time)."""
        return math.sqrt(sum(side.mean_variance_ms2 for side in (self.base, self.current)
                             if side is not None))

    @property
    def t(self) -> float:
        """The shift of self time per call over its standard error; +-inf when neither run
        spread at all, 0 without a shift."""
        shift, error = self.change("self"), self.standard_error_ms
        if error:
            return shift / error
        return 0.0 if not shift else math.copysign(math.inf, shift)

    @property
    def signal_ms(self) -> float:
        """The self time added beyond noise: calls x (|shift| - NOISE_ERRORS standard
        errors), with the shift's sign; 0 within noise."""
        shift = self.change("self")
        clear = abs(shift) - NOISE_ERRORS * self.standard_error_ms
        return math.copysign(clear * self.calls, shift) if clear > 0 else 0.0

    def change(self, metric: str) -> float:
        """Current minus base, in the metric's unit (ms for time, calls, ratio)."""
        if metric == "added":
            return self.self_added_ns / 1e6
        if metric == "signal":
            return self.signal_ms
        return _value(self.current, metric) - _value(self.base, metric)

    def relative(self, metric: str) -> float:
        """The change relative to the base: +inf (or -inf) from a base of zero, 0 when both
        are zero."""
        before = _value(self.base, metric)
        change = self.change(metric)
        if before:
            return change / before
        return 0.0 if not change else math.copysign(math.inf, change)

    def judged(self, min_count: int) -> bool:
        """Enough calls in each run that has the operation for its figures to mean much."""
        return all(side is None or side.count >= min_count for side in (self.base, self.current))

    def to_dict(self) -> dict[str, Any]:
        def rel(metric: str) -> float | None:
            value = self.relative(metric)
            return round(value, 4) if math.isfinite(value) else None

        return {
            "service": self.service,
            "name": self.name,
            "status": self.status,
            "statement": self.statement,
            "base": self.base.to_dict() if self.base else None,
            "current": self.current.to_dict() if self.current else None,
            "change": {
                "count": int(self.change("calls")),
                **{f"{m}_ms": round(self.change(m), 3)
                   for m in ("p50", "p95", "p99", "max", "mean")},
                "self_per_call_ms": round(self.change("self"), 3),
                "self_added_ms": round(self.change("added"), 3),
                "signal_ms": round(self.signal_ms, 3),
                "error_rate": round(self.change("error_rate"), 4),
                "path_share": round(self.change("path"), 4),
                "standard_error_ms": round(self.standard_error_ms, 3),
                "t": round(self.t, 2) if math.isfinite(self.t) else None,
            },
            "relative": {"count": rel("calls"), "p50": rel("p50"), "p95": rel("p95"),
                         "p99": rel("p99"), "self_per_call": rel("self")},
        }


# What each sort key orders by: a metric of ``OperationDiff.change``.
SORT_METRIC = {"self": "signal", "added": "added", "p50": "p50", "p95": "p95", "p99": "p99",
               "calls": "calls", "path": "path", "errors": "error_rate"}


SORT_KEYS = tuple(SORT_METRIC)


def sort_diffs(diffs: Iterable[OperationDiff], by: str = "self") -> list[OperationDiff]:
    """The largest increase first: self time added beyond noise (then self time added), self
    time added, a percentile, calls, critical-path share or error rate (each as an absolute
    change)."""
    if by not in SORT_METRIC:
        raise ValueError(f"sort by {by!r}: expected one of {', '.join(SORT_KEYS)}")
    metric = SORT_METRIC[by]
    return sorted(diffs, key=lambda d: (-d.change(metric), -d.change("added"), d.service,
                                        d.name))


def _ms(value: float) -> str:
    return f"{value:+,.1f}" if abs(value) < 100 else f"{value:+,.0f}"


def describe_shift(diff: OperationDiff) -> str:
    """Why a row ranks where it does by self time: ``+50.9 ms/call over 17 calls, t=85``
    (the shift of self time per call, the calls it is multiplied by, its t), ``+187
    ms/call over 6 calls, noise (t=1.9)`` within three standard errors, ``steady`` when
    neither run varied."""
    calls = diff.calls
    per_call = diff.change("self")
    text = f"{_ms(per_call)} ms/call over {calls:,} call{'s' if calls != 1 else ''}"
    t = diff.t
    if not per_call:
        return text
    if math.isinf(t):
        return f"{text}, steady"
    shown = f"t={abs(t):.1f}" if abs(t) < 100 else f"t={abs(t):,.0f}"
    if diff.signal_ms:
        return f"{text}, {shown}"
    if any(side is not None and side.count == 1 for side in (diff.base, diff.current)):
        return f"{text}, noise (one call)"
    return f"{text}, noise ({shown})"


def why(diff: OperationDiff, sort: str) -> str:
    """What puts the row where it is under ``sort``: the self time shift and its evidence,
    or the sorted metric's change."""
    metric = SORT_METRIC[sort]
    if metric in ("signal", "added"):
        return describe_shift(diff)
    return describe_change(diff, metric)


# -- findings ---------------------------------------------------------------------------------


def finding_signatures(finding: Finding) -> list[tuple[Any, ...]]:
    """What makes two findings "the same problem" across runs: the place and the shape, not
    the trace or span ids. Orphan spans count per orphaned operation: which spans of a trace
    lose their parent varies from trace to trace, which operations do much less."""
    d = finding.details
    parent = d.get("parent") or {}
    if finding.detector == N_PLUS_ONE:
        return [(N_PLUS_ONE, parent.get("service"), parent.get("name"), d.get("db_system"),
                 d.get("statement_shape"))]
    if finding.detector == SEQUENTIAL_CALLS:
        return [(SEQUENTIAL_CALLS, parent.get("service"), parent.get("name"),
                 tuple(sorted(set(d.get("targets") or ()))))]
    if finding.detector == ORPHAN_SPANS:
        return sorted({(ORPHAN_SPANS, s.get("service"), s.get("name"))
                       for s in d.get("spans") or ()})
    if finding.detector == ERROR_HOT_SPOT:
        return [(ERROR_HOT_SPOT, d.get("service"), d.get("name"))]
    return [(finding.detector, finding.message)]


@dataclass(slots=True)
class FindingChange:
    """One kind of finding present in only one run: its strongest example, how often."""

    finding: Finding
    occurrences: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.finding.to_dict(), "occurrences": self.occurrences}


def _only_in(findings: Iterable[Finding], other: Iterable[Finding]) -> list[FindingChange]:
    """One entry per problem (signature) of ``findings`` that ``other`` does not have: its
    strongest example and in how many findings it occurs."""
    known = {signature for f in other for signature in finding_signatures(f)}
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    for finding in findings:
        for signature in finding_signatures(finding):
            if signature not in known:
                groups.setdefault(signature, []).append(finding)
    changes = [FindingChange(max(group, key=lambda f: f.impact_ns), len(group))
               for group in groups.values()]
    order = {name: i for i, name in enumerate(DETECTORS)}
    changes.sort(key=lambda c: (order.get(c.finding.detector, len(order)),
                                -c.finding.impact_ns, c.finding.message))
    return changes


# -- fail-on rules ----------------------------------------------------------------------------

_OPERATORS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
              "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}
_CONDITION = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*(.+?)\s*$", re.I)
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)$")
_JOIN = re.compile(r"\s+and\s+|\s*&&?\s*", re.I)
RULE_EXAMPLES = "e.g. 'p95>+20%', 'self>+10ms', 'p95>+20% and p95>+5ms', 'findings>0'"


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    op: str
    value: float  # a fraction when relative; else ms, calls, a ratio or a finding count
    relative: bool
    text: str

    def observed(self, diff: OperationDiff) -> float:
        return diff.relative(self.metric) if self.relative else diff.change(self.metric)

    def holds(self, diff: OperationDiff) -> bool:
        return bool(_OPERATORS[self.op](self.observed(diff), self.value))


@dataclass(frozen=True, slots=True)
class FailRule:
    text: str
    conditions: tuple[Condition, ...]

    @property
    def on_findings(self) -> bool:
        return self.conditions[0].metric == "findings"


def _signed(text: str) -> tuple[float, str]:
    """``+20%`` -> (1.0, "20%"); a change without a sign is an increase."""
    text = text.strip()
    if text[:1] in "+-":
        return (-1.0 if text[0] == "-" else 1.0), text[1:].strip()
    return 1.0, text


def _number(text: str, what: str) -> float:
    if not _NUMBER.match(text):
        raise ValueError(f"{what}: {text!r} is not a number")
    return float(text)


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text)
    if match is None:
        raise ValueError(f"{text.strip()!r}: expected METRIC OP CHANGE ({RULE_EXAMPLES})")
    metric, op, raw = match.group(1).lower(), match.group(2), match.group(3)
    if metric not in RULE_METRICS:
        raise ValueError(f"{text.strip()!r}: unknown metric {metric!r} (expected "
                         f"{', '.join(RULE_METRICS)})")
    sign, magnitude = _signed(raw)
    relative = False
    if metric == "findings":
        value = _number(magnitude, text.strip())
    elif metric in _RATIO_METRICS:
        # A change of a ratio is in percentage points: error_rate>+1% is one point more.
        if magnitude.endswith(("%", "pt")):
            value = _number(magnitude.removesuffix("%").removesuffix("pt").strip(),
                            text.strip()) / 100
        else:
            value = _number(magnitude, text.strip())
            if value > 1:
                raise ValueError(f"{text.strip()!r}: a ratio change is a fraction (0.05) or "
                                 f"points (+5% or +5pt)")
    elif magnitude.endswith("%"):
        if metric in _TOTAL_METRICS:
            raise ValueError(f"{text.strip()!r}: self time added is absolute (e.g. "
                             f"{metric}>+200ms); use self>+N% for a relative change per call")
        value = _number(magnitude[:-1].strip(), text.strip()) / 100
        relative = True
    elif metric in _COUNT_METRICS:
        value = _number(magnitude, text.strip())
    else:
        try:
            value = parse_duration_ms(magnitude)
        except ValueError as exc:
            raise ValueError(f"{text.strip()!r}: a {metric} change is a percentage (+20%) or a "
                             f"duration with a unit (+5ms): {exc}") from None
    return Condition(metric, op, sign * value, relative, text.strip())


def parse_fail_rule(text: str) -> FailRule:
    """``p95>+20%``, ``self>+10ms``, ``p95>+20% and p95>+5ms``, ``findings>0`` (see the
    module docstring). Raises ValueError saying what is wrong."""
    parts = [p for p in _JOIN.split(text.strip()) if p.strip()]
    if not parts:
        raise ValueError(f"an empty rule ({RULE_EXAMPLES})")
    conditions = tuple(parse_condition(p) for p in parts)
    if any(c.metric == "findings" for c in conditions) and len(conditions) > 1:
        raise ValueError(f"{text.strip()!r}: findings>N stands alone (it counts new findings, "
                         "not an operation's change)")
    return FailRule(" and ".join(c.text for c in conditions), conditions)


@dataclass(frozen=True, slots=True)
class Breach:
    service: str | None
    name: str | None
    observed: str

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "observed": self.observed}


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule: FailRule
    breaches: tuple[Breach, ...]

    @property
    def broken(self) -> bool:
        return bool(self.breaches)

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.text, "broken": self.broken,
                "breaches": [b.to_dict() for b in self.breaches]}


def describe_change(diff: OperationDiff, metric: str) -> str:
    """``p95 40.2 -> 95.1 ms (+54.9 ms, +137%)``; points for ratios."""
    if metric == "added":
        return f"self time added {diff.change('added'):+,.1f} ms"
    if metric == "signal":
        return (f"self time added beyond noise {diff.signal_ms:+,.1f} ms "
                f"({describe_shift(diff)})")
    before, after = _value(diff.base, metric), _value(diff.current, metric)

    def shown(side: OperationSide | None, value: float, style: str) -> str:
        return "-" if side is None else format(value, style)

    if metric in _RATIO_METRICS:
        return (f"{metric} {shown(diff.base, before, '.1%')} -> "
                f"{shown(diff.current, after, '.1%')} ({diff.change(metric) * 100:+.1f} points)")
    relative = diff.relative(metric)
    rel = f"{relative:+.0%}" if math.isfinite(relative) else "new" if relative > 0 else "gone"
    if metric == "calls":
        return f"calls {before:,.0f} -> {after:,.0f} ({after - before:+,.0f}, {rel})"
    label = "self/call" if metric == "self" else metric
    return (f"{label} {shown(diff.base, before, ',.1f')} -> "
            f"{shown(diff.current, after, ',.1f')} ms ({after - before:+,.1f} ms, {rel})")


# -- the comparison ---------------------------------------------------------------------------


@dataclass(slots=True)
class TraceDiff:
    base: TraceAnalysis
    current: TraceAnalysis
    operations: list[OperationDiff]  # sorted by ``sort``
    new_findings: list[FindingChange]
    resolved_findings: list[FindingChange]
    sort: str = "self"
    base_source: str | None = None
    current_source: str | None = None
    outcomes: list[RuleOutcome] = field(default_factory=list)
    min_count: int = 5
    setup_left_out: tuple[int, int] = (0, 0)  # set-up traces left out: base, current

    def with_status(self, status: Status) -> list[OperationDiff]:
        return [d for d in self.operations if d.status == status]

    def evaluate(self, rules: Sequence[FailRule], *, min_count: int = 5) -> list[RuleOutcome]:
        """Each rule against every operation (or the new findings); kept for ``to_dict``."""
        self.min_count = min_count
        outcomes = []
        for rule in rules:
            breaches: list[Breach] = []
            if rule.on_findings:
                condition = rule.conditions[0]
                count = len(self.new_findings)
                if _OPERATORS[condition.op](count, condition.value):
                    breaches.append(Breach(None, None, f"{count} new finding(s)"))
            else:
                for diff in self.operations:
                    if diff.judged(min_count) and all(c.holds(diff) for c in rule.conditions):
                        metrics = dict.fromkeys(c.metric for c in rule.conditions)
                        observed = "; ".join(describe_change(diff, m) for m in metrics)
                        breaches.append(Breach(diff.service, diff.name, observed))
            outcomes.append(RuleOutcome(rule, tuple(breaches)))
        self.outcomes = outcomes
        return outcomes

    @property
    def passed(self) -> bool:
        return not any(o.broken for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        def side(analysis: TraceAnalysis, source: str | None, setup: int) -> dict[str, Any]:
            return {"source": source, "traces": analysis.trace_count,
                    "spans": analysis.span_count,
                    "trace_latency": analysis.trace_latency.summary(),
                    "setup_traces_left_out": setup}

        return {
            "schema": SCHEMA,
            "sort": self.sort,
            "base": side(self.base, self.base_source, self.setup_left_out[0]),
            "current": side(self.current, self.current_source, self.setup_left_out[1]),
            "counts": {
                "operations": len(self.operations),
                "compared": len(self.with_status("compared")),
                "appeared": len(self.with_status("appeared")),
                "vanished": len(self.with_status("vanished")),
            },
            "operations": [{**d.to_dict(), "why": why(d, self.sort)} for d in self.operations],
            "findings": {
                "base": dict(self.base.finding_counts),
                "current": dict(self.current.finding_counts),
                "new": [c.to_dict() for c in self.new_findings],
                "resolved": [c.to_dict() for c in self.resolved_findings],
            },
            "fail_on": {"min_count": self.min_count,
                        "rules": [o.to_dict() for o in self.outcomes]},
            "passed": self.passed,
        }


def statement_by_operation(traces: Iterable[Trace]) -> dict[tuple[str, str], str]:
    """Per database operation, the statement shape that took the most time: a span name
    like ``SELECT`` says little; ``SELECT pg_sleep(?)`` says which statement it was."""
    time_by_shape: dict[tuple[str, str], dict[str, int]] = {}
    for trace in traces:
        for span in trace.spans:
            attrs = span.attributes
            text = attrs.get("db.statement") or attrs.get("db.query.text")
            if not text:
                continue
            shapes = time_by_shape.setdefault((span.service, span.name), {})
            shape = statement_shape(str(text))
            shapes[shape] = shapes.get(shape, 0) + span.end_ns - span.start_ns
    return {op: max(shapes.items(), key=lambda kv: (kv[1], kv[0]))[0][:200]
            for op, shapes in time_by_shape.items()}


def diff_traces(
    base: Sequence[Trace],
    current: Sequence[Trace],
    *,
    sort: str = "self",
    thresholds: DetectorThresholds | None = None,
    base_source: str | None = None,
    current_source: str | None = None,
    include_setup: bool = False,
) -> TraceDiff:
    """Compare ``current`` with ``base`` (both from ``group_traces``); set-up traces (root
    marked ``ecom.setup``) are left out of both unless ``include_setup``."""
    if sort not in SORT_METRIC:
        raise ValueError(f"sort by {sort!r}: expected one of {', '.join(SORT_KEYS)}")
    left_out = (0, 0)
    if not include_setup:
        (base, base_setup), (current, current_setup) = (without_setup(base),
                                                         without_setup(current))
        left_out = (base_setup, current_setup)
    before = analyze(base, thresholds=thresholds)
    after = analyze(current, thresholds=thresholds)
    statements = {**statement_by_operation(base), **statement_by_operation(current)}
    result = diff_analyses(before, after, statements=statements, sort=sort,
                           base_source=base_source, current_source=current_source)
    result.setup_left_out = left_out
    return result


def diff_analyses(
    base: TraceAnalysis,
    current: TraceAnalysis,
    *,
    statements: dict[tuple[str, str], str] | None = None,
    sort: str = "self",
    base_source: str | None = None,
    current_source: str | None = None,
) -> TraceDiff:
    """Compare two analyses (``analyze()`` results); ``statements`` names database
    operations' statements (``statement_by_operation``)."""
    sides: list[dict[tuple[str, str], OperationSide]] = []
    for analysis in (base, current):
        path = dict(analysis.path_totals)
        sides.append({
            (op.service, op.name): OperationSide.of(op, path.get((op.service, op.name), 0),
                                                    analysis.path_total_ns)
            for op in analysis.operations
        })
    before, after = sides
    statements = statements or {}
    diffs = [
        OperationDiff(service, name, before.get((service, name)), after.get((service, name)),
                      statements.get((service, name)))
        for service, name in before.keys() | after.keys()
    ]
    return TraceDiff(
        base=base,
        current=current,
        operations=sort_diffs(diffs, sort),
        new_findings=_only_in(current.findings, base.findings),
        resolved_findings=_only_in(base.findings, current.findings),
        sort=sort,
        base_source=base_source,
        current_source=current_source,
    )
