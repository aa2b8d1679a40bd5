"""The event loop choice: uvloop where installed, ECOMCTL_EVENT_LOOP to override."""

from __future__ import annotations

import asyncio

import pytest

from ecomctl import event_loop
from ecomctl.errors import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default_and_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.EVENT_LOOP_ENV, raising=False)
    assert event_loop.chosen_loop() == "uvloop"  # installed from the lock on Linux
    assert event_loop.run(_loop_module()).startswith("uvloop")
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "asyncio")
    assert event_loop.chosen_loop() == "asyncio"
    assert event_loop.run(_loop_module()).startswith("asyncio")
    assert event_loop.http_parser() == "httptools"


def test_an_unknown_loop_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.EVENT_LOOP_ENV, "trio")
    with pytest.raises(ConfigError, match="ECOMCTL_EVENT_LOOP='trio'"):
        event_loop.chosen_loop()
