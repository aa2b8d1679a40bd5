"""Start, recognise and stop the server processes that ``stack up`` launched.

Each launch is recorded as a small JSON file (pid, process start time, command line). A pid
counts as ours only while a process with that pid *and* that start time exists, so a stale
record or a recycled pid never makes ``down`` kill a stranger.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from ecomctl.stack.service_user import ServiceUser


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    create_time: float
    argv: tuple[str, ...]
    log_file: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            raw = json.loads(path.read_text())
            return cls(
                pid=int(raw["pid"]),
                create_time=float(raw["create_time"]),
                argv=tuple(raw["argv"]),
                log_file=str(raw["log_file"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def process(self) -> psutil.Process | None:
        """The live process this record describes, or None if it is gone (or pid reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.5:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None


def launch(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path,
    env: Mapping[str, str],
    user: ServiceUser | None,
) -> ProcessRecord:
    """Start ``argv`` detached (own session), stdout+stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n=== ecomctl launch {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user.uid if user else None,
            group=user.gid if user else None,
            extra_groups=[] if user else None,
        )
    return ProcessRecord(
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        argv=tuple(argv),
        log_file=str(log_file),
    )


def stop(record: ProcessRecord, *, timeout: float = 30.0) -> bool:
    """SIGTERM the recorded process (and its session), SIGKILL after ``timeout``.

    Returns True if a live process was stopped, False if it was already gone.
    """
    proc = record.process()
    if proc is None:
        return False
    family = [proc, *_children(proc)]
    _signal(family, signal.SIGTERM)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    if alive:
        _signal(alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=5)
    _reap(record.pid)
    return True


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return list(proc.children(recursive=True))
    except psutil.Error:
        return []


def _signal(procs: Sequence[psutil.Process], sig: signal.Signals) -> None:
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (same ecomctl process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def rss_bytes(record: ProcessRecord) -> int:
    """Resident memory of the process and its children (0 if gone)."""
    proc = record.process()
    if proc is None:
        return 0
    total = 0
    for p in [proc, *_children(proc)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def listener_pid(port: int) -> int | None:
    """The pid listening on 127.0.0.1/any ``port`` (None if free or unknown)."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid or -1
    return None
