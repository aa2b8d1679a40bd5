"""The fault flag file, in flagd's JSON format (https://flagd.dev/reference/flag-definitions/).

One flag per fault of the catalogue, two variants, ``on`` (the fault's value) and ``off``::

    {"$schema": "https://flagd.dev/schema/v0/flags.json",
     "flags": {
       "payment-slow": {"state": "ENABLED", "variants": {"on": 800, "off": 0},
                        "defaultVariant": "on"},
       "cache-down":   {"state": "ENABLED", "variants": {"on": true, "off": false},
                        "defaultVariant": "off"}}}

A fault is active when its flag is ENABLED and resolves to a variant other than ``off``, so
a hand-written file may add variants (``"50%": 0.5``) as the OpenTelemetry Demo's do. Every
process of the shop reads the file through OpenFeature's flagd provider
(``ecomctl.faults.flag_source``); this module only writes it: atomically (readers never see
half a file) and under a lock (``faults set`` and a schedule may write at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecomctl.config import state_dir
from ecomctl.errors import ConfigError
from ecomctl.faults.catalogue import FAULTS, FaultKind, FaultSpec

FLAGS_FILE_ENV = "ECOMCTL_FLAGS_FILE"
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
ON, OFF = "on", "off"


def default_flags_file(env: Mapping[str, str] | None = None) -> Path:
    """``$ECOMCTL_FLAGS_FILE``, else ``flags.json`` in the state directory."""
    source = os.environ if env is None else env
    if source.get(FLAGS_FILE_ENV):
        return Path(source[FLAGS_FILE_ENV]).expanduser().absolute()
    return state_dir(source) / "flags.json"


def variant_value(kind: FaultKind, value: str | None) -> Any:
    """A fault's value as the flag's typed ``on`` variant."""
    if kind.flag_type == "boolean":
        return True
    if kind.flag_type == "string":
        return value or ""
    number = float(value or 0)
    return int(number) if number.is_integer() else number


def _off_value(kind: FaultKind) -> Any:
    return {"boolean": False, "string": ""}.get(kind.flag_type, 0)


def _flag(kind: FaultKind, spec: FaultSpec | None) -> dict[str, Any]:
    on = variant_value(kind, spec.value if spec else kind.default)
    return {"state": "ENABLED", "variants": {ON: on, OFF: _off_value(kind)},
            "defaultVariant": ON if spec else OFF}


@dataclass(frozen=True)
class FlagState:
    name: str
    active: bool
    value: str | None
    """The value the ``on`` variant (or the default variant) carries, as fault text."""


def value_text(kind: FaultKind, value: Any) -> str | None:
    """A flag's typed value as the fault's ``=VALUE`` text (None for a no-value fault)."""
    if kind.flag_type == "boolean":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class FlagFile:
    """Read and edit the flag file; the catalogue decides which names and values are valid."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def ensure(self) -> None:
        """Create the file with every fault off, if it does not exist yet."""
        if not self.path.exists():
            with self._locked():
                if not self.path.exists():
                    self._write({})

    def flags(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.path}: not a flagd JSON flag file ({exc})") from exc
        flags = document.get("flags") if isinstance(document, dict) else None
        if not isinstance(flags, dict):
            raise ConfigError(f"{self.path}: no \"flags\" object (flagd's format)")
        return flags

    def states(self) -> list[FlagState]:
        """Every fault of the catalogue, as the file has it (off when absent)."""
        flags = self.flags()
        return [self._state(name, kind, flags.get(name)) for name, kind in FAULTS.items()]

    @staticmethod
    def _state(name: str, kind: FaultKind, flag: Any) -> FlagState:
        if not isinstance(flag, dict):
            return FlagState(name, False, None)
        variant = flag.get("defaultVariant")
        value = (flag.get("variants") or {}).get(variant)
        active = flag.get("state", "ENABLED") == "ENABLED" and variant not in (None, OFF)
        return FlagState(name, active, value_text(kind, value) if active else None)

    def set(self, faults: Iterable[FaultSpec]) -> None:
        """Turn these faults on with their values (others unchanged)."""
        self._edit({f.name: f for f in faults}, [])

    def clear(self, names: Iterable[str] | None = None) -> None:
        """Turn these faults off (every fault when ``names`` is None)."""
        self._edit({}, list(FAULTS) if names is None else list(names))

    def _edit(self, on: dict[str, FaultSpec], off: list[str]) -> None:
        for name in off:
            if name not in FAULTS:
                raise ConfigError(f"{name!r}: unknown fault; choose from {', '.join(FAULTS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            flags = self.flags()
            for name, spec in on.items():
                flags[name] = _flag(FAULTS[name], spec)
            for name in off:
                flags[name] = _flag(FAULTS[name], None)
            self._write(flags)

    def _write(self, flags: dict[str, Any]) -> None:
        complete = {name: flags.get(name) or _flag(kind, None) for name, kind in FAULTS.items()}
        complete.update({k: v for k, v in flags.items() if k not in FAULTS})
        document = {"$schema": FLAGD_SCHEMA, "flags": complete}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.replace(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
