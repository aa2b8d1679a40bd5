"""The gates file: what a run must achieve for CI to pass, parsed so that every mistake names
its line.

A gates file is YAML (``version: 1``); every section is optional::

    version: 1
    journeys:                     # result["journeys"]: simulate journeys, by name or glob
      checkout: {p95: "< 1500ms", p99: "< 3s", error_rate: "< 5%"}
      "*": {p99: "< 5s"}          # every journey present in the result
    endpoints:                    # result["endpoints"]: load-run endpoints, same metrics
      "GET /api/products/{id}": {p95: "< 300ms"}
    spans:                        # result["spans"] operations: "service name", or name alone
      "checkout checkout.complete": {p95: "< 1s"}
      "process order-events": {error_rate: "== 0"}   # every service's consumer span
    totals:                       # result["totals"]; latency over all journeys (or endpoints)
      {error_rate: "< 5%", throughput_per_s: "> 1/s", checkouts_per_s: "> 0.5", p95: "< 1s"}
    phases:                       # result["phases"], a run with --fault-schedule windows:
      during: {p95: "< 2s", error_rate: "< 20%"}   # before / during / after the windows
      "during POST /api/checkout": {p95: "< 3s"}   # one endpoint (or journey), glob
      after: {p95: "< 500ms"}
    recovery: "< 10s"             # the slowest window's recovery (p95 back within 20% or 5ms)
    cache:                        # result["cache"] per service (glob)
      product: {hit_ratio: ">= 0.5", l1_hit_ratio: ">= 0.3"}
    invariants: hold              # every business invariant ok; or a list of names
    bench:                        # an `ecomctl bench` result's rows, by name (glob)
      gateway: {ratio: ">= 0.15"} # ecomctl / floor, measured in the same run
    traces:                       # Tracetest-style assertions on the run's spans
      - name: completed checkouts carry the order id
        select: {name: checkout.complete, attributes: {ecom.checkout.outcome: "*"}}
        assert: ["count >= 1", "duration < 2s", "attr ecom.order.id exists"]

Metrics and their thresholds (``OP NUMBER [UNIT]``, OP one of ``< <= > >= == !=``; quote a
threshold that starts with ``>``, which YAML reads as a folded block otherwise):

- journeys, endpoints, spans: ``p50 p90 p95 p99 p999 min max mean`` (a duration with a unit:
  ``us``, ``ms`` or ``s``), ``error_rate`` (``5%`` or ``0.05``), ``count``, ``errors`` and
  ``rps`` (``> 20/s``, ``/min`` or a bare number; count / the run's duration_s when the
  result has no rps of its own).
- totals: ``error_rate``, ``throughput_per_s`` (alias ``rps``: either field of the result),
  ``checkouts_per_s`` (paid checkouts / duration_s when not in the result), ``journeys``,
  ``requests``, ``errors`` (alias ``failures``), and the latency metrics over the merged
  histograms of every journey (of every endpoint when the result has no journeys).
- phases (``before``, ``during``, ``after``): ``p50 p95 p99``, ``error_rate``,
  ``throughput_per_s``, ``checkouts_per_s``, ``count``, ``errors``.
- recovery: a duration; a window after which p95 never came back fails it.
- cache: ``hit_ratio``, ``requests``, and ``l1_hit_ratio``, ``l2_hit_ratio``... per level.
- bench: ``ratio`` (a plain number: ecomctl's figure over the floor's), ``floor`` and
  ``ecomctl`` (the two figures, in the row's own unit).

Target keys are globs (``fnmatch``, case-sensitive). A span key matches an operation when it
matches ``"service name"`` or the name alone, so ``"process order-events"`` gates that
consumer span in every service and ``"checkout *"`` every span of the checkout service.

Trace selectors: ``name``, ``service`` (globs), ``kind`` (``SERVER``, ``CLIENT``...),
``status`` (``UNSET``, ``OK``, ``ERROR``) and ``attributes: {key: value}``, where a value is a
glob on the attribute's text (``"*"``: the attribute is present) and ``null`` means the
attribute is absent. Assertions: ``count OP N`` and ``errors OP N`` over the selected spans,
``duration OP DURATION`` for every selected span (the worst is reported), ``attr KEY exists``,
``attr KEY missing``, ``attr KEY = VALUE`` and ``attr KEY != VALUE`` for every selected span.
An attribute is found under its current or its deprecated semantic-convention name
(``db.query.text`` or ``db.statement``: ``analysis/attributes.py``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ecomctl.analysis.attributes import attribute
from ecomctl.durations import parse_duration_ms
from ecomctl.errors import ConfigError

if TYPE_CHECKING:
    from ecomctl.analysis.model import SpanRecord

GATES_VERSION = 1


class GatesFileError(ConfigError):
    """The gates file is invalid; ``line`` (1-based, 0 when unknown) is where."""

    def __init__(self, source: str, line: int, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")
        self.source = source
        self.line = line
        self.detail = message


# -- thresholds -------------------------------------------------------------------------------


class Kind(Enum):
    """What a metric measures, which decides the units its thresholds may use."""

    DURATION = "duration"  # milliseconds
    RATIO = "ratio"  # 0..1
    RATE = "rate"  # per second
    COUNT = "count"


_RATE_PER_S = {"/s": 1.0, "/min": 1 / 60}
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_THRESHOLD = re.compile(r"^\s*(<=|>=|==|!=|=|<|>)\s*(.+?)\s*$")
_QUANTITY = re.compile(r"^([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)$")


def parse_quantity(text: str, kind: Kind) -> float:
    """``300ms`` -> 300.0 (ms), ``5%`` -> 0.05, ``20/s`` -> 20.0, ``3`` -> 3.0 (count).

    Units are checked against the kind, so a latency without a unit or a ratio written as
    ``5`` (5% or 500%?) is an error rather than a silent misreading.
    """
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a number with an optional unit")
    number, unit = float(match.group(1)), match.group(2)
    if not math.isfinite(number):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    if kind is Kind.DURATION:
        if number < 0:
            raise ValueError(f"{text.strip()!r}: a duration cannot be negative")
        try:
            return parse_duration_ms(text)
        except ValueError:
            hint = "a unit is required" if not unit else f"unknown unit {unit!r}"
            raise ValueError(f"{text.strip()!r}: a duration needs a unit: us, ms, s, m, h "
                             f"or d, or a compound like 1m30s ({hint})") from None
    if kind is Kind.RATIO:
        if unit == "%":
            return number / 100
        if unit:
            raise ValueError(f"{text.strip()!r}: a ratio is a percentage (5%) or 0..1 (0.05)")
        if not 0 <= number <= 1:
            raise ValueError(
                f"{text.strip()!r}: a bare ratio must be within 0..1 (write {number:g}% "
                "for a percentage)"
            )
        return number
    if kind is Kind.RATE:
        if unit and unit not in _RATE_PER_S:
            raise ValueError(f"{text.strip()!r}: a rate is a number per second (20/s, 600/min)")
        return number * _RATE_PER_S.get(unit, 1.0)
    if unit:
        raise ValueError(f"{text.strip()!r}: a count takes no unit")
    return number


@dataclass(frozen=True, slots=True)
class Threshold:
    """``op value``, the value in the kind's canonical unit (ms, ratio, per second, count)."""

    op: str
    value: float
    kind: Kind
    text: str

    def holds(self, observed: float) -> bool:
        return _OPERATORS[self.op](observed, self.value)

    @property
    def upper_bound(self) -> bool:
        """Whether larger observations are the bad ones (the worst of many is the maximum)."""
        return self.op in ("<", "<=")


def parse_threshold(text: str, kind: Kind) -> Threshold:
    """``< 300ms``, ``>= 0.8``, ``< 1%``, ``> 20/s``, ``== 0`` (``=`` is ``==``)."""
    match = _THRESHOLD.match(text)
    if match is None:
        raise ValueError(
            f"threshold {text.strip()!r}: expected OPERATOR VALUE, e.g. '< 300ms' "
            "(operators: < <= > >= == !=)"
        )
    op = "==" if match.group(1) == "=" else match.group(1)
    value = parse_quantity(match.group(2), kind)
    return Threshold(op, value, kind, f"{op} {match.group(2).strip()}")


# -- metrics per section ----------------------------------------------------------------------

# Latency metric -> field of a latency summary.
LATENCY_FIELDS = {
    "p50": "p50_ms", "p90": "p90_ms", "p95": "p95_ms", "p99": "p99_ms", "p999": "p999_ms",
    "p99.9": "p999_ms", "min": "min_ms", "max": "max_ms", "mean": "mean_ms",
}
_LATENCY = dict.fromkeys(LATENCY_FIELDS, Kind.DURATION)
SUMMARY_METRICS = {**_LATENCY, "error_rate": Kind.RATIO, "count": Kind.COUNT,
                   "errors": Kind.COUNT, "rps": Kind.RATE}
