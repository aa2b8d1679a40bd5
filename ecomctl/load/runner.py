"""Running a load test: the gateway (unless given a host), Locust in its own processes, the
exact merge of their histograms, then server-side spans and the business invariants.

Locust is never imported here (it patches the standard library with gevent): it runs as
``python -m locust`` subprocesses, one local process or a master with N workers, each in its
own session so that a Ctrl-C or a timeout here can end the whole group. Nothing prints:
progress goes through callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ecomctl.config import Settings
from ecomctl.errors import ConfigError, EcomctlError
from ecomctl.faults.catalogue import FaultSpec
from ecomctl.faults.flag_file import FlagFile
from ecomctl.faults.schedule import FaultWindow, ScheduleThread, WindowRecord
from ecomctl.load.profiles import (
    ACCOUNT_OFFSET_ENV,
    HDR_DIR_ENV,
    PACING_ENV,
    SHAPE_ENV,
    SHOPPERS_FILE_ENV,
    scenarios_dir,
)
from ecomctl.load.result import (
    LoadConfig,
    add_phase_exemplars,
    analyze_server_spans,
    build_result,
    load_started_at,
    merge_hdr_documents,
    progress_counts,
    read_hdr_documents,
)
from ecomctl.load.timeline import add_timeline, origin
from ecomctl.results.load_run import LoadRunResult

GATEWAY_READY_TIMEOUT_S = 90.0
# `serve --drain-on-exit` drains for 60 s at most and gives up at 90 s; with --workers N
# its parent stops the API processes first, then the events process (100 s at most each).
GATEWAY_STOP_TIMEOUT_S = 220.0
LOCUST_GRACE_S = 60.0  # start-up (workers joining) and shut-down beyond --duration
LOCUST_MASTER_PORT = 5557  # Locust's own default
REMOTE_WORKERS_WAIT_S = 300.0
WORKER_EXIT_WAIT_S = 15.0
KILL_WAIT_S = 5.0
SEED_TIMEOUT_S = 600.0

Phase = Callable[[str], None]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local port: no proxy


class LoadRunFailed(EcomctlError):
    """The load test itself could not run (a Locust process failed, a timeout...)."""


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    duration_s: float
    requests: int
    failures: int


Tick = Callable[[Progress], None]


@dataclass(frozen=True)
class RemoteWorkers:
    """Locust's distributed mode across hosts: the master binds here and waits for workers
    that ``ecomctl load worker --master-host`` starts (on this host or others)."""

    expected: int
    bind_host: str
    bind_port: int = LOCUST_MASTER_PORT
    wait_s: float = REMOTE_WORKERS_WAIT_S

    @property
    def address(self) -> str:
        return f"{self.bind_host}:{self.bind_port}"

    @property
    def reachable_host(self) -> str:
        """Where to start the gateway so that the workers reach it too."""
        return "127.0.0.1" if self.bind_host in ("*", "0.0.0.0", "") else self.bind_host


@dataclass(frozen=True)
class WebUI:
    """Locust's own web UI during the run (``load run --web``)."""

    host: str = "127.0.0.1"
    port: int = 8089

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("*", "0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


# Locust quits this long after the run ends with --web: long enough to see the final figures
# in the UI, short enough not to hold up the result.
WEB_UI_LINGER_S = 5


@dataclass(frozen=True)
class LoadRequest:
    """What ``ecomctl load run`` was asked to do."""

    locustfile: Path
    users: int
    spawn_rate: float
    duration_s: float
    workers: int = 0
    """Local Locust worker processes under a local master."""
    remote: RemoteWorkers | None = None
    """A master only, for workers started by ``ecomctl load worker`` (excludes ``workers``)."""
    host: str | None = None
    """None: start ``ecomctl serve`` on a free local port (and seed an empty shop)."""
    profile: str | None = None
    shape: str | None = None
    pacing_s: float | None = None
    credentials: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    locust_args: tuple[str, ...] = ()
    """Locust's own options (``ecomctl load run ... -- --tags checkout``), given to the local
    process or the master; a master hands its options to its workers itself."""
    faults: tuple[FaultSpec, ...] = ()
    """Faults for the whole run (``--fault``)."""
    fault_schedule: tuple[FaultWindow, ...] = ()
    """Faults in windows from the start of the load (``--fault-schedule``)."""
    web: WebUI | None = None
    """Serve Locust's web UI during the run (it starts and quits by itself all the same)."""
    serve_workers: int = 1
    """API processes of the gateway ecomctl starts (``serve --workers``; not with ``host``)."""


# Options ecomctl sets on Locust's command line itself: passing them after `--` is refused.
LOCUST_OPTIONS_OWNED = frozenset({
    "-f", "--locustfile", "-H", "--host", "--headless", "--autostart", "--autoquit", "-u",
    "--users", "-r", "--spawn-rate", "-t", "--run-time", "--only-summary",
    "--exit-code-on-error", "--json-file", "--master", "--worker", "--master-bind-host",
    "--master-bind-port", "--master-host", "--master-port", "--expect-workers",
    "--expect-workers-max-wait", "--processes", "--json", "--web-host", "--web-port",
})


def owned_locust_options(args: Sequence[str]) -> list[str]:
    """The options in ``args`` that ecomctl sets itself (so the user cannot)."""
    return [a for a in args if a.split("=", 1)[0] in LOCUST_OPTIONS_OWNED]


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Child:
    """A subprocess in its own session (so its whole group can be ended), output to a log."""

    def __init__(self, name: str, args: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            env=dict(env), start_new_session=True,
        )

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = KILL_WAIT_S) -> int:
        """SIGTERM, then SIGKILL to the whole group after ``timeout_s``."""
        if self.returncode is None:
            self.signal(signal.SIGTERM)
            if self.wait(timeout_s) is None:
                self.signal(signal.SIGKILL)
                self.process.wait()
        else:
            self.signal(signal.SIGKILL)  # anything it left behind in its group
        self._out.close()
        return int(self.process.returncode)

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _failure(child: _Child, what: str) -> LoadRunFailed:
    return LoadRunFailed(f"{what} (log: {child.log})\n{child.tail()}")


