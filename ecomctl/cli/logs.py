"""Where log records go when ecomctl runs as a command: ecomctl's own warnings to stderr,
third-party clients' chatter (aiokafka's "GroupCoordinatorNotAvailableError" while a group
forms, connection retries...) only with ``--verbose``. ecomctl reports backend trouble
itself, in its results and errors; the drivers' view of it is for debugging."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

VERBOSE_ENV = "ECOMCTL_VERBOSE"  # children (serve, shards) inherit the choice
THIRD_PARTY = ("aiokafka", "kafka", "elastic_transport", "elasticsearch", "urllib3",
               "httpx", "httpcore", "asyncio", "uvicorn.error")
_FORMAT = "%(levelname)s %(name)s: %(message)s"


class _CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is when a record comes: the handler is installed once
    per process, and a command run in-process (a test's CliRunner) swaps stderr and closes
    its stand-in afterwards."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(verbose: bool = False) -> None:
    """One stderr handler on the root logger (once); third-party loggers quiet unless
    ``verbose`` or ``ECOMCTL_VERBOSE=1``."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    verbose = verbose or os.environ.get(VERBOSE_ENV, "") == "1"
    root = logging.getLogger()
    if not any(getattr(h, "_ecomctl", False) for h in root.handlers):
        handler = _CurrentStderr(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._ecomctl = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
