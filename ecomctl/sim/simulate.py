"""``checkout simulate`` end to end: build the traced stack with span capture, drive the
shoppers, inject faults, drain the consumers, check the invariants, analyse the traces and
assemble the result (``ecomctl.results.simulation`` describes its document)."""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecomctl.analysis.model import SpanRecord, Trace
from ecomctl.analysis.phases import Tally, TimeBucket, fault_report
from ecomctl.bootstrap import ShopStack, StackOptions, running_stack
from ecomctl.config import Settings
from ecomctl.errors import InfraError
from ecomctl.event_loop import chosen_loop, http_parser
from ecomctl.faults.catalogue import FaultSpec, Role, apply_faults, roles_faults
from ecomctl.faults.schedule import WindowRecord
from ecomctl.results.envelope import RESULT_SCHEMA
from ecomctl.results.simulation import SimulationResult
from ecomctl.seed.credentials import (
    Shopper,
    load_credentials,
    missing_shoppers,
    shoppers_mismatch,
)
from ecomctl.sim.catalogue import sample_catalogue
from ecomctl.sim.client import HttpClient, InProcessClient, ShopClient
from ecomctl.sim.delivery import (
    ConsumerGroup,
    DeliveryBaseline,
    baseline,
    check_delivery,
    database_now,
)
from ecomctl.sim.invariants import InvariantResult, check_invariants
from ecomctl.sim.metrics_view import cache_lookups, cache_totals, with_ratios
from ecomctl.sim.recorder import LiveView, Recorder
from ecomctl.sim.runner import SimulationPlan, run_simulation
from ecomctl.sim.scheduled_faults import ScheduledFaults, combined_windows, records_to_json
from ecomctl.telemetry.setup import Telemetry

if TYPE_CHECKING:
    from ecomctl.adapters.kafka.consumer import EventConsumer

Phase = Callable[[str], None]
DRAIN_TIMEOUT_S = 120.0
DELIVERY_CHECKS = 3
# With --processes, faults of the events role (the outbox relay, the carrier) and of the
# payment gateway simulator apply in the parent, where the relay, the consumers and the one
# simulator every shopper process charges through run; the API's in each shopper process.
PARENT_ROLES = frozenset({Role.EVENTS, Role.PAYMENT_GATEWAY})
SHARD_ROLES = frozenset({Role.API})


def _quiet(_: str) -> None:
    pass


async def simulate(
    settings: Settings,
    plan: SimulationPlan,
    *,
    credentials: Path,
    trace_file: Path,
    on_tick: Callable[[LiveView], None] | None = None,
    on_phase: Phase = _quiet,
) -> SimulationResult:
    """The whole simulation in this process: shoppers, services, relay and consumers."""
    shoppers = load_credentials(credentials).shoppers
    telemetry = capture_telemetry(settings, trace_file)
    started_at = dt.datetime.now(dt.UTC)
    try:
        async with running_stack(settings, StackOptions(telemetry=telemetry)) as shop:
            await require_shoppers(settings, credentials, shoppers)
            delivery = await delivery_baseline(shop)
            on_phase("running shoppers")
            recorder, run_s, windows = await drive_shoppers(
                shop, plan, shoppers, list(plan.faults), on_tick=on_tick,
                cache_totals=lambda: cache_totals(telemetry.metric_reader),
                roles=frozenset(Role),
            )
            kafka, invariants = await settle(shop, on_phase, delivery)
            fault_events = list(shop.fault_log)
            cache = with_ratios(cache_lookups(telemetry.metric_reader))
            if "product" in cache:  # L2 lookups skipped while Redis was failing, and why
                cache["product"]["tier"] = shop.product_cache.stats()
            telemetry.force_flush()
    finally:
        telemetry.shutdown()
    on_phase("analysing traces")
    return assemble(plan, recorder, started_at, run_s, trace_file, invariants, cache,
                    kafka, sampler_description(settings), fault_events,
                    combined_windows(plan.fault_schedule, recorder.started_ns / 1e9,
                                     records_to_json(windows)),
                    instances=[instance_id(telemetry)])


