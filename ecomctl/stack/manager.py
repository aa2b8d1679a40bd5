"""The local stack as a whole: install, up (idempotent, waits for health), status, down."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ecomctl.config import cache_dir, state_dir
from ecomctl.errors import BackendStartError, ConfigError, StackError, ToolchainError
from ecomctl.stack import host_tools, process
from ecomctl.stack.backend import Backend, StackPaths
from ecomctl.stack.service_user import ServiceUser, service_user
from ecomctl.stack.toolchain import install_debian_packages


class StackProgress(Protocol):
    """Receives (backend name, message) while the stack works: each message starts a step
    of that backend's work, which lasts until its next message; ``done`` marks the message
    that ends the backend's part (installed, healthy, already running, stopped), so that a
    caller can show how long each step takes while it runs."""

    def __call__(self, backend: str, message: str, /, *, done: bool = False) -> None: ...


def _quiet(_backend: str, _message: str, /, *, done: bool = False) -> None:
    pass


@dataclass(frozen=True)
class InstallPlan:
    installed: dict[str, str]
    """Backends ready to run, with their versions."""
    to_install: list[str]
    tools: list[host_tools.ToolCheck]
    """The host tools those installs would use, each new enough."""


@dataclass(frozen=True)
class BackendStatus:
    name: str
    pid: int | None
    port: int
    running: bool
    healthy: bool
    version: str | None
    detail: str
    log_file: str
    rss_bytes: int


class LocalStack:
    """Every backend of the local stack, in start order."""

    def __init__(self, paths: StackPaths | None = None, user: ServiceUser | None = None) -> None:
        from ecomctl.stack.backends.elasticsearch import ElasticsearchBackend
        from ecomctl.stack.backends.jaeger import JaegerBackend
        from ecomctl.stack.backends.kafka import KafkaBackend
        from ecomctl.stack.backends.postgres import PostgresBackend
        from ecomctl.stack.backends.prometheus import PrometheusBackend
        from ecomctl.stack.backends.redis import RedisBackend, RedisCacheBackend
        from ecomctl.stack.backends.zipkin import ZipkinBackend

        self.paths = paths or StackPaths(state=state_dir(), cache=cache_dir())
        self.user = user if user is not None else service_user()
        kinds: Sequence[type[Backend]] = (
            PostgresBackend, RedisBackend, RedisCacheBackend, KafkaBackend,
            ElasticsearchBackend, JaegerBackend, ZipkinBackend, PrometheusBackend,
        )
        self.backends: dict[str, Backend] = {k.name: k(self.paths, self.user) for k in kinds}

    def select(self, names: Sequence[str] | None) -> list[Backend]:
        if not names:
            return list(self.backends.values())
        unknown = [n for n in names if n not in self.backends]
        if unknown:
            raise ConfigError(
                f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(self.backends)}"
            )
        return [b for b in self.backends.values() if b.name in names]

    def record(self, backend: Backend) -> process.ProcessRecord | None:
        return process.ProcessRecord.load(self.paths.record_file(backend.name))

    def running_process(self, backend: Backend) -> process.ProcessRecord | None:
        record = self.record(backend)
        return record if record is not None and record.process() is not None else None

    # -- install ---------------------------------------------------------------------------

    def install(
        self, names: Sequence[str] | None = None, progress: StackProgress = _quiet
    ) -> list[str]:
        """Install what is missing; returns the names of the backends installed now.

        Long builds (``parallel_install``) run beside the others; apt and Maven steps run one
        after another because they share the package lock and the local Maven repository.
        """
        todo = [b for b in self.select(names) if b.installed_version() is None]
        if not todo:
            return []
        self.check_tools(todo, install_missing=True)
        self._check_dirs_reachable()

        def install_all(group: list[Backend]) -> None:
            for backend in group:
                backend.install(functools.partial(progress, backend.name))
                progress(backend.name, f"installed {backend.installed_version()}", done=True)

        parallel = [b for b in todo if b.parallel_install]
        serial = [b for b in todo if not b.parallel_install]
        with ThreadPoolExecutor(max_workers=1 + len(parallel)) as pool:
            futures = [pool.submit(install_all, [b]) for b in parallel]
            futures.append(pool.submit(install_all, serial))
            for future in futures:
                future.result()
        return [b.name for b in todo]

    def install_plan(self, names: Sequence[str] | None = None) -> InstallPlan:
        """What ``install`` would do, and the host tools it would use; downloads nothing.
        Raises ToolchainError like ``install`` would."""
        selected = self.select(names)
        todo = [b for b in selected if b.installed_version() is None]
        return InstallPlan(
            installed={b.name: v for b in selected if (v := b.installed_version()) is not None},
            to_install=[b.name for b in todo],
            tools=self.check_tools(todo, install_missing=False),
        )

    def check_tools(
        self, backends: Sequence[Backend], *, install_missing: bool
    ) -> list[host_tools.ToolCheck]:
        """Check every host tool these backends need before any of them starts to install;
        one ToolchainError lists all that are missing or too old. A missing Maven (or a Go
        Debian has new enough) is apt-installed when allowed and running as root."""
        log_file = self.paths.cache / "logs" / "install-tools.log"

        def apt_install(package: str) -> None:
            install_debian_packages([package], log_file=log_file)

        can_apt = install_missing and os.geteuid() == 0
        checks: list[host_tools.ToolCheck] = []
        problems: list[str] = []
        for backend in backends:
            try:
                checks += host_tools.check_tools(
                    backend.tool_needs(), env=backend.tool_env(),
                    install_package=apt_install if can_apt else None,
                )
            except ToolchainError as exc:
                problems += exc.problems
        if problems:
            raise ToolchainError(list(dict.fromkeys(problems)))
        # Kafka and Elasticsearch both need Maven: one row for one need.
        return list({(c.need.tool, c.need.needed_by): c for c in checks}.values())

    def _check_dirs_reachable(self) -> None:
        for path in (self.paths.state, self.paths.cache):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
            if self.user is not None:
                self.user.check_can_enter(path)

    # -- up ----------------------------------------------------------------------------------

    async def up(
        self,
        names: Sequence[str] | None = None,
        *,
        timeout: float = 240.0,
        progress: StackProgress = _quiet,
    ) -> list[BackendStatus]:
        """Install if needed, start what is not running, wait until every backend serves."""
        selected = self.select(names)
        await asyncio.to_thread(self.install, [b.name for b in selected], progress)
        self._check_dirs_reachable()
        for backend in selected:
            if self.running_process(backend) is not None:
                progress(backend.name, "already running", done=True)
                continue
            self._start(backend, progress)
        await asyncio.gather(*(self._wait_healthy(b, timeout, progress) for b in selected))
        return await self.status([b.name for b in selected])

    def _start(self, backend: Backend, progress: StackProgress) -> None:
        for port in backend.ports:
            holder = process.listener_pid(port)
            if holder is not None:
                raise BackendStartError(
                    backend.name,
                    f"port {port} is already taken by another process (pid {holder})",
                    backend.log_file,
                )
        progress(backend.name, "preparing")
        backend.prepare()
        spec = backend.launch_spec()
        record = process.launch(
            spec.argv, log_file=backend.log_file, cwd=spec.cwd, env=spec.env, user=self.user
        )
        record.save(self.paths.record_file(backend.name))
        progress(backend.name, f"started (pid {record.pid}), waiting until it serves")

    async def _wait_healthy(
        self, backend: Backend, timeout: float, progress: StackProgress
    ) -> None:
        deadline = time.monotonic() + timeout
        last_detail = "not probed yet"
        while time.monotonic() < deadline:
            if self.running_process(backend) is None:
                raise BackendStartError(
                    backend.name, f"process exited; last lines:\n{self.log_tail(backend, 15)}",
                    backend.log_file,
                )
            result = await backend.probe(deep=True)
            if result.ok:
                progress(backend.name, f"healthy: {result.detail}", done=True)
                return
            last_detail = result.detail
            await asyncio.sleep(0.5)
        raise BackendStartError(
            backend.name, f"not healthy after {timeout:.0f}s ({last_detail})", backend.log_file
        )

    # -- status / down / logs ----------------------------------------------------------------

    async def status(self, names: Sequence[str] | None = None) -> list[BackendStatus]:
        selected = self.select(names)
        return list(await asyncio.gather(*(self._status_of(b) for b in selected)))

    async def _status_of(self, backend: Backend) -> BackendStatus:
        record = self.running_process(backend)
        if record is None:
            return BackendStatus(
                name=backend.name, pid=None, port=backend.ports[0], running=False, healthy=False,
                version=backend.installed_version(), detail="not running",
                log_file=str(backend.log_file), rss_bytes=0,
            )
        probe = await backend.probe(deep=False)
        return BackendStatus(
            name=backend.name, pid=record.pid, port=backend.ports[0], running=True,
            healthy=probe.ok, version=probe.version or backend.installed_version(),
            detail=probe.detail, log_file=str(backend.log_file),
            rss_bytes=process.rss_bytes(record),
        )

    def down(
        self, names: Sequence[str] | None = None, progress: StackProgress = _quiet
    ) -> list[str]:
        """Stop the processes ``up`` started (in reverse order); returns those stopped."""
        stopped = []
        for backend in reversed(self.select(names)):
            record = self.record(backend)
            if record is None:
                continue
            if process.stop(record):
                stopped.append(backend.name)
                progress(backend.name, "stopped", done=True)
            self.paths.record_file(backend.name).unlink(missing_ok=True)
        return stopped

    def log_tail(self, backend: Backend, lines: int) -> str:
        try:
            with open(backend.log_file, "rb") as log:
                log.seek(0, 2)
                size = log.tell()
                log.seek(max(0, size - 256 * 1024))
                text = log.read().decode(errors="replace")
        except OSError as exc:
            raise StackError(f"no log for {backend.name} at {backend.log_file}") from exc
        return "\n".join(text.splitlines()[-lines:])