TOTALS_METRICS = {
    **_LATENCY, "error_rate": Kind.RATIO, "throughput_per_s": Kind.RATE, "rps": Kind.RATE,
    "checkouts_per_s": Kind.RATE, "journeys": Kind.COUNT, "requests": Kind.COUNT,
    "errors": Kind.COUNT, "failures": Kind.COUNT,
}
PHASE_METRICS = {
    "p50": Kind.DURATION, "p95": Kind.DURATION, "p99": Kind.DURATION,
    "error_rate": Kind.RATIO, "throughput_per_s": Kind.RATE, "checkouts_per_s": Kind.RATE,
    "count": Kind.COUNT, "errors": Kind.COUNT,
}
PHASES = ("before", "during", "after")
CACHE_METRICS = {"hit_ratio": Kind.RATIO, "requests": Kind.COUNT}
BENCH_METRICS = {"ratio": Kind.COUNT, "floor": Kind.COUNT, "ecomctl": Kind.COUNT}
_CACHE_LEVEL = re.compile(r"^(l\d+)_hit_ratio$")

SECTIONS = ("version", "journeys", "endpoints", "spans", "totals", "phases", "recovery",
            "cache", "bench", "invariants", "traces")


def metric_kind(section: str, metric: str) -> Kind | None:
    if section == "totals":
        return TOTALS_METRICS.get(metric)
    if section == "cache":
        return CACHE_METRICS.get(metric) or (Kind.RATIO if _CACHE_LEVEL.match(metric) else None)
    if section == "bench":
        return BENCH_METRICS.get(metric)
    if section == "phases":
        return PHASE_METRICS.get(metric)
    return SUMMARY_METRICS.get(metric)


def _metric_names(section: str) -> str:
    names = {"totals": TOTALS_METRICS, "cache": CACHE_METRICS, "bench": BENCH_METRICS,
             "phases": PHASE_METRICS}.get(section, SUMMARY_METRICS)
    extra = ", l1_hit_ratio, l2_hit_ratio..." if section == "cache" else ""
    return ", ".join(names) + extra


# -- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricGate:
    """One threshold on one metric of the targets a pattern selects (``""`` for totals)."""

    section: str
    pattern: str
    metric: str
    threshold: Threshold
    line: int


@dataclass(frozen=True, slots=True)
class InvariantsGate:
    """The business invariants must hold: all of them (``names`` None), or those named."""

    names: tuple[str, ...] | None
    line: int


SELECTOR_KEYS = ("name", "service", "kind", "status", "attributes")
_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_STATUSES = ("UNSET", "OK", "ERROR")


def glob_match(text: str, pattern: str) -> bool:
    """``fnmatch`` (case-sensitive), but a literal name with [brackets] matches itself."""
    return text == pattern or fnmatchcase(text, pattern)


