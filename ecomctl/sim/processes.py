"""``checkout simulate --processes N``: shoppers in N processes, one result.

One Python process drives shoppers and runs the services on one core; N shopper processes
(``python -m ecomctl.sim.shard``, each its own shoppers and in-process services, role
``api``) use more. This process is the events role: it runs the outbox relay and the Kafka
consumers for all of them, so consumer lag and the drain are measured once, as in a single
process. A file barrier starts the shoppers' measured runs together, after every process
has logged its shoppers in. The result merges every process's HdrHistograms exactly
(``Recorder.merged``), adds up the cache lookups, and analyses one trace file: this
process's spans followed by every shopper process's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ecomctl.bootstrap import StackOptions, running_stack
from ecomctl.config import Settings
from ecomctl.errors import ConfigError, InfraError
from ecomctl.faults.catalogue import apply_faults, roles_faults
from ecomctl.results.simulation import SimulationResult
from ecomctl.seed.credentials import load_credentials
from ecomctl.sim.metrics_view import with_ratios
from ecomctl.sim.recorder import Recorder
from ecomctl.sim.runner import SimulationPlan
from ecomctl.sim.scheduled_faults import ScheduledFaults, combined_windows, records_to_json
from ecomctl.sim.simulate import (
    PARENT_ROLES,
    assemble,
    capture_telemetry,
    delivery_baseline,
    instance_id,
    require_shoppers,
    sampler_description,
    settle,
)

Phase = Callable[[str], None]
READY_TIMEOUT_S = 300.0  # every shopper process started its stack and logged in
EXIT_GRACE_S = 300.0  # beyond the run: closing clients, flushing spans
GO_FILE = "go"


@dataclasses.dataclass(frozen=True)
class Shard:
    """One shopper process's share of the plan."""

    index: int
    plan: SimulationPlan
    first_account: int


def shard_plans(plan: SimulationPlan, processes: int) -> list[Shard]:
    """Shoppers, sessions and the arrival rate split as evenly as they go; each process gets
    its own seed and its own accounts (no two processes share a cart)."""
    if processes < 1:
        raise ConfigError("--processes must be at least 1")
    if plan.shoppers < processes:
        raise ConfigError(f"--processes {processes} needs at least {processes} shoppers "
                          f"(got {plan.shoppers})")
    shards, first = [], 0
    for index in range(processes):
        shoppers = _share(plan.shoppers, processes, index)
        sessions = None if plan.sessions is None else _share(plan.sessions, processes, index)
        if sessions == 0:
            raise ConfigError(f"--sessions {plan.sessions} is fewer than --processes")
        shards.append(Shard(index, dataclasses.replace(
            plan, shoppers=shoppers, sessions=sessions, seed=plan.seed + index,
            arrival_rate=plan.arrival_rate / processes if plan.arrival_rate else None,
        ), first))
        first += shoppers
    return shards


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


async def simulate_processes(
    settings: Settings,
    plan: SimulationPlan,
    processes: int,
    *,
    credentials: Path,
    trace_file: Path,
    on_phase: Phase,
) -> SimulationResult:
    shards = shard_plans(plan, processes)
    shoppers = load_credentials(credentials).shoppers
    telemetry = capture_telemetry(settings, trace_file)
    started_at = dt.datetime.now(dt.UTC)
    with _work_dir() as work:
        try:
            async with running_stack(settings, StackOptions(telemetry=telemetry)) as shop:
                await require_shoppers(settings, credentials, shoppers)
                delivery = await delivery_baseline(shop)
                events_faults = roles_faults(list(plan.faults), PARENT_ROLES)
                undo = await apply_faults(shop, events_faults)
                for consumer in shop.consumers:
                    consumer.event_lag.reset()
                try:
                    on_phase(f"starting {processes} shopper processes")
                    scheduled = ScheduledFaults(shop, plan.fault_schedule, PARENT_ROLES)
                    outputs = await _run_shards(shards, credentials, work, on_phase,
                                                shop.payment_gateway_url, scheduled.start)
                finally:
                    parent_windows = await scheduled.stop()
                    for revert in reversed(undo):
                        await revert()
                kafka, invariants = await settle(shop, on_phase, delivery)
                fault_events = list(shop.fault_log)
                telemetry.force_flush()
        finally:
            telemetry.shutdown()
        _append_traces(trace_file, [work / f"shard-{s.index}.jsonl" for s in shards])
    on_phase("analysing traces")
    recorder = Recorder.merged(o["recorder"] for o in outputs)
    run_s = max(o["recorder"]["started"] + o["run_s"] for o in outputs) - recorder.started
    cache = with_ratios(_add_lookups(o["cache_lookups"] for o in outputs))
    windows = combined_windows(plan.fault_schedule, recorder.started_ns / 1e9,
                               records_to_json(parent_windows),
                               *(o.get("fault_windows", []) for o in outputs))
    result = assemble(plan, recorder, started_at, run_s, trace_file, invariants, cache, kafka,
                      sampler_description(settings), fault_events, windows,
                      instances=[instance_id(telemetry), *(o["instance"] for o in outputs)])
    result.config.processes = processes
    result.processes = [_shard_summary(o) for o in outputs]
    return result