async def simulate_shard(
    settings: Settings,
    plan: SimulationPlan,
    *,
    shoppers: Sequence[Shopper],
    first_account: int,
    trace_file: Path,
    ready: Callable[[], Awaitable[None]],
    payment_gateway_url: str | None = None,
) -> dict[str, Any]:
    """One of several shopper processes (``checkout simulate --processes``): shoppers and
    services only; the outbox relay and the consumers run in the parent. Returns what the
    parent merges: the recorder's state, the run's length and the raw cache lookups."""
    telemetry = capture_telemetry(settings, trace_file)
    try:
        options = StackOptions(telemetry=telemetry, workers=False,
                               payment_gateway_url=payment_gateway_url)
        async with running_stack(settings, options) as shop:
            faults = roles_faults(list(plan.faults), SHARD_ROLES)
            recorder, run_s, windows = await drive_shoppers(
                shop, plan, shoppers, faults, first_account=first_account, ready=ready,
                cache_totals=lambda: cache_totals(telemetry.metric_reader), roles=SHARD_ROLES,
            )
            lookups = cache_lookups(telemetry.metric_reader)
            telemetry.force_flush()
    finally:
        telemetry.shutdown()
    return {"recorder": recorder.state(), "run_s": run_s, "cache_lookups": lookups,
            "fault_windows": records_to_json(windows), "instance": instance_id(telemetry)}


def instance_id(telemetry: Telemetry) -> str:
    """The process's ``service.instance.id``: how its metrics are told apart."""
    return str(telemetry.resource.attributes.get("service.instance.id", ""))


def capture_telemetry(settings: Settings, trace_file: Path) -> Telemetry:
    """Telemetry that also captures every span to ``trace_file`` (made empty first)."""
    from ecomctl.telemetry.trace_store import capture_processor

    trace_file.parent.mkdir(parents=True, exist_ok=True)
    trace_file.unlink(missing_ok=True)
    return Telemetry(settings, span_processors=[capture_processor(trace_file)])


async def require_shoppers(
    settings: Settings, credentials: Path, shoppers: Sequence[Shopper]
) -> None:
    missing = await missing_shoppers(settings.database_url, shoppers)
    if missing:
        raise shoppers_mismatch(credentials, missing, len(shoppers))


async def drive_shoppers(
    shop: ShopStack,
    plan: SimulationPlan,
    shoppers: Sequence[Shopper],
    faults: list[FaultSpec],
    *,
    on_tick: Callable[[LiveView], None] | None = None,
    cache_totals: Callable[[], tuple[int, int]] | None = None,
    first_account: int = 0,
    ready: Callable[[], Awaitable[None]] | None = None,
    roles: frozenset[Role] = frozenset(Role),
) -> tuple[Recorder, float, list[WindowRecord]]:
    """The measured run with ``faults`` applied and the plan's fault windows of ``roles``
    on schedule; returns what it recorded, its length and the windows as they happened."""
    catalogue = await sample_catalogue(shop.db, plan.seed)
    scheduled = ScheduledFaults(shop, plan.fault_schedule, roles)

    async def measured_run_starts() -> None:
        if ready is not None:
            await ready()
        scheduled.start()

    async with _client_factory(shop, plan) as make_client:
        undo = await apply_faults(shop, faults)
        for consumer in shop.consumers:  # lag of this run's events, not a backlog's
            consumer.event_lag.reset()
        try:
            recorder = await run_simulation(
                plan, shoppers=shoppers, catalogue=catalogue, make_client=make_client,
                tracer=shop.telemetry.tracer("shopper"), on_tick=on_tick,
                cache_totals=cache_totals, first_account=first_account,
                ready=measured_run_starts,
            )
            # The measured run: from the first journey (after the logins), not from the
            # stack's start-up.
            run_s = time.monotonic() - recorder.started
        finally:
            windows = await scheduled.stop()
            for revert in reversed(undo):
                await revert()
    return recorder, run_s, windows


async def delivery_baseline(shop: ShopStack) -> DeliveryBaseline:
    """Before the run, with the consumers caught up on any earlier backlog: where the
    exactly-once check of this run's events starts."""
    behind = await shop.drain(DRAIN_TIMEOUT_S)
    if behind:
        raise InfraError(f"consumers did not catch up before the run: {', '.join(behind)}")
    return await baseline(shop.db)


async def settle(
    shop: ShopStack, on_phase: Phase, delivery: DeliveryBaseline
) -> tuple[dict[str, Any], list[InvariantResult]]:
    """After the run: drain the outbox and the consumers (timed), then check the
    invariants, this run's events delivered exactly once among them. Returns the result's
    ``kafka`` section and the invariants."""
    on_phase("draining the outbox and the consumers")
    drain_started = time.monotonic()
    # Unknown payments settled first, so that their events are among those checked.
    await shop.services.reconciler.reconcile(now=True)
    drained_from = await database_now(shop.db)
    behind = await shop.drain(DRAIN_TIMEOUT_S)
    drain_s = time.monotonic() - drain_started
    if behind:
        raise InfraError(f"consumers did not catch up in {DRAIN_TIMEOUT_S:.0f}s: "
                         f"{', '.join(behind)}")
    on_phase("checking invariants")
    invariants = await check_invariants(shop.db, await shop.payment_ledger())
    prefix = shop.settings.kafka_topic_prefix
    groups = [ConsumerGroup(c.name, [t.removeprefix(prefix) for t in c.topics],
                            c.stats.duplicates) for c in shop.consumers]
    for _ in range(DELIVERY_CHECKS):
        delivered, figures = await check_delivery(shop.db, delivery, groups, drained_from)
        if delivered.ok:
            break
        # A transaction begun before the drain may have committed after its last look: that
        # event is on its way. A lost event stays lost however long we wait.
        drained_from = await database_now(shop.db)
        await shop.drain(DRAIN_TIMEOUT_S)
    invariants.append(delivered)
    kafka = {"consumers": consumer_lag(shop.consumers), "drain_s": round(drain_s, 3),
             "delivery": figures}
    return kafka, invariants


