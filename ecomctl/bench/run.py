"""Running the bench: each floor and ecomctl's figure, in one run, on this machine.

Rows (ratio = ecomctl / floor, higher is better):

- ``seed``: ``ecomctl seed`` rows/s against ``pgbench -i`` (client-side COPY, no indexes);
- ``gateway``: cached ``GET /api/products/{id}`` through ``ecomctl serve --role api
  --workers 1`` against a bare Starlette app returning the same JSON on the same uvicorn,
  both driven by ``wrk`` (one thread, 32 connections); ``gateway-locust`` the same driven by
  Locust's ``FastHttpUser`` (32 users, no wait), whose own CPU caps the floor
  (``ecomctl.bench.http_load``);
- ``tracing`` / ``tracing-locust``: that gateway at 100% sampling against the same with
  ``always_off``, by each generator;
- ``workers``: ``serve --role api --workers <cores>`` against ``--workers 1``, by ``wrk``
  (the traced gateways, like the checkout simulations below, export their spans over OTLP to
  ``ecomctl.bench.otlp_sink``, which discards them: the rows measure ecomctl, not the trace
  backend's ingestion);
- ``checkout``: paid checkouts/s of ``checkout simulate --processes <cores>`` (checkout
  journeys only, no think time, instant payments) against pgbench running the SQL that one
  checkout sends (``ecomctl.bench.checkout_floor``: captured from the code, not retyped);
- ``consumer-lag``: the worst Kafka consumer's p99 lag (business commit to processed) in a
  second simulation held at 40 checkouts/s (``--arrival-rate``), against the 1 s target
  (lower is better): flat out, lag measures how long the queue grew, not the consumers;
- ``drain``: the flat-out simulation's run plus the time the outbox and the consumers took to catch
  up afterwards, against the run plus 5 s (lower is better);
- ``consumers``: events/s of ``EventConsumer`` (analytics handler, traced) against aiokafka
  alone reading the same topic (``ecomctl.bench.consumers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ecomctl.adapters.postgres.bench_shop import listed_product_ids
from ecomctl.bench.background import SAMPLE_S, BackgroundLoad, measure_background
from ecomctl.bench.commands import BenchFailed, run_command
from ecomctl.bench.http_load import CONNECTIONS, ensure_wrk, locust_rps, wrk_rps
from ecomctl.bench.otlp_sink import otlp_sink, sink_env
from ecomctl.bench.scratch import (
    PGBENCH_DB,
    SCRATCH_DB,
    database_url,
    drop_database,
    recreate_database,
    scratch_env,
)
from ecomctl.config import Settings
from ecomctl.event_loop import chosen_loop, http_parser
from ecomctl.load.runner import free_port
from ecomctl.results import SimulationResult, read_result
from ecomctl.results.bench import (
    BenchFigure,
    BenchMachine,
    BenchResult,
    BenchRowResult,
    BusyBefore,
)
from ecomctl.results.envelope import SIMULATION

Progress = Callable[[str], None]
_row, _figure = BenchRowResult.measured, BenchFigure.measured
PRODUCTS_SAMPLED = 50
READY_TIMEOUT_S = 120.0


def run_bench(
    settings: Settings, *, quick: bool, work_dir: Path, progress: Progress
) -> BenchResult:
    started_at = dt.datetime.now(dt.UTC).isoformat()
    started = time.monotonic()
    env = {**os.environ, **scratch_env(settings), "PYTHONUNBUFFERED": "1"}
    seconds = 6 if quick else 20
    progress(f"how busy the machine is before the bench ({SAMPLE_S:g} s)")
    background = measure_background(exclude=frozenset({os.getpid()}))
    rows = [_seed_row(settings, env, quick, work_dir, progress)]
    ids = asyncio.run(_product_ids(env["DATABASE_URL"]))
    cores = os.cpu_count() or 1

    ensure_wrk(work_dir / "install-wrk.log")
    with otlp_sink() as (sink, received):
        traced = {**env, **sink_env(sink)}
        progress("gateway, one API process (wrk, then Locust)")
        with _server(_serve_argv("1"), traced, work_dir, "serve-1") as url:
            body = _get(f"{url}/api/products/{ids[0]}")
            one = _both(url, ids, seconds, env, work_dir, "serve-1")
        (work_dir / "product.json").write_bytes(body)
        progress("bare ASGI app, the floor (wrk, then Locust)")
        bare_argv = [sys.executable, "-m", "ecomctl.bench.bare_app", "--body-file",
                     str(work_dir / "product.json"), "--port"]
        with _server(bare_argv, env, work_dir, "bare") as url:
            bare = _both(url, ids, seconds, env, work_dir, "bare")
        progress("gateway with the sampler off (wrk, then Locust)")
        off_env = {**traced, "OTEL_TRACES_SAMPLER": "always_off"}
        with _server(_serve_argv("1"), off_env, work_dir, "serve-off") as url:
            off = _both(url, ids, seconds, env, work_dir, "serve-off")
        progress(f"gateway, {cores} API processes (wrk)")
        with _server(_serve_argv(str(cores)), traced, work_dir, "serve-n") as url:
            many = wrk_rps(url, ids, seconds, work_dir, "serve-n")
        if not received.exports:
            raise BenchFailed("the traced gateways exported no spans (logs: "
                              f"{work_dir / 'serve-1.log'})")
        gateway_exports = received.exports
        checkout_rows = _checkout_rows(traced, seconds, cores, work_dir, progress)
        if received.exports == gateway_exports:
            raise BenchFailed("the checkout simulations exported no spans (log: "
                              f"{work_dir / 'simulate.log'})")
        consumers_row = _consumers_row(traced, quick, progress)

    rps, get = "requests/s", "cached GET /api/products/{id}"
    wrk, locust = f"wrk -t1 -c{CONNECTIONS}", f"Locust FastHttpUser x{CONNECTIONS}"
    served = [_figure("ecomctl serve --role api --workers 1", rate, rps) for rate in one]
    rows += [
        _row("gateway", f"{get}, {wrk}",
             _figure("bare Starlette app, same uvicorn", bare[0], rps), served[0], 0.3),
        _row("gateway-locust", f"{get}, {locust} (the generator caps the floor)",
             _figure("bare Starlette app, same uvicorn", bare[1], rps), served[1], 0.5),
        _row("tracing", f"the same at 100% sampling vs sampler off, {wrk}",
             _figure("OTEL_TRACES_SAMPLER=always_off", off[0], rps), served[0], 0.8),
        _row("tracing-locust", f"the same at 100% sampling vs sampler off, {locust}",
             _figure("OTEL_TRACES_SAMPLER=always_off", off[1], rps), served[1], 0.9),
        _row("workers", f"{cores} API processes vs one, {wrk}",
             served[0], _figure(f"ecomctl serve --role api --workers {cores}", many, rps),
             1.0),
    ]
    rows += checkout_rows
    rows.append(consumers_row)
    machine = BenchMachine(cores=cores, python=platform.python_version(),
                           platform=platform.platform(terse=True),
                           # What the measured processes ran on (they inherit this
                           # environment).
                           event_loop=chosen_loop(), http_parser=http_parser(),
                           **_busy_before(background))
    return BenchResult.measured(rows, started_at=started_at, quick=quick,
                                duration_s=time.monotonic() - started, machine=machine)


def _busy_before(load: BackgroundLoad | None) -> dict[str, Any]:
    if load is None:
        return {}
    return {"busy_cores_before": load.busy_cores,
            "busiest_before": [BusyBefore(command=p.name, cores=p.cores) for p in load.busiest]}


CHECKOUT_ONLY = "browse=0,search=0,recommendations=0,cart=0,checkout=1"
CHECKOUT_SHOPPERS = 16
LAG_RATE = 40.0  # checkouts/s for the lag row: the ">= 30", with a margin
PACED_SHOPPERS = 64  # an open loop needs shoppers to spare when checkouts queue
PGBENCH_CLIENTS = 8
LAG_TARGET_MS = 1000.0
DRAIN_ALLOWANCE_S = 5.0
CONSUMERS_TARGET = 0.6


def _checkout_rows(
    env: Mapping[str, str], seconds: int, cores: int, work_dir: Path, progress: Progress
) -> list[BenchRowResult]:
    from ecomctl.adapters.postgres.bench_shop import top_up_stock
    from ecomctl.bench.checkout_floor import pgbench_checkout_script, run_pgbench_checkout

    url = env["DATABASE_URL"]
    # The simulations first: pgbench's checkouts write outbox rows that nothing publishes,
    # which the simulations' relay and consumers would otherwise have to work through.
    progress(f"checkout simulate --processes {cores}, checkout journeys only, flat out")
    simulated = _simulate(env, seconds, cores, work_dir, "simulate",
                          ["--shoppers", str(CHECKOUT_SHOPPERS), "--think-time", "0"])
    # Lag is measured at a set arrival rate: flat out, the shoppers take the cores the
    # consumers need, and a saturated queue's lag grows with the run's length, not with
    # the consumers' cost.
    asyncio.run(top_up_stock(url, 1_000_000))  # the paced run must not run out of stock
    progress(f"checkout simulate --processes {cores} at {LAG_RATE:g} checkouts/s (lag)")
    paced = _simulate(env, seconds, cores, work_dir, "simulate-paced",
                      ["--shoppers", str(PACED_SHOPPERS), "--arrival-rate", f"{LAG_RATE:g}"])
    progress("pgbench running the SQL of one checkout (the checkout floor)")
    script = work_dir / "checkout.pgbench.sql"
    script.write_text(asyncio.run(pgbench_checkout_script(url)))
    asyncio.run(top_up_stock(url, 1_000_000))  # pgbench must not run out of stock
    floor = run_pgbench_checkout(url, script, clients=PGBENCH_CLIENTS, seconds=seconds,
                                 env=env)
    worst, worst_ms = _worst_lag(paced, work_dir / "simulate-paced.log")
    paced_rate = paced.totals.checkouts_per_s or 0.0
    kafka = simulated.kafka or {}
    run_s, drain_s = simulated.duration_s, float(kafka["drain_s"])
    return [
        _row("checkout", "paid checkouts per second",
             _figure(f"pgbench -c {PGBENCH_CLIENTS}, the checkout's own SQL",
                     floor, "checkouts/s"),
             _figure(f"checkout simulate --processes {cores}, {CHECKOUT_SHOPPERS} "
                     "shoppers", simulated.totals.checkouts_per_s or 0.0, "checkouts/s"),
             0.2),
        _row("consumer-lag",
             f"p99 Kafka consumer lag, commit to processed, at {paced_rate:.1f} paid "
             "checkouts/s", _figure("the target", LAG_TARGET_MS, "ms"),
             _figure(f"{worst}, the slowest consumer", worst_ms, "ms"), 1.0,
             lower_is_better=True),
        _row("drain", "the flat-out run plus catching up after it",
             _figure(f"run + {DRAIN_ALLOWANCE_S:g} s", run_s + DRAIN_ALLOWANCE_S, "s"),
             _figure("run + drain", run_s + drain_s, "s"), 1.0, lower_is_better=True),
    ]


def _simulate(env: Mapping[str, str], seconds: int, cores: int, work_dir: Path, name: str,
              shoppers: list[str]) -> SimulationResult:
    """Checkout journeys only, instant payments, on ``cores`` shopper processes."""
    result = work_dir / f"{name}.json"
    _run([sys.executable, "-m", "ecomctl.cli.main", "checkout", "simulate",
          "--processes", str(cores), *shoppers, "--weights", CHECKOUT_ONLY,
          "--fault", "payment-slow=0", "--duration", f"{seconds}s",
          "--credentials", str(work_dir / "shoppers.json"),
          "--trace-file", str(work_dir / f"{name}.otlp.jsonl"), "--out", str(result),
          "--no-live"], env, work_dir, name)
    simulated = read_result(result, (SIMULATION,))
    assert isinstance(simulated, SimulationResult)
    return simulated


def _worst_lag(simulated: SimulationResult, log: Path) -> tuple[str, float]:
    """The consumer with the highest p99 lag, and that lag in ms."""
    consumers = (simulated.kafka or {}).get("consumers", {})
    lags = {name: c["lag"]["p99_ms"] for name, c in consumers.items() if c.get("lag")}
    if not lags:
        raise BenchFailed(f"the checkout simulation processed no events (log: {log})")
    worst = max(lags, key=lags.__getitem__)
    return worst, float(lags[worst])


def _consumers_row(env: Mapping[str, str], quick: bool, progress: Progress) -> BenchRowResult:
    from ecomctl.bench.consumers import consumer_rates

    events = 6_000 if quick else 30_000
    progress(f"{events:,} events through aiokafka alone, then through ecomctl's consumer")
    raw, own = asyncio.run(consumer_rates(Settings.from_env(env), events))
    per_s = "events/s"
    return _row("consumers", f"{events:,} events read from a 3-partition topic",
                _figure("aiokafka: poll, decode JSON, commit", raw, per_s),
                _figure("EventConsumer + analytics handler, traced", own, per_s),
                CONSUMERS_TARGET)


def _serve_argv(workers: str) -> list[str]:
    return [sys.executable, "-m", "ecomctl.cli.main", "serve", "--role", "api",
            "--workers", workers, "--port"]


def _seed_row(
    settings: Settings, env: Mapping[str, str], quick: bool, work_dir: Path, progress: Progress
) -> BenchRowResult:
    scale = 2 if quick else 10
    progress(f"pgbench -i -s {scale} (the seeding floor)")
    asyncio.run(recreate_database(settings.database_url, PGBENCH_DB))
    started = time.perf_counter()
    _run(["pgbench", "-i", "-I", "dtg", "-q", "-s", str(scale),
          database_url(settings.database_url, PGBENCH_DB)], env, work_dir, "pgbench")
    pgbench_rows = scale * (100_000 + 10 + 1)  # accounts, tellers, branches
    pgbench_rate = pgbench_rows / (time.perf_counter() - started)
    asyncio.run(drop_database(settings.database_url, PGBENCH_DB))

    size = "small" if quick else "medium"
    progress(f"ecomctl seed --scale {size} (scratch database)")
    asyncio.run(recreate_database(settings.database_url, SCRATCH_DB))
    ecomctl = [sys.executable, "-m", "ecomctl.cli.main"]
    _run([*ecomctl, "db", "migrate"], env, work_dir, "migrate")
    seeded = _run([*ecomctl, "seed", "--scale", size, "--reset", "--json", "--credentials",
                   str(work_dir / "shoppers.json")], env, work_dir, "seed")
    seed_rate = float(json.loads(seeded)["total"]["rows_per_s"])
    return _row("seed", "rows loaded per second",
                _figure(f"pgbench -i -s {scale} (COPY, no indexes)", pgbench_rate, "rows/s"),
                _figure(f"ecomctl seed --scale {size}", seed_rate, "rows/s"), 0.3)


def _run(argv: list[str], env: Mapping[str, str], work_dir: Path, name: str) -> str:
    return run_command(argv, env, name=name, log=work_dir / f"{name}.log")


async def _product_ids(url: str) -> list[int]:
    ids = await listed_product_ids(url, PRODUCTS_SAMPLED)
    if not ids:
        raise BenchFailed("the scratch shop has no listed products")
    return ids


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


@contextlib.contextmanager
def _server(
    argv: list[str], env: Mapping[str, str], work_dir: Path, name: str
) -> Iterator[str]:
    """A server on a free port (``argv`` ends with ``--port``); yields its URL once
    ``/api/products/1``-style requests can be answered (readiness or a first 2xx/404)."""
    port = free_port()
    log = (work_dir / f"{name}.log").open("wb")
    process = subprocess.Popen([*argv, str(port)], env=dict(env), stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, name, work_dir)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], name: str, work_dir: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchFailed(f"{name} exited while starting (log: {work_dir / name}.log)")
        try:
            with urllib.request.urlopen(f"{url}/api/products/0", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (a 404 for product 0): ready enough
        except OSError:
            time.sleep(0.25)
    raise BenchFailed(f"{name} was not ready after {READY_TIMEOUT_S:.0f}s")


def _both(
    url: str, ids: list[int], seconds: int, env: Mapping[str, str], work_dir: Path, name: str
) -> tuple[float, float]:
    """(wrk, Locust) requests/s against one running server."""
    return (wrk_rps(url, ids, seconds, work_dir, name),
            locust_rps(url, ids, seconds, env, work_dir, name))
