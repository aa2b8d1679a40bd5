"""Third-party log noise stays out of the terminal unless --verbose."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from ecomctl.cli.logs import THIRD_PARTY, VERBOSE_ENV, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY}
    yield
    os.environ.pop(VERBOSE_ENV, None)  # configure_logging(verbose=True) set it
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_driver_chatter_is_hidden_and_ecomctls_warnings_are_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(verbose=False)
    logging.getLogger("aiokafka.consumer.group_coordinator").error(
        "Group Coordinator Request failed: [Error 15] CoordinatorNotAvailableError")
    logging.getLogger("ecomctl.adapters.kafka.relay").warning("outbox relay: retrying")
    err = capsys.readouterr().err
    assert "CoordinatorNotAvailableError" not in err
    assert "WARNING ecomctl.adapters.kafka.relay: outbox relay: retrying" in err


def test_verbose_shows_it_and_is_inherited_by_child_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(verbose=True)
    configure_logging(verbose=False)  # a child process reads the environment
    logging.getLogger("aiokafka.consumer.group_coordinator").error("coordinator not there")
    assert "coordinator not there" in capsys.readouterr().err
    assert os.environ[VERBOSE_ENV] == "1"
    assert sum(1 for h in logging.getLogger().handlers if getattr(h, "_ecomctl", False)) == 1
