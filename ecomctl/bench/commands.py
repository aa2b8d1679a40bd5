"""The bench's external commands (pgbench, ecomctl, Locust): one way to run them and one
error for a measurement that could not be taken."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from ecomctl.errors import InfraError

_HINTS = {"pgbench": " (pgbench comes with Debian's postgresql package, which `ecomctl stack "
                     "install` installs)"}


class BenchFailed(InfraError):
    """A measurement could not be taken (a server did not start, Locust saw failures...)."""


def run_command(
    argv: list[str],
    env: Mapping[str, str] | None,
    *,
    name: str,
    timeout_s: float = 600.0,
    log: Path | None = None,
) -> str:
    """Run ``argv`` to completion and return its standard output; a missing program, a
    timeout or a non-zero exit is a ``BenchFailed`` naming ``name``. ``log`` keeps both
    outputs."""
    try:
        result = subprocess.run(argv, env=None if env is None else dict(env),
                                capture_output=True, text=True, timeout=timeout_s,
                                stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError as exc:
        raise BenchFailed(f"{argv[0]} not found{_HINTS.get(argv[0], '')}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchFailed(f"{name} did not finish in {exc.timeout:.0f}s") from exc
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise BenchFailed(f"{name} exited with {result.returncode}: "
                          f"{(result.stderr or result.stdout).strip()[-800:]}")
    return result.stdout
