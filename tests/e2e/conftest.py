"""End-to-end: the ``ecomctl`` command run as a user runs it, against the live local stack."""

from __future__ import annotations

import json
import os
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
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> CliResult:
        completed = subprocess.run(
            [*_ecomctl_command(), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
            timeout=timeout,
            check=False,
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


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
