"""Fault flags through OpenFeature: flagd's provider in its in-process FILE mode reads the flag
file (``ecomctl.faults.flag_file``) and re-reads it when it changes, so every process of the
shop that watches one file sees an edit within a poll interval.

Each source registers its provider under its own OpenFeature domain (the file's path), so one
process may watch two files (a test, or ``serve`` beside a simulation) without one provider
replacing the other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.flag_evaluation import FlagEvaluationDetails

from ecomctl.errors import ConfigError
from ecomctl.faults.catalogue import FAULTS, FaultKind, FaultSpec, parse_fault
from ecomctl.faults.flag_file import OFF, FlagFile, value_text

POLL_INTERVAL_MS = 200
"""How often the provider looks at the file's modification time (a stat, nothing more)."""

log = logging.getLogger(__name__)


class FaultFlagSource:
    """The faults a flag file turns on, evaluated through an OpenFeature client."""

    def __init__(self, path: Path, poll_interval_ms: int = POLL_INTERVAL_MS) -> None:
        self.path = path
        self._domain = f"ecomctl-faults:{path}"
        FlagFile(path).ensure()  # the provider reports an error for a missing file
        self._provider = FlagdProvider(resolver_type=ResolverType.FILE,
                                       offline_flag_source_path=str(path),
                                       deadline_ms=poll_interval_ms)
        api.set_provider_and_wait(self._provider, self._domain)
        self._client = api.get_client(self._domain)

    def active(self) -> list[FaultSpec]:
        """The faults whose flag is on, with their values (a flag that does not evaluate,
        such as one of the wrong type, counts as off and is logged)."""
        faults = []
        for name, kind in FAULTS.items():
            details = self._evaluate(name, kind)
            if details.error_code is not None:
                if details.error_code.value != "FLAG_NOT_FOUND":
                    log.warning("fault flag %s: %s %s", name, details.error_code.value,
                                details.error_message or "")
                continue
            if details.variant in (None, OFF) or details.value is False:
                continue
            text = value_text(kind, details.value)
            try:
                faults.append(parse_fault(name if text is None else f"{name}={text}"))
            except ConfigError as exc:
                log.warning("fault flag %s ignored: %s", name, exc)
        return faults

    def _evaluate(self, name: str, kind: FaultKind) -> FlagEvaluationDetails[Any]:
        if kind.flag_type == "boolean":
            return self._client.get_boolean_details(name, False)
        if kind.flag_type == "string":
            return self._client.get_string_details(name, "")
        return self._client.get_float_details(name, 0.0)

    def close(self) -> None:
        self._provider.shutdown()