def attribute_text(value: Any) -> str:
    """An attribute value as the text selectors and ``attr K = V`` compare with."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(attribute_text(v) for v in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class SpanSelector:
    """Which spans a trace gate looks at; every given field must match."""

    name: str | None = None
    service: str | None = None
    kind: str | None = None
    status: str | None = None
    # (key, glob on the value's text), or (key, None): the attribute must be absent.
    attributes: tuple[tuple[str, str | None], ...] = ()

    def matches(self, span: SpanRecord) -> bool:
        if self.name is not None and not glob_match(span.name, self.name):
            return False
        if self.service is not None and not glob_match(span.service, self.service):
            return False
        if self.kind is not None and span.kind != self.kind:
            return False
        if self.status is not None and span.status != self.status:
            return False
        for key, pattern in self.attributes:
            value = attribute(span.attributes, key)  # a current or a deprecated name
            if pattern is None:
                if value is not None:
                    return False
            elif value is None or not glob_match(attribute_text(value), pattern):
                return False
        return True

    def describe(self) -> str:
        parts = [f"{k}={v}" for k in ("name", "service", "kind", "status")
                 if (v := getattr(self, k)) is not None]
        parts += [f"{k}={'<absent>' if v is None else v}" for k, v in self.attributes]
        return ", ".join(parts) or "every span"


@dataclass(frozen=True, slots=True)
class TraceAssertion:
    """``count|errors OP N``, ``duration OP D``, or ``attr KEY exists|missing|= V|!= V``."""

    subject: str  # count | errors | duration | attr
    text: str
    line: int
    threshold: Threshold | None = None
    attribute: str = ""
    op: str = ""  # for attr: exists | missing | == | !=
    value: str = ""


@dataclass(frozen=True, slots=True)
class TraceGate:
    name: str
    selector: SpanSelector
    assertions: tuple[TraceAssertion, ...]
    line: int


@dataclass(frozen=True, slots=True)
class GatesSpec:
    source: str
    metrics: tuple[MetricGate, ...] = ()
    invariants: InvariantsGate | None = None
    traces: tuple[TraceGate, ...] = ()
    version: int = GATES_VERSION

    def __len__(self) -> int:
        return len(self.metrics) + (self.invariants is not None) + len(self.traces)


# -- parsing ----------------------------------------------------------------------------------

_ASSERT_NUMERIC = re.compile(r"^\s*(count|errors|duration)\b\s*(.*)$")
_ASSERT_ATTR = re.compile(r"^\s*attr\s+(\S+)\s+(exists|missing|==|=|!=)\s*(.*?)\s*$")


class _Parser:
    """Walks the composed YAML nodes; every error carries the line of the node at fault."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, message: str) -> GatesFileError:
        line = node.start_mark.line + 1 if node is not None else 0
        return GatesFileError(self.source, line, message)

    # -- node helpers --

    def mapping(self, node: yaml.Node, what: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) of a mapping; keys are strings, each once."""
        if _is_null(node):
            return
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what}: expected a mapping, found {_node_type(node)}")
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"{what}: keys must be plain text")
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise self.fail(key_node, f"{what}: duplicate key {key!r} (first on line "
                                          f"{seen[key]})")
            seen[key] = line
            yield key, key_node, value_node

    def text(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or _is_null(node):
            raise self.fail(node, f"{what}: expected text, found {_node_type(node)}")
        return str(node.value)

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what}: expected a list, found {_node_type(node)}")
        return list(node.value)

    # -- sections --

    def document(self, root: yaml.Node | None) -> GatesSpec:
        if root is None:
            raise GatesFileError(self.source, 0, "empty gates file")
        metrics: list[MetricGate] = []
        invariants: InvariantsGate | None = None
        traces: list[TraceGate] = []
        version = GATES_VERSION
        if not isinstance(root, yaml.MappingNode):
            raise self.fail(root, f"expected a mapping of sections ({', '.join(SECTIONS)})")
        for key, key_node, value in self.mapping(root, "gates file"):
            if key == "version":
                if value.tag != "tag:yaml.org,2002:int" or value.value != str(GATES_VERSION):
                    raise self.fail(value, f"unsupported version {value.value!r} "
                                           f"(expected {GATES_VERSION})")
                version = GATES_VERSION
            elif key in ("journeys", "endpoints", "spans", "cache", "bench"):
                metrics += self.targets(key, value)
            elif key == "totals":
                metrics += self.metrics("totals", "", value)
            elif key == "phases":
                metrics += self.phases(value)
            elif key == "recovery":
                metrics.append(self.recovery(value))
            elif key == "invariants":
                invariants = self.invariants(value)
            elif key == "traces":
                traces += self.trace_gates(value)
            else:
                raise self.fail(key_node, f"unknown section {key!r} (expected one of "
                                          f"{', '.join(SECTIONS)})")
        spec = GatesSpec(self.source, tuple(metrics), invariants, tuple(traces), version)
        if not len(spec):
            # A gates file that checks nothing would pass every build: say so instead.
            raise self.fail(root, "the gates file defines no gates")
        return spec

    def targets(self, section: str, node: yaml.Node) -> list[MetricGate]:
        gates: list[MetricGate] = []
        for pattern, key_node, value in self.mapping(node, section):
            if not pattern.strip():
                raise self.fail(key_node, f"{section}: empty target name")
            gates += self.metrics(section, pattern, value)
        return gates

    def metrics(self, section: str, pattern: str, node: yaml.Node) -> list[MetricGate]:
        where = f"{section}.{pattern}" if pattern else section
        gates: list[MetricGate] = []
        for metric, key_node, value in self.mapping(node, where):
            kind = metric_kind(section, metric)
            if kind is None:
                raise self.fail(key_node, f"unknown metric {metric!r} for {section} "
                                          f"(expected one of {_metric_names(section)})")
            text = self.threshold_text(value, f"{where}.{metric}")
            try:
                threshold = parse_threshold(text, kind)
            except ValueError as exc:
                raise self.fail(value, f"{where}.{metric}: {exc}") from None
            gates.append(MetricGate(section, pattern, metric, threshold,
                                    value.start_mark.line + 1))
        return gates

    def phases(self, node: yaml.Node) -> list[MetricGate]:
        for phase, key_node, _ in self.mapping(node, "phases"):
            if phase.split(" ", 1)[0] not in PHASES:
                raise self.fail(key_node, f"phases: unknown phase {phase!r} (expected one of "
                                          f"{', '.join(PHASES)})")
        return self.targets("phases", node)

    def recovery(self, node: yaml.Node) -> MetricGate:
        text = self.threshold_text(node, "recovery")
        try:
            threshold = parse_threshold(text, Kind.DURATION)
        except ValueError as exc:
            raise self.fail(node, f"recovery: {exc}") from None
        return MetricGate("recovery", "", "recovery", threshold, node.start_mark.line + 1)

    def threshold_text(self, node: yaml.Node, what: str) -> str:
        if isinstance(node, yaml.ScalarNode) and node.tag in (
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
        ):
            raise self.fail(node, f"{what}: {node.value!r} has no operator: write a threshold "
                                  f"like '< {node.value}' or '>= {node.value}'")
        return self.text(node, what)

    def invariants(self, node: yaml.Node) -> InvariantsGate:
        line = node.start_mark.line + 1
        is_true = node.tag == "tag:yaml.org,2002:bool" and str(node.value).lower() in (
            "true", "yes", "on")
        if isinstance(node, yaml.ScalarNode) and (node.value in ("hold", "all") or is_true):
            return InvariantsGate(None, line)
        if isinstance(node, yaml.SequenceNode):
            names = tuple(self.text(item, "invariants") for item in node.value)
            if not names:
                raise self.fail(node, "invariants: empty list (write 'hold' for all of them)")
            return InvariantsGate(names, line)
        raise self.fail(node, "invariants: expected 'hold' (all must hold) or a list of "
                              "invariant names")

    def trace_gates(self, node: yaml.Node) -> list[TraceGate]:
        return [self.trace_gate(item) for item in self.sequence(node, "traces")]

    def trace_gate(self, node: yaml.Node) -> TraceGate:
        name = ""
        selector: SpanSelector | None = None
        assertions: list[TraceAssertion] = []
        assert_node: yaml.Node | None = None
        for key, key_node, value in self.mapping(node, "traces[]"):
            if key == "name":
                name = self.text(value, "traces[].name")
            elif key == "select":
                selector = self.selector(value)
            elif key == "assert":
                assert_node = value
                items = [value] if isinstance(value, yaml.ScalarNode) else self.sequence(
                    value, "traces[].assert")
                assertions = [self.assertion(item) for item in items]
            else:
                raise self.fail(key_node, f"unknown key {key!r} in a trace gate (expected "
                                          "name, select, assert)")
        if selector is None:
            raise self.fail(node, "trace gate without 'select'")
        if not assertions:
            raise self.fail(assert_node or node, "trace gate without assertions ('assert')")
        return TraceGate(name or selector.describe(), selector, tuple(assertions),
                         node.start_mark.line + 1)

    def selector(self, node: yaml.Node) -> SpanSelector:
        fields: dict[str, Any] = {}
        for key, key_node, value in self.mapping(node, "select"):
            if key in ("name", "service"):
                fields[key] = self.text(value, f"select.{key}")
            elif key in ("kind", "status"):
                allowed = _KINDS if key == "kind" else _STATUSES
                text = self.text(value, f"select.{key}").upper()
                if text not in allowed:
                    raise self.fail(value, f"select.{key}: {value.value!r} is not one of "
                                           f"{', '.join(allowed)}")
                fields[key] = text
            elif key == "attributes":
                pairs: list[tuple[str, str | None]] = []
                for attr, _, attr_value in self.mapping(value, "select.attributes"):
                    if _is_null(attr_value):
                        pairs.append((attr, None))
                    else:
                        text = self.text(attr_value, f"select.attributes.{attr}")
                        if attr_value.tag == "tag:yaml.org,2002:bool":
                            text = text.lower()
                        pairs.append((attr, text))
                fields["attributes"] = tuple(pairs)
            else:
                raise self.fail(key_node, f"unknown selector {key!r} (expected one of "
                                          f"{', '.join(SELECTOR_KEYS)})")
        if not fields:
            raise self.fail(node, "select: empty selector (give name, service, kind, status "
                                  "or attributes)")
        return SpanSelector(**fields)

    def assertion(self, node: yaml.Node) -> TraceAssertion:
        text = self.text(node, "assert").strip()
        line = node.start_mark.line + 1
        numeric = _ASSERT_NUMERIC.match(text)
        if numeric:
            subject = numeric.group(1)
            kind = Kind.DURATION if subject == "duration" else Kind.COUNT
            try:
                threshold = parse_threshold(numeric.group(2), kind)
            except ValueError as exc:
                raise self.fail(node, f"assertion {text!r}: {exc}") from None
            return TraceAssertion(subject, text, line, threshold=threshold)
        attr = _ASSERT_ATTR.match(text)
        if attr:
            key, op, value = attr.group(1), attr.group(2), attr.group(3)
            op = "==" if op == "=" else op
            if op in ("exists", "missing") and value:
                raise self.fail(node, f"assertion {text!r}: nothing may follow {op!r}")
            if op in ("==", "!=") and not value:
                raise self.fail(node, f"assertion {text!r}: a value must follow {op!r}")
            return TraceAssertion("attr", text, line, attribute=key, op=op,
                                  value=_unquote(value))
        raise self.fail(node, f"unknown assertion {text!r} (expected 'count OP N', "
                              "'errors OP N', 'duration OP D', 'attr KEY exists|missing', "
                              "'attr KEY = VALUE' or 'attr KEY != VALUE')")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _node_type(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if _is_null(node):
        return "nothing"
    return f"{node.value!r}"


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_gates(text: str, source: str = "<gates>") -> GatesSpec:
    """A gates file's text as a ``GatesSpec``; ``GatesFileError`` names the line at fault."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or str(exc)
        if "block scalar" in (exc.context or "") or "'>'" in problem:
            problem += " (quote thresholds that start with '>', e.g. \"> 1/s\")"
        raise GatesFileError(source, line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise GatesFileError(source, 0, f"YAML error: {exc}") from None
    return _Parser(source).document(root)


def load_gates(path: Path) -> GatesSpec:
    """Read and parse a gates file; errors name ``path`` as given and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such gates file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text: not a gates file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_gates(text, str(path))
