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

from ecomctl.results.fields import Fields, Record, ResultFormatError

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
