from __future__ import annotations

from typing import Any

import pytest

from ecomctl.config import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Where the tests' clients connect: the same variables (and defaults) as ecomctl."""
    return Settings.from_env()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Say which tests the default run left out and how to run them: deselected by the
    ``long`` marker (pyproject's addopts), never skipped in silence."""
    deselected = terminalreporter.stats.get("deselected", [])
    long_ones = [item for item in deselected if item.get_closest_marker("long") is not None]
    if long_ones and "not long" in (config.getoption("markexpr") or ""):
        terminalreporter.write_line(
            f"{len(long_ones)} long tests (chaos, soak, bench, floods, several processes) "
            "were left out: run them with `pytest -m long`")
