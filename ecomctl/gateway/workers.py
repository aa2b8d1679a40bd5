"""``ecomctl serve --workers N``: the shop as several processes on one machine.

A parent that owns nothing but the children: N ``serve --role api`` processes sharing the
port (SO_REUSEPORT: the kernel spreads connections over them), one ``serve --role events``
process (outbox relay, Kafka consumers, carrier) and, unless a payment gateway URL is given,
one payment gateway simulator that every API process charges. The children are the same
commands a user runs by hand to spread the shop over hosts; their output goes, line by line
and with the child's name, to the caller (``serve`` prints it). Ctrl-C/SIGTERM stops the API
processes first, then the events process (which drains with --drain-on-exit), then the
simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ecomctl.errors import InfraError, ServerStartError

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 100.0
"""Past each child's own stop deadline (serve.STOP_DEADLINE_S, 90 s), which reports what
hung before it exits: the kill here is for a child that cannot even do that."""
_URL = re.compile(r"listening on (http://\S+)")


@dataclass(frozen=True)
class WorkerPlan:
    host: str
    port: int
    api_workers: int
    events: bool
    """Run the events role too (``--role all``)."""
    payment_gateway_url: str | None
    trace_file: Path | None
    drain_on_exit: bool
    api_pool_size: int
    """PostgreSQL connections of each API process (the events process keeps the default)."""
    limit_concurrency: int | None = None
    """``--limit-concurrency`` of each API process; None: the settings' (environment)."""
    flags_file: Path | None = None
    """The fault flag file every child watches."""
    payment_ledger: Path | None = None
    """Where the events process writes the payment gateway's ledger after its drain."""


@dataclass
class _Child:
    name: str
    process: asyncio.subprocess.Process
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    url: str | None = None
    relay: asyncio.Task[None] | None = None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it if the parent dies (even by SIGKILL), so no
    orphan keeps the port and the pools. Linux only; elsewhere a no-op."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _ecomctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "ecomctl.cli.main", *args]


def _trace_args(plan: WorkerPlan, name: str) -> list[str]:
    if plan.trace_file is None:
        return []
    path = plan.trace_file
    return ["--trace-file", str(path.with_name(f"{path.stem}.{name}{path.suffix or '.jsonl'}"))]


def _flags_args(plan: WorkerPlan) -> list[str]:
    return [] if plan.flags_file is None else ["--flags-file", str(plan.flags_file)]


def _limit_args(plan: WorkerPlan) -> list[str]:
    if plan.limit_concurrency is None:
        return []  # the children read ECOMCTL_LIMIT_CONCURRENCY from the same environment
    return ["--limit-concurrency", str(plan.limit_concurrency)]


OnOutput = Callable[[str, str], None]
"""(child name, one line of its output)."""


class WorkerFailed(InfraError):
    """A process of the shop exited while serving, or did not stop cleanly."""


async def _start(name: str, argv: list[str], ready_marker: str, on_output: OnOutput) -> _Child:
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        start_new_session=True,  # our Ctrl-C is not theirs: we stop them in order
        preexec_fn=_die_with_parent,
    )
    child = _Child(name, process)
    child.relay = asyncio.create_task(_relay_output(child, ready_marker, on_output))
    return child


async def _relay_output(child: _Child, ready_marker: str, on_output: OnOutput) -> None:
    assert child.process.stdout is not None
    async for raw in child.process.stdout:
        line = raw.decode(errors="replace").rstrip()
        on_output(child.name, line)
        if not child.ready.is_set() and ready_marker in line:
            match = _URL.search(line)
            child.url = match.group(1) if match else None
            child.ready.set()