@asynccontextmanager
async def _client_factory(
    shop: ShopStack, plan: SimulationPlan
) -> AsyncIterator[Callable[[], ShopClient]]:
    """Clients for the plan's path: the services directly, or the gateway over HTTP (served
    on a local port for the duration of the run)."""
    if plan.via != "http":
        yield lambda: InProcessClient(shop.services)
        return
    from ecomctl.gateway.server import running_gateway

    async with running_gateway(shop) as address:
        yield lambda: HttpClient(address.url)


def assemble(
    plan: SimulationPlan,
    recorder: Recorder,
    started_at: dt.datetime,
    run_s: float,
    trace_file: Path,
    invariants: list[InvariantResult],
    cache: dict[str, Any],
    kafka: dict[str, Any],
    sampler: str,
    fault_events: list[dict[str, Any]] | None = None,
    fault_windows: list[dict[str, Any]] | None = None,
    *,
    instances: Sequence[str] = (),
) -> SimulationResult:
    from ecomctl.analysis.exemplars import (
        attach_exemplars,
        attach_operation_exemplars,
        attach_phase_exemplars,
        journey_of,
    )
    from ecomctl.analysis.readers import group_traces, load_spans
    from ecomctl.analysis.report import analyze

    # No file: the sampler kept no span (the exporter creates it on the first batch).
    spans = load_spans(str(trace_file), service=None, limit=0) if trace_file.exists() else []
    # Set-up (shopper logins) is traced too, but is not part of the measured run.
    traces = [t for t in group_traces(spans) if t.start_ns >= recorder.started_ns]
    by_id = {t.trace_id: t for t in traces}
    analysis = analyze(traces)
    journeys_total = recorder.overall.count
    errors_total = sum(recorder.errors.values())
    slowest_journey, slowest = max(recorder.slowest.items(), key=lambda kv: kv[1].duration_s,
                                   default=(None, None))
    slowest_trace = by_id.get(slowest.trace_id) if slowest else None
    journeys = {
        name: {"count": hist.count, "errors": recorder.journey_errors[name],
               **hist.summary(), "hdr": hist.encode()}
        for name, hist in sorted(recorder.journeys.items())
    }
    operations = analysis.to_dict().get("operations", [])
    # The traces behind each percentile of the journeys, the span operations and the
    # fault windows' phases.
    attach_exemplars(journeys, traces, journey_of)
    attach_operation_exemplars(operations, traces)
    faults = fault_report(_time_buckets(recorder), fault_windows or [], run_s)
    attach_phase_exemplars(faults, traces, journey_of, recorder.started_ns)
    # Read back through the record's parser: what a run writes is what readers accept.
    return SimulationResult.parse({
        "schema": RESULT_SCHEMA,
        "kind": "checkout-simulate",
        "started_at": started_at.isoformat(),
        "duration_s": round(run_s, 3),
        "config": {
            "shoppers": plan.shoppers, "duration_s": plan.duration_s, "sessions": plan.sessions,
            "think_time_s": plan.think_time_s, "arrival_rate": plan.arrival_rate,
            "seed": plan.seed, "via": plan.via, "weights": dict(plan.weights),
            "faults": [str(f) for f in plan.faults],
            "fault_schedule": [str(w) for w in plan.fault_schedule],
            "latency_origin": "intended start (open loop, coordinated omission corrected)"
            if plan.arrival_rate else "actual start (closed loop)",
            "processes": 1,
            "event_loop": chosen_loop(), "http_parser": http_parser(),
        },
        "totals": {
            "journeys": journeys_total,
            "errors": errors_total,
            "error_rate": round(errors_total / journeys_total, 4) if journeys_total else 0.0,
            "throughput_per_s": round(journeys_total / run_s, 2) if run_s else 0.0,
            "checkouts": dict(recorder.checkouts),
            "checkouts_per_s": round(recorder.checkouts.get("paid", 0) / run_s, 2)
            if run_s else 0.0,
        },
        "journeys": journeys,
        "errors": dict(recorder.errors.most_common()),
        "spans": operations,
        "cache": cache,
        "kafka": kafka,
        "fault_events": fault_events or [],
        "db": {"queries_per_checkout": _db_queries_per_checkout(traces)},
        "timeline": [
            {"t": i, "journeys": s.journeys, "errors": s.errors,
             **{k: v for k, v in s.latency.histogram().summary().items()
                if k in ("p50_ms", "p95_ms", "p99_ms")},
             "cache_hit_ratio": round(s.cache_hits / s.cache_requests, 4)
             if s.cache_requests else None, "checkouts": s.checkouts}
            for i, s in enumerate(recorder.timeline)
        ],
        "tracing": {
            "sampler": sampler,
            # The processes' service.instance.id: their series in the metrics backend.
            "service_instance_ids": list(instances),
            "traces": len(traces),
            "spans": sum(len(t.spans) for t in traces),
            "journeys_sampled": sum(1 for t in traces if _journey_root(t)),
            # Journey latency, cache and Kafka figures never come from spans; span
            # statistics and trace findings cover the sampled traces only.
        },
        "trace_analysis": analysis.to_dict(),
        "slowest_trace": {
            "journey": slowest_journey,
            "trace_id": slowest.trace_id if slowest else None,
            "duration_ms": round(slowest.duration_s * 1000, 3) if slowest else None,
            "spans": [_span_dict(s) for s in slowest_trace.spans] if slowest_trace else [],
        },
        "trace_file": str(trace_file),
        "invariants": [asdict(r) for r in invariants],
        "ok": all(r.ok for r in invariants),
        **faults,
    })


