"""What every local backend provides to the stack manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ecomctl.adapters.probes import ProbeResult
from ecomctl.stack.host_tools import ToolNeed
from ecomctl.stack.service_user import ServiceUser

Progress = Callable[[str], None]
"""Receives one line of progress text from a long install step."""


@dataclass(frozen=True)
class StackPaths:
    """The on-disk layout: state (data, logs, pid records) and cache (downloads, builds)."""

    state: Path
    cache: Path

    def data(self, backend: str) -> Path:
        return self.state / "data" / backend

    def log_file(self, backend: str) -> Path:
        return self.state / "logs" / f"{backend}.log"

    def record_file(self, backend: str) -> Path:
        return self.state / "run" / f"{backend}.json"

    def install_log(self, backend: str) -> Path:
        return self.cache / "logs" / f"install-{backend}.log"


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)


class Backend(ABC):
    """One server of the local stack."""

    name: ClassVar[str]
    parallel_install: ClassVar[bool] = False
    """True for long builds that may run beside the other installs (no shared apt/Maven)."""

    def __init__(self, paths: StackPaths, user: ServiceUser | None) -> None:
        self.paths = paths
        self.user = user

    @property
    def log_file(self) -> Path:
        return self.paths.log_file(self.name)

    @property
    def data_dir(self) -> Path:
        return self.paths.data(self.name)

    @property
    @abstractmethod
    def ports(self) -> tuple[int, ...]:
        """Every port the server listens on, the client port first."""

    @abstractmethod
    def installed_version(self) -> str | None:
        """The version ready to run from the cache or the system, None if not installed."""

    def tool_needs(self) -> tuple[ToolNeed, ...]:
        """The host tools (Go, a JDK, Maven) ``install`` and the server need, checked before
        any install starts."""
        return ()

    def tool_env(self) -> dict[str, str]:
        """The environment those tools run in during ``install`` (checked in the same one)."""
        return {}

    @abstractmethod
    def install(self, progress: Progress) -> None:
        """Download/build what is missing; a no-op when ``installed_version`` is set."""

    def prepare(self) -> None:
        """First-start initialisation (data dir, config files); must be idempotent."""
        self.make_owned_dir(self.data_dir)

    @abstractmethod
    def launch_spec(self) -> LaunchSpec:
        """How to run the server in the foreground."""

    @abstractmethod
    async def probe(self, *, deep: bool) -> ProbeResult:
        """Is it serving? ``deep`` also exercises a write path (used while starting up)."""

    def make_owned_dir(self, path: Path, mode: int = 0o755) -> Path:
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        path.chmod(mode)
        if self.user is not None:
            self.user.own(path)
        return path

    def base_env(self) -> dict[str, str]:
        """A minimal environment for servers, so the caller's variables do not leak in."""
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.data_dir),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }
