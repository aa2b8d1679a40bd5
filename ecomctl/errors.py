"""The ecomctl error hierarchy, translated at one boundary per entrypoint.

    EcomctlError
    ├── ConfigError              bad settings, flags or files       -> CLI exit 2, HTTP 400/422
    ├── DomainError              a business rule said no            -> HTTP 4xx
    └── InfraError               a backend or the host failed       -> CLI exit 1, HTTP 503
        ├── BackendUnavailable   a client could not reach a backend
        ├── MigrationError       the schema could not be brought up to date
        └── StackError           the local stack could not be installed or run
            ├── InstallError     a download, package or build step failed
            └── BackendStartError  a server did not become healthy in time

Adapters raise these ``from`` the driver's exception, so the cause stays in the traceback.
"""

from __future__ import annotations

from pathlib import Path


class EcomctlError(Exception):
    """Base of every error ecomctl raises on purpose."""


class ConfigError(EcomctlError):
    """A setting, flag or input file is invalid; the message says which and why."""


class DomainError(EcomctlError):
    """A business rule rejected the operation (out of stock, illegal transition...)."""


class InfraError(EcomctlError):
    """Something outside ecomctl's own logic failed: a backend, the network, the host."""


class BackendUnavailable(InfraError):
    """A backend could not be reached or did not answer."""

    def __init__(self, backend: str, detail: str) -> None:
        super().__init__(f"{backend}: {detail}")
        self.backend = backend
        self.detail = detail


class MigrationError(InfraError):
    """A migration failed or an applied migration was changed after the fact."""


class StackError(InfraError):
    """The local backend stack could not be installed, started or stopped."""


class InstallError(StackError):
    """Installing a backend (apt package, Maven artifact, Go build) failed."""


class BackendStartError(StackError):
    """A backend process exited or did not become healthy before the timeout."""

    def __init__(self, backend: str, detail: str, log_file: Path) -> None:
        super().__init__(f"{backend} did not become healthy: {detail} (log: {log_file})")
        self.backend = backend
        self.log_file = log_file
