"""End-to-end: the ``ecomctl`` command run as a user runs it, against the live local stack."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.served import Served


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def _ecomctl_command() -> list[str]:
    script = Path(sys.executable).with_name("ecomctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ecomctl.cli.main"]


@pytest.fixture(scope="session")
def ecomctl() -> Any:
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> CliResult:
        # Its own process group, so that a run which hangs is stopped with every process it
        # started (a child left holding the pipes would hang the test instead), and a
        # traceback of each thread first (faulthandler on SIGABRT) to say where it hung.
        child = subprocess.Popen(
            [*_ecomctl_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200", "PYTHONFAULTHANDLER": "1", **(env or {})},
            start_new_session=True,
        )
        try:
            stdout, stderr = child.communicate(timeout=min(timeout, HUNG_AFTER_S))
        except subprocess.TimeoutExpired:
            stdout, stderr = _stop_hung(child)
            pytest.fail(f"ecomctl {' '.join(args)} still running after "
                        f"{min(timeout, HUNG_AFTER_S):.0f} s\n--- stdout\n{stdout[-4000:]}"
                        f"\n--- stderr\n{stderr[-12000:]}")
        return CliResult(child.returncode, stdout, stderr)

    return run


HUNG_AFTER_S = 280
"""Below pytest's own timeout (300 s), so the output of a command that hangs is kept."""


def _stop_hung(child: subprocess.Popen[str]) -> tuple[str, str]:
    for signal_ in (signal.SIGABRT, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal_)
        try:
            return child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    return "", ""


SEED_ARGS = ("seed", "--users", "60", "--categories", "6", "--products", "300", "--orders",
             "300", "--seed", "42", "--reset")


@pytest.fixture(scope="session")
def seeded(ecomctl: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small shop seeded from scratch (the end-to-end tests run after the integration
    tests' stack has stopped); returns the shoppers' credentials file."""
    credentials = tmp_path_factory.mktemp("seed") / "shoppers.json"
    result = ecomctl(*SEED_ARGS, "--credentials", str(credentials))
    assert result.exit_code == 0, result.stdout + result.stderr
    return credentials


@pytest.fixture
def serving() -> Iterator[list[Served]]:
    """Every ``ecomctl serve`` process a test starts; whatever still runs at the end is
    killed."""
    started: list[Served] = []
    yield started
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(10)
