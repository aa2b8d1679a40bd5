"""The simulator's settings: latency shape, fault rates and seed, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

from ecomctl.errors import ConfigError

MAX_LATENCY_MS = 600_000.0  # ten minutes: anything longer is a typo, not a simulation
MAX_TIMEOUT_DELAY_S = 3_600.0


class LatencyDistribution(StrEnum):
    """How response latency is drawn from ``latency_mean_ms`` and ``latency_jitter_ms``.

    ``lognormal`` (default): mean and standard deviation as given, right-skewed with a long
    tail and never negative, which is the shape real network services show. ``normal``: the
    symmetric textbook curve, clamped at 0 (so with a large jitter the mean shifts upwards).
    A jitter of 0 gives a constant latency with either.
    """

    LOGNORMAL = "lognormal"
    NORMAL = "normal"


# The outcomes the rates choose between: defined with the settings because
# SimulatorConfig.outcome_probabilities names them (sampling imports them from here).
class Outcome(StrEnum):
    CAPTURED = "captured"
    DECLINED = "declined"
    GATEWAY_ERROR = "gateway_error"
    TIMEOUT = "timeout"


_RATE_FIELDS = ("decline_rate", "error_rate", "timeout_rate", "timeout_capture_rate",
                "replay_timeout_rate")


@dataclass(frozen=True)
class SimulatorConfig:
    """Latency and fault settings. Construction validates and raises ConfigError."""

    latency_mean_ms: float = 50.0
    latency_jitter_ms: float = 20.0
    latency_distribution: LatencyDistribution = LatencyDistribution.LOGNORMAL
    decline_rate: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    # Of the timed-out charges, the fraction captured before the answer was lost.
    timeout_capture_rate: float = 0.0
    # Of the retries (same idempotency key) of a timed-out charge, the fraction whose answer
    # is lost as well: with 1, the client never learns the outcome and must look it up.
    replay_timeout_rate: float = 0.0
    # How long a "timeout" hangs before answering: longer than any client timeout.
    timeout_delay_s: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in (*_RATE_FIELDS, "latency_mean_ms", "latency_jitter_ms", "timeout_delay_s"):
            _check_number(name, getattr(self, name))
        for name in _RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        for name in ("latency_mean_ms", "latency_jitter_ms"):
            if not 0.0 <= getattr(self, name) <= MAX_LATENCY_MS:
                raise ConfigError(
                    f"{name} must be between 0 and {MAX_LATENCY_MS:g}, got {getattr(self, name)}"
                )
        if not 0.0 <= self.timeout_delay_s <= MAX_TIMEOUT_DELAY_S:
            raise ConfigError(
                f"timeout_delay_s must be between 0 and {MAX_TIMEOUT_DELAY_S:g}, "
                f"got {self.timeout_delay_s}"
            )
        # Accept the plain string too ("normal"), as a StrEnum field invites.
        object.__setattr__(
            self, "latency_distribution", _coerce("latency_distribution", self.latency_distribution)
        )
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigError(f"seed must be an integer or null, got {self.seed!r}")

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, object], *, base: SimulatorConfig | None = None
    ) -> SimulatorConfig:
        """A config from loosely typed input (JSON, CLI flags): the fields in ``spec`` replace
        those of ``base`` (default: the defaults). Unknown fields and wrong types are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = asdict(base or cls())
        for name, value in spec.items():
            values[name] = _coerce(name, value)
        return cls(**values)

    def with_changes(self, **changes: object) -> SimulatorConfig:
        """A validated copy with some settings changed."""
        return SimulatorConfig.from_spec(changes, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        values = asdict(self)
        values["latency_distribution"] = self.latency_distribution.value
        return values

    def outcome_probabilities(self) -> dict[Outcome, float]:
        """The share of fresh charge requests that end in each outcome."""
        t, e, d = self.timeout_rate, self.error_rate, self.decline_rate
        return {
            Outcome.TIMEOUT: t,
            Outcome.GATEWAY_ERROR: (1 - t) * e,
            Outcome.DECLINED: (1 - t) * (1 - e) * d,
            Outcome.CAPTURED: (1 - t) * (1 - e) * (1 - d),
        }


def _distribution_names() -> str:
    return ", ".join(d.value for d in LatencyDistribution)


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")


def _coerce(name: str, value: object) -> object:
    """Turn a JSON/CLI value into the field's type, or say what is wrong with it."""
    if name == "latency_distribution":
        try:
            return LatencyDistribution(str(value).lower())
        except ValueError:
            raise ConfigError(
                f"latency_distribution must be one of {_distribution_names()}, got {value!r}"
            ) from None
    if name == "seed":
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ConfigError(f"seed must be an integer or null, got {value!r}")
    _check_number(name, value)
    assert isinstance(value, (int, float))
    return float(value)
