"""Driving virtual shoppers: closed loop (N shoppers with think time, for a duration or a
number of sessions) or open loop (Poisson arrivals at a fixed rate, latency measured from
each arrival's intended start). One journey is one trace, rooted in a ``journey.<name>``
span of the ``shopper`` service."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from opentelemetry.trace import Status, StatusCode

from ecomctl.analysis.model import SETUP_ATTRIBUTE
from ecomctl.errors import ConfigError
from ecomctl.faults.catalogue import FaultSpec, parse_fault
from ecomctl.faults.schedule import FaultWindow, parse_schedule
from ecomctl.journeys.protocol import cause_of
from ecomctl.journeys.shopper import CatalogueSample, JourneyOutcome
from ecomctl.seed.credentials import Shopper
from ecomctl.sim.client import ShopClient
from ecomctl.sim.journeys import JOURNEYS, pick
from ecomctl.sim.recorder import LiveView, Recorder
from ecomctl.telemetry.spans import ServiceTracer


@dataclass(frozen=True)
class SimulationPlan:
    shoppers: int = 10
    duration_s: float | None = 60.0
    sessions: int | None = None
    think_time_s: float = 0.5
    arrival_rate: float | None = None
    seed: int = 1
    via: str = "inprocess"
    weights: tuple[tuple[str, int], ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    fault_schedule: tuple[FaultWindow, ...] = ()

    def __post_init__(self) -> None:
        if self.shoppers < 1:
            raise ConfigError("--shoppers must be at least 1")
        if (self.duration_s is None) == (self.sessions is None):
            raise ConfigError("give exactly one of --duration and --sessions")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError("--duration must be positive")
        if self.sessions is not None and self.sessions < 1:
            raise ConfigError("--sessions must be at least 1")
        if self.think_time_s < 0:
            raise ConfigError("--think-time must be >= 0")
        if self.arrival_rate is not None and not 0 < self.arrival_rate <= 10_000:
            raise ConfigError("--arrival-rate must be between 0 and 10000 per second")
        if self.via not in ("inprocess", "http"):
            raise ConfigError("--via must be inprocess or http")

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (``from_json`` reads it back): how a shopper process gets it."""
        fields = asdict(self)
        fields["faults"] = [str(f) for f in self.faults]
        fields["fault_schedule"] = ", ".join(str(w) for w in self.fault_schedule)
        fields["weights"] = [list(w) for w in self.weights]
        return fields

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> SimulationPlan:
        return cls(**{
            **fields,
            "weights": tuple((str(name), int(weight)) for name, weight in fields["weights"]),
            "faults": tuple(parse_fault(text) for text in fields["faults"]),
            "fault_schedule": parse_schedule(fields["fault_schedule"])
            if fields.get("fault_schedule") else (),
        })