async def _wait_ready(children: list[_Child]) -> str | None:
    """None when every child said it is ready; otherwise why not."""
    async def one(child: _Child) -> str | None:
        ready = asyncio.create_task(child.ready.wait())
        exited = asyncio.create_task(child.process.wait())
        done, pending = await asyncio.wait({ready, exited}, timeout=READY_TIMEOUT_S,
                                           return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if ready in done:
            return None
        if exited in done:
            return f"{child.name} exited with {child.process.returncode} while starting"
        return f"{child.name} was not ready after {READY_TIMEOUT_S:.0f}s"

    problems = [p for p in await asyncio.gather(*(one(c) for c in children)) if p]
    return "; ".join(problems) or None


async def _stop(children: list[_Child]) -> list[int]:
    """SIGTERM these children together and wait; kill what outlives the timeout."""
    for child in children:
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
    codes = []
    for child in children:
        try:
            codes.append(await asyncio.wait_for(child.process.wait(), STOP_TIMEOUT_S))
        except TimeoutError:
            child.process.kill()
            codes.append(await child.process.wait())
        if child.relay is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(child.relay, 5)
    return codes


def _reserve_port(host: str, port: int) -> socket.socket:
    """Bind (without listening) with SO_REUSEPORT: it picks the port when 0 is asked for,
    and holds it while the API processes bind it too. Connections only go to listeners."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


async def supervise(plan: WorkerPlan, on_output: OnOutput, on_notice: Callable[[str], None]
                    ) -> None:
    """Run the processes of ``plan`` until Ctrl-C/SIGTERM. ``ServerStartError`` when one
    does not start, ``WorkerFailed`` when one exits while serving (the others are then
    stopped too) or does not stop cleanly; ``on_notice`` hears where it listens and what
    it is doing."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        reserved = _reserve_port(plan.host, plan.port)
    except OSError as exc:
        raise ServerStartError(f"cannot listen on {plan.host}:{plan.port}: {exc}") from exc
    port = reserved.getsockname()[1]
    simulator: list[_Child] = []
    events: list[_Child] = []
    api: list[_Child] = []
    try:
        gateway_url = plan.payment_gateway_url
        if gateway_url is None:
            simulator = [await _start(
                "payment-gateway", _ecomctl("serve", "payment-gateway", "--port", "0",
                                            *_flags_args(plan)),
                "listening on", on_output,
            )]
            if problem := await _wait_ready(simulator):
                raise ServerStartError(problem)
            gateway_url = simulator[0].url
        assert gateway_url is not None
        common = ["--payment-gateway-url", gateway_url, "--workers", "1", *_flags_args(plan)]
        if plan.events:
            on_exit = ["--drain-on-exit"] if plan.drain_on_exit else []
            if plan.payment_ledger is not None:  # after the drain, the simulator still up
                on_exit += ["--payment-ledger", str(plan.payment_ledger)]
            events = [await _start(
                "events", _ecomctl("serve", "--role", "events", *common, *on_exit,
                                   *_trace_args(plan, "events")),
                "events role running", on_output,
            )]
        for i in range(1, plan.api_workers + 1):
            name = f"api{i}"
            api.append(await _start(
                name, _ecomctl("serve", "--role", "api", "--host", plan.host, "--port",
                               str(port), "--db-pool-size", str(plan.api_pool_size), *common,
                               *_limit_args(plan), *_trace_args(plan, name)),
                "listening on", on_output,
            ))
        if problem := await _wait_ready([*events, *api]):
            raise ServerStartError(problem)
        url = api[0].url or f"http://{plan.host}:{port}"
        roles = f"{len(api)} api processes" + (", events" if events else "")
        on_notice(f"ecomctl gateway listening on {url} ({roles}, payment gateway "
                  f"{gateway_url}; Ctrl-C stops)")
        waiters = [asyncio.create_task(stop.wait())] + [
            asyncio.create_task(c.process.wait()) for c in [*simulator, *events, *api]
        ]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in waiters:
            task.cancel()
        failed = [c.name for c in [*simulator, *events, *api] if c.process.returncode is not None]
        if failed:
            on_notice(f"{', '.join(failed)} exited; stopping the rest")
        codes = [*await _stop(api), *await _stop(events), *await _stop(simulator)]
        on_notice("gateway stopped")
        if failed:
            raise WorkerFailed(f"{', '.join(failed)} exited while serving")
        if any(codes):
            raise WorkerFailed(f"a process did not stop cleanly (exit codes {codes})")
    finally:
        await _stop([*api, *events, *simulator])
        reserved.close()
