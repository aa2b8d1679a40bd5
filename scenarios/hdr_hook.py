"""Exact latency recording for Locust: every request into an HdrHistogram per endpoint, and
every journey (a task of ``shop.py``) into one per journey.

Locust's own statistics round response times into coarse buckets and merge workers' reports
approximately; ``ecomctl load run`` wants exact percentiles. So each Locust process that
sends requests (the single local process, or every worker, never the master) keeps its own
histograms and publishes them: a snapshot every couple of seconds (live progress) and the
final one at test stop. A single local process writes ``$ECOMCTL_LOAD_HDR_DIR/hdr-<pid>.json``;
a worker sends its document to the master over Locust's own connection (a custom message,
so workers on other hosts need no shared disk), and the master writes
``hdr-<worker id>.json`` into its directory. ``ecomctl load run`` merges the files bucket by
bucket (``ecomctl.load.result.merge_hdr_documents``; the format is documented there).
Without ``ECOMCTL_LOAD_HDR_DIR`` a local process or a master writes nothing.

Importing this module registers the listeners; locustfiles get it through ``shop.py``.
Latency is the response time plus ``context["lateness_ms"]`` when a request carries one: the
constant-rate profile puts there how late its journey started against the schedule
(coordinated omission correction, see ``shapes.ArrivalSchedule``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # no stubs in the lock (types-gevent)
from locust import events
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from ecomctl.histogram import LatencyHistogram
from ecomctl.load.profiles import HDR_DIR_ENV
from ecomctl.load.result import ACTUAL_START, HDR_FORMAT, INTENDED_START

SNAPSHOT_INTERVAL_S = 2.0
HDR_MESSAGE = "ecomctl_hdr"

log = logging.getLogger("ecomctl.hdr_hook")


class _Tally:
    __slots__ = ("count", "failures", "histogram")

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.histogram = LatencyHistogram()

    def add(self, latency_us: float, failed: bool) -> None:
        self.count += 1
        self.failures += failed
        self.histogram.record_us(latency_us)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "failures": self.failures,
                "hdr": self.histogram.encode()}


class _Seconds:
    """Requests per second of completion (unix time), overall and per endpoint, for the
    timeline and the fault phases. Only the last few seconds keep live histograms (one is
    ~360 KiB); older ones are kept encoded (a few hundred bytes), so an hour stays small."""

    LIVE = 3
    OVERALL = ""

    def __init__(self) -> None:
        self.live: dict[int, dict[str, _Tally]] = {}
        self.done: dict[int, dict[str, dict[str, Any]]] = {}
        self.paid: Counter[int] = Counter()

    def add(self, key: str, latency_us: float, failed: bool) -> None:
        second = int(time.time())
        tallies = self.live.get(second)
        if tallies is None:
            tallies = self.live[second] = {}
            for old in sorted(self.live)[:-self.LIVE]:
                self.done[old] = {k: v.to_dict() for k, v in self.live.pop(old).items()}
        for name in (self.OVERALL, key):
            tally = tallies.get(name)
            if tally is None:
                tally = tallies[name] = _Tally()
            tally.add(latency_us, failed)

    def paid_checkout(self) -> None:
        self.paid[int(time.time())] += 1

    def to_dict(self) -> dict[str, Any]:
        seconds = {**self.done, **{s: {k: v.to_dict() for k, v in tallies.items()}
                                   for s, tallies in self.live.items()}}
        out = {}
        for second, tallies in sorted(seconds.items()):
            entries = dict(tallies)  # called more than once (test stop, then quitting)
            overall = entries.pop(self.OVERALL)
            out[str(second)] = {**overall, "checkouts": self.paid.get(second, 0),
                                "endpoints": dict(sorted(entries.items()))}
        return out


class Recorder:
    """What one process measured; ``document()`` is the hdr file's content."""

    def __init__(self) -> None:
        self.endpoints: dict[str, _Tally] = {}
        self.journeys: dict[str, _Tally] = {}
        self.outcomes: dict[str, Counter[str]] = {}
        self.errors: Counter[str] = Counter()
        self.latency_origin = ACTUAL_START
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.worker_index: int | None = None
        self.seconds = _Seconds()

    def request(self, key: str, latency_us: float, cause: str | None) -> None:
        tally = self.endpoints.get(key)
        if tally is None:
            tally = self.endpoints[key] = _Tally()
        tally.add(latency_us, cause is not None)
        self.seconds.add(key, latency_us, cause is not None)
        if cause is not None:
            self.errors[cause] += 1

    def journey(self, name: str, latency_us: float, failed: bool) -> None:
        tally = self.journeys.get(name)
        if tally is None:
            tally = self.journeys[name] = _Tally()
        tally.add(latency_us, failed)

    def outcome(self, kind: str, value: str) -> None:
        self.outcomes.setdefault(kind, Counter())[value] += 1
        if (kind, value) == ("checkout", "paid"):
            self.seconds.paid_checkout()

    def document(self, final: bool) -> dict[str, Any]:
        # The per-second timeline only in the final document: snapshots are for progress.
        timeline = {"timeline": self.seconds.to_dict()} if final else {}
        return {**timeline,
            "format": HDR_FORMAT,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "worker_index": self.worker_index,
            "final": final,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "latency_origin": self.latency_origin,
            "requests": sum(t.count for t in self.endpoints.values()),
            "failures": sum(t.failures for t in self.endpoints.values()),
            "endpoints": {k: t.to_dict() for k, t in sorted(self.endpoints.items())},
            "journeys": {k: t.to_dict() for k, t in sorted(self.journeys.items())},
            "outcomes": {k: dict(c) for k, c in sorted(self.outcomes.items())},
            "errors": dict(self.errors.most_common()),
        }