class _Budget:
    """Stops the run at the deadline or after the planned number of sessions."""

    def __init__(self, plan: SimulationPlan) -> None:
        self._deadline = (
            time.monotonic() + plan.duration_s if plan.duration_s is not None else None
        )
        self._left = plan.sessions

    def take(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return False
        if self._left is not None:
            if self._left <= 0:
                return False
            self._left -= 1
        return True


async def run_simulation(
    plan: SimulationPlan,
    *,
    shoppers: Sequence[Shopper],
    catalogue: CatalogueSample,
    make_client: Callable[[], ShopClient],
    tracer: ServiceTracer,
    on_tick: Callable[[LiveView], None] | None = None,
    cache_totals: Callable[[], tuple[int, int]] | None = None,
    first_account: int = 0,
    ready: Callable[[], Awaitable[None]] | None = None,
) -> Recorder:
    """Run the plan; ``cache_totals`` (cumulative cache hits, requests) is sampled every
    second for the timeline. Shopper ``i`` logs in as account ``first_account + i``;
    ``ready`` is awaited after the logins, before the measured run (a start barrier when
    several processes share one run)."""
    if not shoppers:
        raise ConfigError("no shopper accounts: run `ecomctl seed` first")
    weights = dict(plan.weights)
    recorder = Recorder()
    clients = [make_client() for _ in range(plan.shoppers)]
    try:
        await asyncio.gather(*(
            _start_session(client, shoppers[(first_account + i) % len(shoppers)], tracer)
            for i, client in enumerate(clients)
        ))
        if ready is not None:
            await ready()
        recorder = Recorder()  # logins are set-up, not part of the measured run
        ticker = asyncio.create_task(_tick(recorder, on_tick, cache_totals))
        budget = _Budget(plan)
        try:
            if plan.arrival_rate is None:
                await asyncio.gather(*(
                    _closed_loop(i, client, plan, weights, budget, catalogue, tracer, recorder)
                    for i, client in enumerate(clients)
                ))
            else:
                await _open_loop(clients, plan, weights, budget, catalogue, tracer, recorder)
        finally:
            ticker.cancel()
    finally:
        await asyncio.gather(*(client.close() for client in clients))
    return recorder


async def _start_session(client: ShopClient, shopper: Shopper, tracer: ServiceTracer) -> None:
    """Log in and start from an empty cart (what a previous run left is not this run's).
    One trace, marked as set-up: ``traces diff`` leaves it out of the comparison (logins
    queue for the password hash, and how long says more about the machine than the run)."""
    with tracer.span("session.start", {SETUP_ATTRIBUTE: True}):
        await client.login(shopper.email, shopper.password)
        await client.clear_cart()


async def _closed_loop(
    index: int,
    client: ShopClient,
    plan: SimulationPlan,
    weights: dict[str, int],
    budget: _Budget,
    catalogue: CatalogueSample,
    tracer: ServiceTracer,
    recorder: Recorder,
) -> None:
    rng = random.Random(plan.seed * 100_003 + index)
    while budget.take():
        await _journey(client, pick(rng, weights), rng, catalogue, tracer, recorder,
                       time.monotonic())
        if plan.think_time_s > 0:
            await asyncio.sleep(rng.expovariate(1 / plan.think_time_s))


async def _open_loop(
    clients: list[ShopClient],
    plan: SimulationPlan,
    weights: dict[str, int],
    budget: _Budget,
    catalogue: CatalogueSample,
    tracer: ServiceTracer,
    recorder: Recorder,
) -> None:
    """Arrivals follow their schedule whatever the shop's speed; a journey waits for a free
    shopper, and that wait counts in its latency."""
    assert plan.arrival_rate is not None
    rng = random.Random(plan.seed)
    free: asyncio.Queue[ShopClient] = asyncio.Queue()
    for client in clients:
        free.put_nowait(client)
    tasks: set[asyncio.Task[None]] = set()
    next_at = time.monotonic()
    arrival = 0

    async def one(intended: float, journey_rng: random.Random) -> None:
        client = await free.get()
        try:
            await _journey(client, pick(journey_rng, weights), journey_rng, catalogue, tracer,
                           recorder, intended)
        finally:
            free.put_nowait(client)

    while budget.take():
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(next_at, random.Random(plan.seed * 7919 + arrival)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        arrival += 1
        next_at += rng.expovariate(plan.arrival_rate)
    if tasks:
        await asyncio.gather(*tasks)


async def _journey(
    client: ShopClient,
    name: str,
    rng: random.Random,
    catalogue: CatalogueSample,
    tracer: ServiceTracer,
    recorder: Recorder,
    intended_start: float,
) -> None:
    outcome = JourneyOutcome()
    cause: str | None = None
    with tracer.span(f"journey.{name}", {"ecom.journey": name}) as span:
        try:
            await JOURNEYS[name](client, rng, catalogue, outcome)
        except Exception as exc:  # a failed journey is a measurement, not a crash
            cause = cause_of(exc)
            span.set_attribute("ecom.journey.error", cause)
            span.set_status(Status(StatusCode.ERROR, cause))
        trace_id = format(span.get_span_context().trace_id, "032x")
    recorder.record(name, intended_start, time.monotonic(), cause=cause, trace_id=trace_id,
                    checkout=outcome.checkout)


async def _tick(
    recorder: Recorder,
    on_tick: Callable[[LiveView], None] | None,
    cache_totals: Callable[[], tuple[int, int]] | None,
) -> None:
    last = cache_totals() if cache_totals else (0, 0)
    while True:
        await asyncio.sleep(1)
        if cache_totals is not None:
            now = cache_totals()
            recorder.note_cache(now[0] - last[0], now[1] - last[1])
            last = now
        if on_tick is not None:
            on_tick(recorder.live())