def sampler_description(settings: Settings) -> str:
    """``always_on``, ``traceidratio 0.1``...: the sampler as the user configured it."""
    arg = settings.traces_sampler_arg
    return settings.traces_sampler + (f" {arg}" if arg and "ratio" in settings.traces_sampler
                                      else "")


def _is_db(span: SpanRecord) -> bool:
    attrs = span.attributes
    return attrs.get("db.system") == "postgresql" or attrs.get("db.system.name") == "postgresql"


def _journey_root(trace: Trace) -> bool:
    """A shopper journey's trace (the relay's batches and the carrier start traces too)."""
    return any(s.parent_span_id is None and s.name.startswith("journey.") for s in trace.spans)


def _db_queries_per_checkout(traces: list[Trace]) -> dict[str, Any]:
    """SQL statements a checkout journey issues before it answers (consumers, which run
    after it, are not counted)."""
    per_trace = []
    for trace in traces:
        roots = [s for s in trace.spans if s.parent_span_id is None
                 and s.name == "journey.checkout"]
        if roots:
            end = roots[0].end_ns
            per_trace.append(sum(1 for s in trace.spans if _is_db(s) and s.start_ns < end))
    if not per_trace:
        return {"checkouts": 0}
    cuts = statistics.quantiles(per_trace, n=20, method="inclusive") if len(per_trace) > 1 \
        else [per_trace[0]] * 19
    return {"checkouts": len(per_trace), "mean": round(statistics.fmean(per_trace), 2),
            "min": min(per_trace), "p50": cuts[9], "p95": cuts[18], "max": max(per_trace)}


def consumer_lag(consumers: list[EventConsumer]) -> dict[str, Any]:
    """Per consumer: its counters, ``lag`` from the business commit to processing (outbox
    relay plus Kafka) and ``kafka_lag`` from publication to processing, over every event it
    processed (sampled or not)."""
    return {
        c.name: {**{k: getattr(c.stats, k) for k in ("processed", "duplicates", "failed",
                                                     "malformed", "dead_lettered")},
                 "group": c.group_id,
                 "dead_lettered_by_topic": dict(c.stats.dead_lettered_by_topic),
                 "lag": c.event_lag.total.summary() if c.event_lag.total.count else None,
                 "kafka_lag": c.event_lag.kafka.summary() if c.event_lag.kafka.count else None}
        for c in consumers
    }


def _time_buckets(recorder: Recorder) -> list[TimeBucket]:
    buckets = []
    for i, second in enumerate(recorder.timeline):
        targets = {}
        for name, latency in second.by_journey.items():
            targets[name] = Tally(latency.count, second.journey_errors[name],
                                  encoded=latency.encoded())
        buckets.append(TimeBucket(t=i, count=second.journeys, errors=second.errors,
                                  checkouts=second.checkouts, encoded=second.latency.encoded(),
                                  targets=targets))
    return buckets


def _span_dict(span: SpanRecord) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id, "span_id": span.span_id,
        "parent_span_id": span.parent_span_id, "name": span.name, "service": span.service,
        "kind": span.kind, "start_ns": span.start_ns, "end_ns": span.end_ns,
        "status": span.status, "attributes": dict(span.attributes),
    }