# -- the gateway ----------------------------------------------------------------------------


class GatewayProcess:
    """``ecomctl serve`` on a free port, each of its processes capturing spans to a file of
    its own in ``work_dir/server-spans``; stopping it drains the outbox and the Kafka
    consumers first (``--drain-on-exit``) and gathers the captures into ``trace_file``."""

    def __init__(self, trace_file: Path, work_dir: Path, host: str = "127.0.0.1",
                 flags_file: Path | None = None, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.trace_file = trace_file
        # One process writes this file; with --workers N each writes a sibling of its own.
        self._captures = work_dir / "server-spans"
        self._captures.mkdir()
        # The payment simulator's books, written after the drain: the ledger invariant.
        self.ledger_file = work_dir / "payment-ledger.json"
        self.drained: bool | None = None
        self._child = _Child(
            "gateway",
            [sys.executable, "-m", "ecomctl.cli.main", "serve", "--host", host,
             "--port", str(self.port), "--workers", str(workers),
             "--trace-file", str(self._captures / "server.jsonl"),
             "--drain-on-exit", "--payment-ledger", str(self.ledger_file),
             *(["--flags-file", str(flags_file)] if flags_file else [])],
            work_dir / "gateway.log", {**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_ready(self, timeout_s: float = GATEWAY_READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._child.returncode is not None:
                raise _failure(self._child, "the gateway exited while starting")
            with (contextlib.suppress(OSError),
                  _DIRECT.open(f"{self.url}/readyz", timeout=2) as response):
                if response.status == 200:
                    return
            time.sleep(0.25)
        raise _failure(self._child, f"the gateway was not ready after {timeout_s:.0f}s")

    def stop(self, timeout_s: float = GATEWAY_STOP_TIMEOUT_S) -> None:
        code = self._child.stop(timeout_s)
        log = self._child.tail(200)
        self.drained = code == 0 and "outbox and consumers drained" in log
        from ecomctl.telemetry.loadgen import append_captures

        append_captures(self._captures, self.trace_file, "*.jsonl")

    def log_tail(self, lines: int = 25) -> str:
        return self._child.tail(lines)


# -- Locust ---------------------------------------------------------------------------------


@dataclass
class LocustRun:
    documents: list[dict[str, Any]]
    started_at: datetime
    duration_s: float
    locust_stats: dict[str, int] | None


def locust_commands(request: LoadRequest, host: str, work_dir: Path) -> list[list[str]]:
    """The command lines: one local process, or a master followed by its workers (none when
    they are remote)."""
    base = [sys.executable, "-m", "locust", "-f", str(request.locustfile), "--host", host]
    # Headless, or the web UI on a run that starts and ends by itself (the master's UI, in
    # distributed mode: workers have none).
    ui = (["--autostart", "--autoquit", str(WEB_UI_LINGER_S), "--web-host", request.web.host,
           "--web-port", str(request.web.port)] if request.web else ["--headless"])
    run = [*ui, "-u", str(request.users), "-r", f"{request.spawn_rate:g}",
           "-t", f"{math.ceil(request.duration_s)}s", "--only-summary",
           "--exit-code-on-error", "0", "--json-file", str(work_dir / "locust"),
           *request.locust_args]
    if request.remote is not None:
        remote = request.remote
        return [base + run + ["--master", "--master-bind-host", remote.bind_host,
                              "--master-bind-port", str(remote.bind_port),
                              "--expect-workers", str(remote.expected),
                              "--expect-workers-max-wait", str(int(remote.wait_s))]]
    if not request.workers:
        return [base + run]
    port = free_port()
    master = base + run + ["--master", "--master-bind-host", "127.0.0.1",
                           "--master-bind-port", str(port),
                           "--expect-workers", str(request.workers),
                           "--expect-workers-max-wait", str(int(LOCUST_GRACE_S))]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [master] + [worker] * request.workers


def worker_command(locustfile: Path, master_host: str, master_port: int) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
            "--master-host", master_host, "--master-port", str(master_port)]


def run_worker(
    locustfile: Path, master_host: str, master_port: int, credentials: Path | None = None
) -> int:
    """One Locust worker for a master on ``master_host`` (``ecomctl load run --master``), in
    the foreground, its log on this terminal; the master sends the host, users and options
    and receives the histograms. Returns Locust's exit code when the master quits."""
    from ecomctl.seed.credentials import default_credentials_path

    if not locustfile.is_file():
        raise ConfigError(f"{locustfile}: no such locustfile")
    shoppers = credentials or default_credentials_path()
    if credentials is not None and not credentials.is_file():
        raise ConfigError(f"{credentials}: no such shoppers file (copy the one `ecomctl seed` "
                          "wrote on the shop's host)")
    from ecomctl.telemetry.loadgen import SPANS_TO_MASTER_ENV, locust_otlp_env

    # Its client spans: to the collector, and to the master for the run's capture.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _scenarios_path(),
           **locust_otlp_env(Settings.from_env()), SPANS_TO_MASTER_ENV: "1"}
    if shoppers.is_file():
        env[SHOPPERS_FILE_ENV] = str(shoppers)
    return subprocess.run(worker_command(locustfile, master_host, master_port), env=env,
                          stdin=subprocess.DEVNULL, check=False).returncode


def _scenarios_path() -> str:
    """scenarios/ on the path: your own locustfiles can `import hdr_hook` or `from shop ...`."""
    return os.pathsep.join(filter(None, [str(scenarios_dir()), os.environ.get("PYTHONPATH")]))


def run_locust(
    request: LoadRequest,
    host: str,
    work_dir: Path,
    env: Mapping[str, str],
    on_tick: Tick | None = None,
    on_load_start: Callable[[float], None] | None = None,
) -> LocustRun:
    """Run Locust to its end; ``on_load_start(unix time)`` is called once the load has
    started (a process's first snapshot says when), for the fault schedule."""
    hdr_dir = work_dir / "hdr"
    hdr_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **env, HDR_DIR_ENV: str(hdr_dir), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": _scenarios_path()}
    commands = locust_commands(request, host, work_dir)
    started_at = datetime.now(UTC)
    started = time.monotonic()
    children: list[_Child] = []
    try:
        for i, args in enumerate(commands):
            name = ("master" if i == 0 and (request.remote or request.workers)
                    else f"worker-{i}" if i else "locust")
            children.append(_Child(name, args, work_dir / f"{name}.log", env))
        main, workers = children[0], children[1:]
        deadline = started + request.duration_s + LOCUST_GRACE_S + (
            request.remote.wait_s if request.remote else 0.0) + (
            WEB_UI_LINGER_S if request.web else 0.0)
        while main.returncode is None:
            for worker in workers:
                if worker.returncode not in (None, 0):
                    raise _failure(worker, f"Locust {worker.name} exited with "
                                           f"{worker.returncode}")
            if time.monotonic() > deadline:
                raise _failure(main, f"Locust did not finish within "
                                     f"{deadline - started:.0f}s")
            if on_load_start is not None and (load_start := load_started_at(hdr_dir)):
                on_load_start(load_start)
                on_load_start = None
            if on_tick is not None:
                requests, failures = progress_counts(hdr_dir)
                on_tick(Progress(time.monotonic() - started, request.duration_s, requests,
                                 failures))
            time.sleep(0.5)
        duration_s = time.monotonic() - started
        for worker in workers:  # the master tells them to quit as it does
            worker.wait(WORKER_EXIT_WAIT_S)
        if main.returncode != 0:
            raise _failure(main, f"Locust {main.name} exited with {main.returncode}")
        for worker in workers:
            if worker.returncode != 0:
                raise _failure(worker, f"Locust {worker.name} exited with {worker.returncode}")
    finally:
        for child in reversed(children):
            child.stop()
    documents = read_hdr_documents(hdr_dir)
    expected = request.remote.expected if request.remote else max(1, request.workers)
    if not documents:
        raise _failure(children[0], "Locust wrote no latency histograms: a locustfile of "
                                    "your own must `import hdr_hook` (scenarios/hdr_hook.py)")
    if len(documents) != expected or not all(d.get("final") for d in documents):
        raise _failure(children[0], f"expected {expected} final histogram files from Locust, "
                                    f"found {sum(bool(d.get('final')) for d in documents)}")
    return LocustRun(documents, started_at, duration_s, _locust_stats(work_dir))


def _locust_stats(work_dir: Path) -> dict[str, int] | None:
    """Locust's own totals, written at its exit (a cross-check; its rounded percentiles are
    not used)."""
    try:
        entries = json.loads((work_dir / "locust.json").read_text())
        return {"requests": sum(int(e["num_requests"]) for e in entries),
                "failures": sum(int(e["num_failures"]) for e in entries)}
    except (OSError, ValueError, TypeError, KeyError):
        return None


# -- the shop's database --------------------------------------------------------------------


async def _product_count(settings: Settings) -> int:
    from ecomctl.adapters.postgres.database import Database
    from ecomctl.adapters.postgres.operations import active_product_count

    db = await Database.connect(settings.database_url, min_size=1, max_size=1)
    try:
        return await active_product_count(db)
    finally:
        await db.close()


async def _invariants(settings: Settings, ledger_file: Path) -> list[dict[str, Any]]:
    """The business invariants, with the payment gateway's ledger the gateway wrote on its
    way out (a gateway that did not stop cleanly wrote none: that breaks the ledger check)."""
    from dataclasses import asdict

    from ecomctl.adapters.payment_ledger import GatewayLedger
    from ecomctl.adapters.postgres.database import Database
    from ecomctl.sim.invariants import LEDGER_INVARIANT, check_invariants

    ledger = None
    if ledger_file.is_file():
        ledger = GatewayLedger.from_json(json.loads(ledger_file.read_text()))
    db = await Database.connect(settings.database_url, min_size=1, max_size=1)
    try:
        results = [asdict(r) for r in await check_invariants(db, ledger)]
    finally:
        await db.close()
    if ledger is None:
        results.append({"name": LEDGER_INVARIANT, "ok": False,
                        "detail": "the gateway wrote no payment ledger (it did not stop "
                                  "cleanly): the gateway's books could not be compared"})
    return results


def ensure_seeded(settings: Settings, on_phase: Phase) -> None:
    """Seed a small shop when it has no products (``ecomctl seed --scale small``)."""
    if asyncio.run(_product_count(settings)):
        return
    on_phase("the shop has no products: seeding a small one (ecomctl seed --scale small)")
    seeded = subprocess.run(
        [sys.executable, "-m", "ecomctl.cli.main", "seed", "--scale", "small"],
        capture_output=True, text=True, timeout=SEED_TIMEOUT_S, check=False,
    )
    if seeded.returncode != 0 or not asyncio.run(_product_count(settings)):
        raise LoadRunFailed("the shop has no products and seeding it failed: run "
                            f"`ecomctl seed` yourself\n{seeded.stderr[-2000:]}")


# -- all of it ------------------------------------------------------------------------------


@contextlib.contextmanager
def _work_dir() -> Iterator[Path]:
    """A scratch directory for logs and histograms, kept when the run fails (the error
    names the log to read)."""
    path = Path(tempfile.mkdtemp(prefix="ecomctl-load-"))
    try:
        yield path
    except KeyboardInterrupt:
        shutil.rmtree(path, ignore_errors=True)
        raise
    shutil.rmtree(path, ignore_errors=True)


def _run_flags(request: LoadRequest, work_dir: Path, started_gateway: bool) -> FlagFile | None:
    """The flag file the run's faults go through: the run's own for a gateway ecomctl starts
    (nothing left over from another run, and `ecomctl faults set --file` reaches it), the
    shop's (``faults set``'s default) for a host given with --host; None when not needed."""
    from ecomctl.faults.flag_file import FlagFile, default_flags_file

    if started_gateway:
        flags = FlagFile(work_dir / "flags.json")
        flags.ensure()
    elif request.faults or request.fault_schedule:
        flags = FlagFile(default_flags_file())
    else:
        return None
    if request.faults:
        flags.set(request.faults)
    return flags


def _turn(flags: FlagFile) -> Callable[[FaultSpec, bool], None]:
    def turn(fault: FaultSpec, on: bool) -> None:
        if on:
            flags.set([fault])
        else:
            flags.clear([fault.name])

    return turn


def run_load(
    request: LoadRequest,
    settings: Settings,
    *,
    on_phase: Phase = lambda _: None,
    on_tick: Tick | None = None,
) -> LoadRunResult:
    """Run the load test and return its result (``ecomctl.results.load_run``)."""
    from ecomctl.seed.credentials import (
        check_shoppers_exist,
        default_credentials_path,
        load_credentials,
    )
    from ecomctl.telemetry.loadgen import SPAN_DIR_ENV, append_captures, locust_otlp_env
    from ecomctl.telemetry.trace_store import new_trace_file

    if not request.locustfile.is_file():
        raise ConfigError(f"{request.locustfile}: no such locustfile")
    started_gateway = request.host is None
    if started_gateway:
        ensure_seeded(settings, on_phase)
    credentials = request.credentials or default_credentials_path()
    # Locust's client spans go where the gateway's go (the requests' traces start there).
    env = {**locust_otlp_env(settings), **request.extra_env}
    try:  # the shop's scenarios log in with these: say so now when they are missing
        shoppers = load_credentials(credentials).shoppers
    except ConfigError:
        if request.profile is not None or request.credentials is not None:
            raise
        shoppers = ()  # your own locustfile may not need them
    if shoppers and started_gateway:  # our database: the accounts must be in it
        check_shoppers_exist(settings.database_url, credentials, shoppers)
    if shoppers:
        env[SHOPPERS_FILE_ENV] = str(credentials)
        # A random first account per run: two runs at once rarely share carts.
        env[ACCOUNT_OFFSET_ENV] = str(random.randrange(len(shoppers)))
    elif request.profile is not None:
        raise ConfigError(f"{credentials}: lists no shoppers; run `ecomctl seed`")
    if request.shape:
        env[SHAPE_ENV] = request.shape
    if request.pacing_s:
        env[PACING_ENV] = repr(request.pacing_s)
    with _work_dir() as work_dir:
        gateway: GatewayProcess | None = None
        flags = _run_flags(request, work_dir, started_gateway)
        schedule = (ScheduleThread(request.fault_schedule, _turn(flags))
                    if flags is not None and request.fault_schedule else None)
        records: list[WindowRecord] = []
        if started_gateway:  # ...and into the capture, beside the gateway's spans
            env[SPAN_DIR_ENV] = str(work_dir / "spans")
        try:
            if started_gateway:
                on_phase("starting the gateway (ecomctl serve)")
                gateway = GatewayProcess(
                    new_trace_file("load"), work_dir,
                    request.remote.reachable_host if request.remote else "127.0.0.1",
                    flags.path if flags is not None else None, request.serve_workers)
                gateway.wait_ready()
            host = gateway.url if gateway else str(request.host)
            if request.remote is not None:
                on_phase(f"Locust master on {request.remote.address}: waiting up to "
                         f"{request.remote.wait_s:.0f}s for {request.remote.expected} "
                         f"workers (ecomctl load worker --master-host "
                         f"{request.remote.reachable_host} --master-port "
                         f"{request.remote.bind_port}), then running against {host}")
            else:
                on_phase(f"running Locust against {host}"
                         + (f" ({request.workers} workers)" if request.workers else ""))
            if request.web is not None:
                on_phase(f"Locust's web UI: {request.web.url} (until "
                         f"{WEB_UI_LINGER_S}s after the run)")
            if flags is not None and (request.faults or schedule):
                on_phase(f"faults through {flags.path}: "
                         + ", ".join([*map(str, request.faults),
                                      *(str(w) for w in request.fault_schedule)]))
            run = run_locust(request, host, work_dir, env, on_tick,
                             schedule.start if schedule else None)
            records = schedule.stop() if schedule else []
            if gateway is not None:
                on_phase("stopping the gateway: draining the outbox and the consumers")
                gateway.stop()
                if not gateway.drained:
                    on_phase("the gateway did not drain and stop cleanly; its log ends:\n"
                             + gateway.log_tail(120))
        finally:
            if schedule is not None:
                schedule.stop()  # idempotent: closes a window left open by a failure
            if flags is not None and not started_gateway:  # leave the user's shop as it was
                flags.clear(sorted({f.name for f in request.faults}))
            if gateway is not None and gateway.drained is None:
                gateway.stop(KILL_WAIT_S)  # interrupted or failed: no waiting for a drain
        server = invariants = None
        if gateway is not None:
            on_phase("checking invariants")
            invariants = asyncio.run(_invariants(settings, gateway.ledger_file))
            append_captures(work_dir / "spans", gateway.trace_file)
            on_phase("analysing the gateway's spans")
            server = analyze_server_spans(gateway.trace_file)
        config = LoadConfig(
            profile=request.profile, locustfile=str(request.locustfile), shape=request.shape,
            users=request.users, spawn_rate=request.spawn_rate, duration_s=request.duration_s,
            workers=request.remote.expected if request.remote else request.workers,
            host=host, gateway_started=started_gateway, pacing_s=request.pacing_s,
            serve_workers=request.serve_workers if started_gateway else None,
            master=request.remote.address if request.remote else None,
            faults=tuple(str(f) for f in request.faults),
            fault_schedule=tuple(str(w) for w in request.fault_schedule),
        )
        merged = merge_hdr_documents(run.documents)
        if not merged.requests:
            log = ("master.log" if request.remote else
                   "worker-1.log" if request.workers else "locust.log")
            raise LoadRunFailed("Locust sent no requests; its log says:\n"
                                + (work_dir / log).read_text()[-3000:])
        result = build_result(
            merged, config, started_at=run.started_at, duration_s=run.duration_s,
            server=server, invariants=invariants,
            drained=gateway.drained if gateway else None, locust_stats=run.locust_stats,
        )
        result = add_timeline(result, merged, records)
        if server is not None:
            add_phase_exemplars(result, server.traces, origin(merged))
        # Read back through the record's parser: what a run writes is what readers accept.
        return LoadRunResult.parse(result)