def _shard_summary(output: dict[str, Any]) -> dict[str, Any]:
    """What one shopper process did, to check the merge against (``totals`` is their sum)."""
    state = output["recorder"]
    return {"journeys": sum(s["journeys"] for s in state["timeline"]),
            "errors": sum(state["errors"].values()),
            "checkouts": dict(state["checkouts"]), "run_s": round(output["run_s"], 3)}


async def _run_shards(
    shards: Sequence[Shard], credentials: Path, work: Path, on_phase: Phase,
    payment_gateway_url: str | None, on_go: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    """The shopper processes, all charging through the parent's one payment gateway (one
    ledger, reconciled by the parent's events role)."""
    children: list[asyncio.subprocess.Process] = []
    try:
        for shard in shards:
            children.append(await _start_shard(shard, credentials, work, payment_gateway_url))
        await _barrier(children, work, [shard.index for shard in shards])
        on_go()  # the shoppers' measured run starts now: so does the parent's fault schedule
        on_phase("running shoppers")
        longest = max(shard.plan.duration_s or 0.0 for shard in shards) + EXIT_GRACE_S
        deadline = time.monotonic() + longest
        for shard, child in zip(shards, children, strict=True):
            try:
                code = await asyncio.wait_for(child.wait(), max(1.0, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise InfraError(f"shopper process {shard.index} did not finish in time "
                                 f"({_log_tail(work, shard.index)})") from exc
            if code != 0:
                raise InfraError(f"shopper process {shard.index} exited with {code}:\n"
                                 f"{_log_tail(work, shard.index)}")
    finally:
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
    return [json.loads((work / f"shard-{s.index}.out.json").read_text()) for s in shards]


async def _start_shard(
    shard: Shard, credentials: Path, work: Path, payment_gateway_url: str | None
) -> asyncio.subprocess.Process:
    spec = {
        "payment_gateway_url": payment_gateway_url,
        "plan": shard.plan.to_json(), "first_account": shard.first_account,
        "credentials": str(credentials), "trace_file": str(work / f"shard-{shard.index}.jsonl"),
        "ready_file": str(work / f"ready-{shard.index}"), "go_file": str(work / GO_FILE),
        "out": str(work / f"shard-{shard.index}.out.json"),
    }
    spec_file = work / f"shard-{shard.index}.spec.json"
    spec_file.write_text(json.dumps(spec))
    log = (work / f"shard-{shard.index}.log").open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ecomctl.sim.shard", str(spec_file),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        log.close()  # the child holds its own descriptor


async def _barrier(
    children: Sequence[asyncio.subprocess.Process], work: Path, indexes: Sequence[int]
) -> None:
    """Wait until every shopper process has logged in, then let them all start."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all((work / f"ready-{i}").exists() for i in indexes):
        for index, child in zip(indexes, children, strict=True):
            if child.returncode is not None:
                raise InfraError(f"shopper process {index} exited with {child.returncode} "
                                 f"while starting:\n{_log_tail(work, index)}")
        if time.monotonic() > deadline:
            raise InfraError(f"the shopper processes were not ready in {READY_TIMEOUT_S:.0f}s")
        await asyncio.sleep(0.05)
    (work / GO_FILE).touch()


def _add_lookups(
    tables: Iterable[dict[str, dict[str, dict[str, int]]]],
) -> dict[str, dict[str, dict[str, int]]]:
    total: dict[str, dict[str, dict[str, int]]] = {}
    for table in tables:
        for service, levels in table.items():
            for level, cell in levels.items():
                into = total.setdefault(service, {}).setdefault(level, {"hits": 0, "misses": 0})
                into["hits"] += int(cell["hits"])
                into["misses"] += int(cell["misses"])
    return total


def _append_traces(trace_file: Path, parts: Sequence[Path]) -> None:
    """Each line is a self-contained OTLP batch, so files concatenate."""
    with trace_file.open("ab") as out:
        for part in parts:
            if part.exists():
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out)


def _log_tail(work: Path, index: int, lines: int = 30) -> str:
    try:
        text = (work / f"shard-{index}.log").read_text(errors="replace")
    except OSError:
        return "no log"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _work_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ecomctl-simulate-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
