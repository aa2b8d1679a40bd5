"""The events role's housekeeping loop survives what it does not expect."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from ecomctl.bootstrap import _run_housekeeping


class _Orders:
    def __init__(self, stop: asyncio.Event) -> None:
        self.rounds = 0
        self._stop = stop

    async def any_expired(self) -> bool:
        self.rounds += 1
        if self.rounds == 1:
            raise RuntimeError("a driver error nobody translated")
        if self.rounds == 3:
            self._stop.set()
        return False


async def _nothing() -> Any:
    return False


async def test_an_unexpected_error_is_logged_and_the_next_round_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    orders = _Orders(stop)
    services: Any = SimpleNamespace(
        orders=orders, reconciler=SimpleNamespace(any_due=_nothing),
        idempotency=SimpleNamespace(purge=_nothing))
    with caplog.at_level(logging.ERROR, logger="ecomctl.housekeeping"):
        await asyncio.wait_for(_run_housekeeping(services, 0.01, stop), 5)
    assert orders.rounds == 3  # it went on after the error
    assert "housekeeping round failed" in caplog.text and "RuntimeError" in caplog.text