RECORDER = Recorder()
_state: dict[str, Any] = {"environment": None}


def record_journey(name: str, latency_us: float, failed: bool) -> None:
    RECORDER.journey(name, latency_us, failed)


def record_outcome(kind: str, value: str) -> None:
    """A business result that is not a failure (``checkout``: ``paid``, ``payment_declined``)."""
    RECORDER.outcome(kind, value)


def measure_from_intended_start() -> None:
    """Declare that this process's latencies include schedule lateness (CO corrected)."""
    RECORDER.latency_origin = INTENDED_START


def failure_cause(exception: BaseException) -> str:
    """Our scenarios fail requests with a short cause (``409 out_of_stock``); anything else
    is named by its type, so causes stay few (no URLs or ids in them)."""
    if isinstance(exception, CatchResponseError):
        return str(exception)[:120] or "failed"
    return type(exception).__name__


def _hdr_dir() -> Path | None:
    directory = os.environ.get(HDR_DIR_ENV)
    return Path(directory) if directory else None


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, separators=(",", ":")))
    tmp.replace(path)  # readers never see half a file


def publish(final: bool) -> None:
    """This process's histograms: to the master (a worker) or to the hdr directory."""
    runner = getattr(_state["environment"], "runner", None)
    if runner is not None and RECORDER.worker_index is None:
        RECORDER.worker_index = getattr(runner, "worker_index", None)
    if isinstance(runner, WorkerRunner):
        runner.send_message(HDR_MESSAGE, RECORDER.document(final))
        return
    directory = _hdr_dir()
    if directory is not None:
        _write(directory / f"hdr-{os.getpid()}.json", RECORDER.document(final))


def _on_worker_document(environment: Environment, msg: Message, **_: Any) -> None:
    """On the master: a worker's histograms, kept as that worker's file."""
    directory = _hdr_dir()
    if directory is None or not isinstance(msg.data, dict):
        return
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(msg.node_id))
    _write(directory / f"hdr-{name}.json", msg.data)


def _is_master(environment: Environment) -> bool:
    return isinstance(environment.runner, MasterRunner)


def _snapshots() -> None:
    while True:
        gevent.sleep(SNAPSHOT_INTERVAL_S)
        try:
            # Once the final document is out, a late snapshot must not demote it.
            publish(final=RECORDER.stopped_at is not None)
        except Exception as exc:  # a snapshot is best effort; the final one is not
            log.warning("cannot publish the hdr snapshot: %s", exc)


def _on_init(environment: Environment, **_: Any) -> None:
    _state["environment"] = environment
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(HDR_MESSAGE, _on_worker_document)
    elif isinstance(runner, WorkerRunner) or _hdr_dir() is not None:
        gevent.spawn(_snapshots)


def _on_test_start(environment: Environment, **_: Any) -> None:
    if RECORDER.started_at is None:
        RECORDER.started_at = time.time()


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    lateness_ms = (context or {}).get("lateness_ms") or 0.0
    RECORDER.request(f"{request_type} {name}", (response_time + lateness_ms) * 1000,
                     failure_cause(exception) if exception is not None else None)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    if _is_master(environment):
        return
    RECORDER.stopped_at = time.time()
    publish(final=True)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if _is_master(environment):
        return
    if RECORDER.stopped_at is None:
        RECORDER.stopped_at = time.time()
    try:
        publish(final=True)
    except Exception as exc:  # e.g. a worker whose master has already gone
        log.warning("cannot publish the final hdr document: %s", exc)


# Registered by calls through Any, not as decorators: Locust's EventHook.add_listener is
# untyped, and as a decorator it would leave each listener untyped for mypy.
_events: Any = events
_events.init.add_listener(_on_init)
_events.test_start.add_listener(_on_test_start)
_events.request.add_listener(_on_request)
_events.test_stop.add_listener(_on_test_stop)
_events.quitting.add_listener(_on_quitting)
