"""Parts every result kind shares: latency statistics, span operations, invariants.

A latency summary is ``{"count", "min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms",
"p99_ms", "p999_ms", "max_ms"}`` from HdrHistogram (3 significant figures). A phase is
``{"from_s", "to_s", "seconds", "count", "errors", "error_rate", "throughput_per_s",
"checkouts_per_s", "p50_ms", "p95_ms", "p99_ms", "targets": {journey or endpoint: {"count",
"errors", "error_rate", "p50_ms", "p95_ms", "p99_ms"}}}``; ``load run`` writes the same
fault fields, its targets being endpoints. A window's phases (and their targets) also carry
``"exemplars": {rung: [{"trace_id", "duration_ms"}]}``, the traces behind their percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ecomctl.results.fields import Fields, Record, ResultFormatError, dump_map

if TYPE_CHECKING:
    from ecomctl.histogram import LatencyHistogram

SUMMARY_KEYS = ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms",
                "max_ms")
"""A latency summary's fields (HdrHistogram, 3 significant figures); all None when empty."""


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds; None when nothing was recorded (or the producer did not write it)."""

    min_ms: float | None = None
    mean_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def read(cls, fields: Fields) -> LatencySummary:
        """From the flat keys of the object ``fields`` reads (the summary is inlined)."""
        return cls(**{key: fields.opt_number(key) for key in SUMMARY_KEYS})

    @classmethod
    def parse(cls, data: object, where: str) -> LatencySummary:
        return cls.read(Fields(data, where))

    def get(self, key: str) -> float | None:
        """``p95_ms``, ``max_ms``...; None for a key that is not a summary field."""
        value: float | None = getattr(self, key) if key in SUMMARY_KEYS else None
        return value

    def to_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in SUMMARY_KEYS}


@dataclass(frozen=True)
class Exemplar:
    """A trace behind a percentile: its id and the duration measured in it."""

    trace_id: str
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "duration_ms": self.duration_ms}


Exemplars = dict[str, list[Exemplar]]
"""Rung (``p50``, ``p90``, ``p95``, ``p99``, ``max``) -> the traces closest to it from its
bucket (``ecomctl.analysis.exemplars``)."""


def read_exemplars(f: Fields) -> Exemplars | None:
    raw = f.raw_object("exemplars")
    if raw is None:
        return None
    out: Exemplars = {}
    for rung, items in raw.items():
        if not isinstance(items, list):
            raise ResultFormatError(f"{f.path('exemplars')}.{rung}: expected a list")
        out[rung] = []
        for i, item in enumerate(items):
            e = Fields(item, f"{f.path('exemplars')}.{rung}[{i}]")
            out[rung].append(Exemplar(e.text("trace_id"), e.number("duration_ms")))
    return out


def dump_exemplars(exemplars: Exemplars | None) -> dict[str, Any] | None:
    if exemplars is None:
        return None
    return {rung: [e.to_dict() for e in items] for rung, items in exemplars.items()}


@dataclass(kw_only=True)
class LatencyStats(Record):
    """A journey's or an endpoint's count, errors and latency, with its HdrHistogram."""

    count: int
    errors: int
    latency: LatencySummary
    rps: float | None = None  # load-run endpoints: requests per second over the window
    hdr: str | None = None  # base64 HdrHistogram (LatencyHistogram.encode)
    exemplars: Exemplars | None = None  # traces behind the percentiles

    @classmethod
    def parse(cls, data: object, where: str) -> LatencyStats:
        f = Fields(data, where)
        return cls(count=f.integer("count"), errors=f.integer("errors"),
                   rps=f.opt_number("rps"), latency=LatencySummary.read(f),
                   hdr=f.opt_text("hdr"), exemplars=read_exemplars(f), **f.rest())

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    def histogram(self) -> LatencyHistogram | None:
        """The decoded histogram; None when there is none or it is unreadable."""
        from ecomctl.histogram import LatencyHistogram

        if self.hdr is None:
            return None
        try:
            return LatencyHistogram.decode(self.hdr)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"count": self.count, "errors": self.errors, "rps": self.rps,
                           **self.latency.to_dict(), "hdr": self.hdr,
                           "exemplars": dump_exemplars(self.exemplars)},
                          optional=("rps", "hdr", "exemplars", *SUMMARY_KEYS))


@dataclass(kw_only=True)
class Operation(Record):
    """A span operation's statistics (``ecomctl.analysis``'s ``OperationStats.to_dict``)."""

    service: str
    name: str
    count: int
    errors: int
    latency: LatencySummary
    error_rate: float | None = None
    total_ms: float | None = None
    self_ms: float | None = None  # total minus the time in child spans
    exemplars: Exemplars | None = None  # traces behind the percentiles

    @classmethod
    def parse(cls, data: object, where: str) -> Operation:
        f = Fields(data, where)
        latency = LatencySummary.read(f)
        nested = f.data.get("latency")  # an older layout: the summary under "latency"
        if latency == LatencySummary() and isinstance(nested, dict):
            latency = LatencySummary.parse(nested, f.path("latency"))
        return cls(service=f.text("service"), name=f.text("name"), count=f.integer("count"),
                   errors=f.integer("errors"), error_rate=f.opt_number("error_rate"),
                   latency=latency, total_ms=f.opt_number("total_ms"),
                   self_ms=f.opt_number("self_ms"), exemplars=read_exemplars(f), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        flat = self.latency.to_dict() if "latency" not in self.extra else {}
        return self._emit({"service": self.service, "name": self.name, "count": self.count,
                           "errors": self.errors, "error_rate": self.error_rate, **flat,
                           "total_ms": self.total_ms, "self_ms": self.self_ms,
                           "exemplars": dump_exemplars(self.exemplars)},
                          optional=("error_rate", "total_ms", "self_ms", "exemplars",
                                    *SUMMARY_KEYS))


@dataclass(kw_only=True)
class Invariant(Record):
    """A business invariant checked after the run."""

    name: str
    ok: bool
    detail: str | None = None

    @classmethod
    def parse(cls, data: object, where: str) -> Invariant:
        f = Fields(data, where)
        return cls(name=f.text("name"), ok=f.boolean("ok"), detail=f.opt_text("detail"),
                   **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"name": self.name, "ok": self.ok, "detail": self.detail},
                          optional=("detail",))


@dataclass(kw_only=True)
class TimelinePoint(Record):
    """One second of the run (``t`` from its start): what completed in it. A simulation
    counts journeys, a load run requests."""

    t: float
    errors: int
    journeys: int | None = None
    requests: int | None = None
    checkouts: int | None = None  # paid
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    cache_hit_ratio: float | None = None  # None: no cache lookup in that second

    @classmethod
    def parse(cls, data: object, where: str) -> TimelinePoint:
        f = Fields(data, where)
        return cls(t=f.number("t"), journeys=f.opt_integer("journeys"),
                   requests=f.opt_integer("requests"), errors=f.integer("errors"),
                   checkouts=f.opt_integer("checkouts"), p50_ms=f.opt_number("p50_ms"),
                   p95_ms=f.opt_number("p95_ms"), p99_ms=f.opt_number("p99_ms"),
                   cache_hit_ratio=f.opt_number("cache_hit_ratio"), **f.rest())

    @property
    def completed(self) -> int:
        """Journeys (a simulation) or requests (a load run) completed in this second."""
        return self.journeys if self.journeys is not None else (self.requests or 0)

    def to_dict(self) -> dict[str, Any]:
        return self._emit({"t": self.t, "journeys": self.journeys, "requests": self.requests,
                           "errors": self.errors, "checkouts": self.checkouts,
                           "p50_ms": self.p50_ms, "p95_ms": self.p95_ms, "p99_ms": self.p99_ms,
                           "cache_hit_ratio": self.cache_hit_ratio},
                          optional=("journeys", "requests", "checkouts", "p50_ms", "p95_ms",
                                    "p99_ms", "cache_hit_ratio"))


_PHASE_NUMBERS = ("from_s", "to_s", "seconds", "error_rate", "throughput_per_s",
                  "checkouts_per_s", "p50_ms", "p95_ms", "p99_ms")


@dataclass(kw_only=True)
class PhaseFigures(Record):
    """Before, during or after a fault window: overall (with ``seconds``, the rates and
    ``targets``) or of one journey or endpoint (counts, error rate, percentiles)."""

    count: int | None = None
    errors: int | None = None
    error_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    from_s: float | None = None  # a single window's phase: its span of the run
    to_s: float | None = None
    seconds: float | None = None
    throughput_per_s: float | None = None
    checkouts_per_s: float | None = None
    targets: dict[str, PhaseFigures] | None = None
    exemplars: Exemplars | None = None  # traces behind the percentiles

    @classmethod
    def parse(cls, data: object, where: str) -> PhaseFigures:
        f = Fields(data, where)
        return cls(count=f.opt_integer("count"), errors=f.opt_integer("errors"),
                   error_rate=f.opt_number("error_rate"), p50_ms=f.opt_number("p50_ms"),
                   p95_ms=f.opt_number("p95_ms"), p99_ms=f.opt_number("p99_ms"),
                   from_s=f.opt_number("from_s"), to_s=f.opt_number("to_s"),
                   seconds=f.opt_number("seconds"),
                   throughput_per_s=f.opt_number("throughput_per_s"),
                   checkouts_per_s=f.opt_number("checkouts_per_s"),
                   targets=f.opt_record_map("targets", PhaseFigures.parse),
                   exemplars=read_exemplars(f), **f.rest())

    def to_dict(self) -> dict[str, Any]:
        return self._emit({
            "count": self.count, "errors": self.errors,
            **{key: getattr(self, key) for key in _PHASE_NUMBERS},
            "targets": dump_map(self.targets),
            "exemplars": dump_exemplars(self.exemplars),
        }, optional=("count", "errors", *_PHASE_NUMBERS, "targets", "exemplars"))


PHASES = ("before", "during", "after")


@dataclass(kw_only=True)
class FaultWindow(Record):
    """One ``--fault-schedule`` window: as scheduled, as it happened (seconds from the run's
    start; None: never applied), its phases and how long p95 took to come back."""

    fault: str
    scheduled_start_s: float | None = None
    scheduled_length_s: float | None = None
    start_s: float | None = None
    end_s: float | None = None
    before: PhaseFigures | None = None
    during: PhaseFigures | None = None
    after: PhaseFigures | None = None
    recovery_s: float | None = None  # None: p95 never came back (or never applied)
    recovery_of: str | None = None  # "overall" or the slowed target it was measured on
    slowed: list[str] | None = None  # targets whose p95 the fault raised

    @classmethod
    def parse(cls, data: object, where: str) -> FaultWindow:
        f = Fields(data, where)
        slowed = f.raw_list("slowed")
        return cls(fault=f.text("fault"),
                   scheduled_start_s=f.opt_number("scheduled_start_s"),
                   scheduled_length_s=f.opt_number("scheduled_length_s"),
                   start_s=f.opt_number("start_s"), end_s=f.opt_number("end_s"),
                   before=f.opt_record("before", PhaseFigures.parse),
                   during=f.opt_record("during", PhaseFigures.parse),
                   after=f.opt_record("after", PhaseFigures.parse),
                   recovery_s=f.opt_number("recovery_s"), recovery_of=f.opt_text("recovery_of"),
                   slowed=None if slowed is None else [str(name) for name in slowed],
                   **f.rest())

    def phase(self, name: str) -> PhaseFigures | None:
        figures: PhaseFigures | None = getattr(self, name) if name in PHASES else None
        return figures

    def to_dict(self) -> dict[str, Any]:
        phases = {name: None if (figures := self.phase(name)) is None else figures.to_dict()
                  for name in PHASES}
        return self._emit({
            "fault": self.fault, "scheduled_start_s": self.scheduled_start_s,
            "scheduled_length_s": self.scheduled_length_s, "start_s": self.start_s,
            "end_s": self.end_s, **phases,
            "recovery_s": self.recovery_s, "recovery_of": self.recovery_of,
            "slowed": self.slowed,
        }, optional=("scheduled_start_s", "scheduled_length_s", *PHASES, "recovery_s",
                     "recovery_of", "slowed"))


def read_phases(f: Fields) -> dict[str, PhaseFigures] | None:
    """A result's ``phases``: before, during and after, over every window."""
    return f.opt_record_map("phases", PhaseFigures.parse)
