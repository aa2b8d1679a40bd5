"""Random draws: the outcome of a fresh charge request, and the latency of each answer."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ecomctl.simulators.payment_gateway.config import (
    LatencyDistribution,
    Outcome,
    SimulatorConfig,
)

ERROR_STATUSES = (500, 502, 503)
DECLINE_CODES = ("insufficient_funds", "do_not_honor", "expired_card")


@dataclass(frozen=True)
class Decision:
    """What the gateway does with one fresh charge request."""

    outcome: Outcome
    captured: bool  # True for CAPTURED, and for a TIMEOUT that captured before hanging
    error_status: int | None = None  # the 5xx of a GATEWAY_ERROR
    decline_code: str | None = None  # why a DECLINED card was refused


class OutcomeSampler:
    """Draws decisions. Each draw consumes the same number of random numbers whatever the
    rates are, so a seed gives the same sequence of uniforms even when faults are switched
    on and off mid-run: only the thresholds move."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def draw(self, config: SimulatorConfig) -> Decision:
        r = self._rng
        u_timeout, u_capture, u_error, u_decline, u_pick = (r.random() for _ in range(5))
        if u_timeout < config.timeout_rate:
            return Decision(Outcome.TIMEOUT, captured=u_capture < config.timeout_capture_rate)
        if u_error < config.error_rate:
            status = ERROR_STATUSES[int(u_pick * len(ERROR_STATUSES))]
            return Decision(Outcome.GATEWAY_ERROR, captured=False, error_status=status)
        if u_decline < config.decline_rate:
            code = DECLINE_CODES[int(u_pick * len(DECLINE_CODES))]
            return Decision(Outcome.DECLINED, captured=False, decline_code=code)
        return Decision(Outcome.CAPTURED, captured=True)


class LatencySampler:
    """Draws response latencies (seconds) from the configured distribution."""

    def __init__(self, seed: int | None = None) -> None:
        # Its own stream, so changing latency settings never shifts the outcome sequence.
        self._rng = random.Random(None if seed is None else f"latency:{seed}")

    def draw_s(self, config: SimulatorConfig) -> float:
        mean, jitter = config.latency_mean_ms, config.latency_jitter_ms
        if mean == 0.0 or jitter == 0.0:
            return mean / 1000.0
        if config.latency_distribution is LatencyDistribution.NORMAL:
            return max(0.0, self._rng.gauss(mean, jitter)) / 1000.0
        # Lognormal with the requested mean and standard deviation (method of moments).
        sigma2 = math.log1p((jitter / mean) ** 2)
        mu = math.log(mean) - sigma2 / 2
        return self._rng.lognormvariate(mu, math.sqrt(sigma2)) / 1000.0
