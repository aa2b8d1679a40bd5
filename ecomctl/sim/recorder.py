"""What the simulation measured: latency per journey (HdrHistogram), errors by cause,
checkout outcomes, a per-second timeline, and the slowest journey of each kind."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ecomctl.histogram import LatencyHistogram


class SecondLatency:
    """The latencies of one second, overall or of one journey: a live histogram while the
    second is recorded, then encoded (tens of bytes, against 185 KiB of HdrHistogram
    counters: a 10-minute soak grew by that much a second). Once merged across processes
    it holds one encoded histogram per process, added up when a report reads it."""

    __slots__ = ("count", "hdrs", "recording")

    def __init__(self) -> None:
        self.count = 0
        self.hdrs: list[str] = []
        self.recording: LatencyHistogram | None = None

    def record_s(self, duration: float, sealed: bool) -> None:
        if self.recording is None:
            self.recording = LatencyHistogram()
        self.recording.record_s(duration)
        self.count += 1
        if sealed:  # a late record of a finished second (rare): encoded at once
            self.seal()

    def add_encoded(self, count: int, hdrs: Iterable[str]) -> None:
        self.count += count
        self.hdrs.extend(hdrs)

    def seal(self) -> None:
        if self.recording is not None:
            self.hdrs.append(self.recording.encode())
            self.recording = None

    def encoded(self) -> list[str]:
        live = [self.recording.encode()] if self.recording is not None else []
        return [*self.hdrs, *live]

    def histogram(self) -> LatencyHistogram:
        merged = LatencyHistogram.decode_sum(self.hdrs)
        if self.recording is not None:
            merged.merge(self.recording)
        return merged

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "hdrs": self.encoded()}


@dataclass
class Second:
    """One second of the run (for plots, fault phases and the live view)."""

    journeys: int = 0
    errors: int = 0
    latency: SecondLatency = field(default_factory=SecondLatency)
    sealed: bool = False
    """Over: its latencies are encoded."""
    cache_hits: int = 0
    cache_requests: int = 0
    checkouts: int = 0
    """Paid checkouts."""
    by_journey: dict[str, SecondLatency] = field(default_factory=dict)
    """Per journey, for the fault phases."""
    journey_errors: Counter[str] = field(default_factory=Counter)

    def record_s(self, journey: str, duration: float) -> None:
        self.latency.record_s(duration, self.sealed)
        self.by_journey.setdefault(journey, SecondLatency()).record_s(duration, self.sealed)

    def seal(self) -> None:
        self.sealed = True
        self.latency.seal()
        for latency in self.by_journey.values():
            latency.seal()


@dataclass(frozen=True)
class Slowest:
    duration_s: float
    trace_id: str


@dataclass(frozen=True)
class LiveView:
    elapsed_s: float
    journeys: int
    errors: int
    rate_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cache_hit_ratio: float | None


class Recorder:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.started_ns = time.time_ns()  # wall clock, to tell set-up traces from the run
        self.journeys: dict[str, LatencyHistogram] = {}
        self.journey_errors: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.checkouts: Counter[str] = Counter()
        self.timeline: list[Second] = []
        self.slowest: dict[str, Slowest] = {}
        self.overall = LatencyHistogram()

    def _second(self, at: float) -> Second:
        index = max(0, int(at - self.started))
        if len(self.timeline) <= index:
            if self.timeline:
                self.timeline[-1].seal()
            while len(self.timeline) <= index:
                self.timeline.append(Second(sealed=len(self.timeline) < index))
        return self.timeline[index]

    def record(
        self,
        journey: str,
        started: float,
        ended: float,
        *,
        cause: str | None,
        trace_id: str,
        checkout: str | None,
    ) -> None:
        """``started`` is the intended start (open loop: the scheduled arrival), so queueing
        delay counts as latency (no coordinated omission)."""
        duration = max(0.0, ended - started)
        self.journeys.setdefault(journey, LatencyHistogram()).record_s(duration)
        self.overall.record_s(duration)
        second = self._second(ended)
        second.journeys += 1
        second.record_s(journey, duration)
        if cause is not None:
            self.errors[cause] += 1
            self.journey_errors[journey] += 1
            second.errors += 1
            second.journey_errors[journey] += 1
        if checkout is not None:
            self.checkouts[checkout] += 1
            second.checkouts += checkout == "paid"
        slowest = self.slowest.get(journey)
        if slowest is None or duration > slowest.duration_s:
            self.slowest[journey] = Slowest(duration, trace_id)

    def note_cache(self, hits: int, requests: int) -> None:
        """Cache activity since the previous note, credited to the current second."""
        second = self._second(time.monotonic())
        second.cache_hits += hits
        second.cache_requests += requests

    def live(self, window_s: float = 5.0) -> LiveView:
        now = time.monotonic()
        recent = self.timeline[-int(window_s):] if self.timeline else []
        recent_count = sum(s.journeys for s in recent)
        span = min(window_s, max(now - self.started, 1e-9))
        summary = self.overall.summary()
        cache_requests = sum(s.cache_requests for s in recent)
        return LiveView(
            elapsed_s=now - self.started,
            journeys=self.overall.count,
            errors=sum(self.errors.values()),
            rate_per_s=recent_count / span,
            p50_ms=summary["p50_ms"],
            p95_ms=summary["p95_ms"],
            p99_ms=summary["p99_ms"],
            cache_hit_ratio=sum(s.cache_hits for s in recent) / cache_requests
            if cache_requests else None,
        )

    # -- across processes (checkout simulate --processes) ----------------------------------

    def state(self) -> dict[str, Any]:
        """Everything measured, as JSON, histograms encoded: ``merged`` adds such states up
        exactly. ``started`` is CLOCK_MONOTONIC, which processes on one host share."""
        return {
            "started": self.started, "started_ns": self.started_ns,
            "journeys": {name: h.encode() for name, h in self.journeys.items()},
            "journey_errors": dict(self.journey_errors), "errors": dict(self.errors),
            "checkouts": dict(self.checkouts),
            "timeline": [{"journeys": s.journeys, "errors": s.errors,
                          "latency": s.latency.to_json(),
                          "cache_hits": s.cache_hits, "cache_requests": s.cache_requests,
                          "checkouts": s.checkouts,
                          "by_journey": {name: latency.to_json()
                                         for name, latency in s.by_journey.items()},
                          "journey_errors": dict(s.journey_errors)}
                         for s in self.timeline],
            "slowest": {name: [s.duration_s, s.trace_id] for name, s in self.slowest.items()},
        }

    @classmethod
    def merged(cls, states: Iterable[dict[str, Any]]) -> Recorder:
        """One recorder that saw what every state's recorder saw, its timeline aligned on
        the earliest start."""
        states = list(states)
        merged = cls()
        if not states:
            return merged
        merged.started = min(float(s["started"]) for s in states)
        merged.started_ns = min(int(s["started_ns"]) for s in states)
        for state in states:
            for name, encoded in state["journeys"].items():
                histogram = LatencyHistogram.decode(encoded)
                merged.journeys.setdefault(name, LatencyHistogram()).merge(histogram)
                merged.overall.merge(histogram)
            merged.journey_errors.update(state["journey_errors"])
            merged.errors.update(state["errors"])
            merged.checkouts.update(state["checkouts"])
            shift = round(float(state["started"]) - merged.started)
            for index, second in enumerate(state["timeline"]):
                into = merged._second(merged.started + shift + index)
                into.journeys += second["journeys"]
                into.errors += second["errors"]
                into.latency.add_encoded(second["latency"]["count"], second["latency"]["hdrs"])
                into.cache_hits += second["cache_hits"]
                into.cache_requests += second["cache_requests"]
                into.checkouts += second["checkouts"]
                for name, latency in second["by_journey"].items():
                    into.by_journey.setdefault(name, SecondLatency()).add_encoded(
                        latency["count"], latency["hdrs"])
                into.journey_errors.update(second["journey_errors"])
            for name, (duration_s, trace_id) in state["slowest"].items():
                current = merged.slowest.get(name)
                if current is None or duration_s > current.duration_s:
                    merged.slowest[name] = Slowest(float(duration_s), str(trace_id))
        return merged
