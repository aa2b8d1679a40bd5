"""Capped exponential backoff with jitter, for every retry loop (relay, consumers, payment
retries, the cache's breaker, the simulated shoppers): without jitter, processes that failed
together (a broker restart fails every consumer at once) retry together, in step."""

from __future__ import annotations

import random


def next_backoff(previous: float, first: float, cap: float) -> float:
    """The delay after ``previous`` (0 before the first failure): ``first``, then doubling,
    at most ``cap``. Un-jittered: the sleep is ``jittered(delay)``."""
    return min(cap, previous * 2 or first)


def jittered(seconds: float, rng: random.Random | None = None) -> float:
    """``seconds`` spread at random over [seconds / 2, seconds] ("equal jitter": waits
    still grow with the backoff, and no two processes keep the same beat)."""
    return seconds * (0.5 + (rng or random).random() / 2)
