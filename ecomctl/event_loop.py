"""Which asyncio event loop the shop's long-running processes use.

uvloop (libuv underneath) runs the same asyncio programs with less CPU per socket operation;
asyncpg, aiokafka, redis-py and uvicorn all support it. It is the default where it is
installed (Linux, macOS); ``ECOMCTL_EVENT_LOOP=asyncio`` chooses the standard loop, to
compare the two or to rule uvloop out while debugging. Results record the choice.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from ecomctl.errors import ConfigError

EVENT_LOOP_ENV = "ECOMCTL_EVENT_LOOP"
CHOICES = ("uvloop", "asyncio")

T = TypeVar("T")


def chosen_loop() -> str:
    """``uvloop`` or ``asyncio``: what ``run`` will use."""
    asked = os.environ.get(EVENT_LOOP_ENV, "").strip().lower()
    if asked and asked not in CHOICES:
        raise ConfigError(f"{EVENT_LOOP_ENV}={asked!r}: expected one of {', '.join(CHOICES)}")
    installed = importlib.util.find_spec("uvloop") is not None
    if asked == "uvloop" and not installed:
        raise ConfigError(f"{EVENT_LOOP_ENV}=uvloop, but uvloop is not installed")
    return "uvloop" if asked != "asyncio" and installed else "asyncio"


def http_parser() -> str:
    """What uvicorn parses HTTP/1.1 with: httptools when installed (its ``auto``), else h11."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    if chosen_loop() == "asyncio":
        return asyncio.run(main)
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
