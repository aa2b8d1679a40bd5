"""End-to-end: the ``ecomctl`` command run as a user runs it, against the live local stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_runner import CliResult, run_ecomctl
from tests.e2e.served import Served


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def ecomctl() -> Callable[..., CliResult]:
    """``ecomctl(*args, env=..., timeout=...)``: the CLI run to its end, with the hang
    deadline of tests/cli_runner.py."""
    return run_ecomctl


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
