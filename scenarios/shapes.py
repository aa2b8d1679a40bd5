"""Load shapes for the shop's locustfiles, and the constant-arrival-rate schedule.

Shapes (Locust ``LoadTestShape``): ``RampShape``, ``StepShape``, ``SpikeShape``,
``SoakShape``. Each reads ``--users``, ``--spawn-rate`` and ``--run-time`` (Locust's
``use_common_options``), so one command line works with or without a shape. A locustfile
uses one by binding it at module level; the shop's locustfiles do that for the name in
``ECOMCTL_LOAD_SHAPE`` (``shape_from_env``), e.g.
``ECOMCTL_LOAD_SHAPE=spike locust -f scenarios/mixed_shop.py -u 50 -t 2m --host URL``.

Constant arrival rate (``ECOMCTL_LOAD_PACING_S=0.5``): each user starts a journey every
0.5 s on a fixed schedule instead of thinking between journeys. A closed loop that waits for
the shop before sending more hides the shop's queueing (coordinated omission); here the time
a journey starts late because the previous one was slow is added to its latency, measured from
the *intended* start (as wrk2 does per connection). See ``ArrivalSchedule``.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

from locust import LoadTestShape, events

from ecomctl.load.profiles import PACING_ENV, SHAPE_ENV

DEFAULT_RUN_TIME_S = 60


class _ProfileShape(LoadTestShape):
    """Reads users, spawn rate and run time from Locust's command line."""

    abstract: ClassVar[bool] = True
    use_common_options: ClassVar[bool] = True
    default_run_time_s: ClassVar[int] = DEFAULT_RUN_TIME_S

    def _options(self) -> tuple[int, float, float]:
        options: Any = self.runner.environment.parsed_options if self.runner else None
        users = int(getattr(options, "num_users", None) or 10)
        spawn_rate = float(getattr(options, "spawn_rate", None) or users)
        run_time = float(getattr(options, "run_time", None) or self.default_run_time_s)
        return users, spawn_rate, run_time

    def tick(self) -> tuple[int, float] | None:
        users, spawn_rate, run_time = self._options()
        elapsed = time.perf_counter() - self.start_time
        if elapsed >= run_time:
            return None
        return self.users_at(elapsed / run_time, users, spawn_rate)

    def users_at(self, progress: float, users: int, spawn_rate: float) -> tuple[int, float]:
        """(user count, spawn rate) at ``progress`` (0..1) of the run."""
        raise NotImplementedError


class RampShape(_ProfileShape):
    """From one user up to ``--users``, linearly over the first 80% of the run, then held:
    where does latency start to bend?"""

    def users_at(self, progress: float, users: int, spawn_rate: float) -> tuple[int, float]:
        return max(1, round(users * min(1.0, progress / 0.8))), max(spawn_rate, users)


class StepShape(_ProfileShape):
    """``--users`` reached in four equal steps, each held for a quarter of the run."""

    steps: ClassVar[int] = 4

    def users_at(self, progress: float, users: int, spawn_rate: float) -> tuple[int, float]:
        step = min(self.steps, int(progress * self.steps) + 1)
        return max(1, round(users * step / self.steps)), spawn_rate


class SpikeShape(_ProfileShape):
    """A fifth of ``--users`` as the baseline, all of them at once from 40% to 60% of the run
    (spawned as fast as possible), then the baseline again: does the shop recover?"""

    def users_at(self, progress: float, users: int, spawn_rate: float) -> tuple[int, float]:
        baseline = max(1, users // 5)
        if 0.4 <= progress < 0.6:
            return users, float(max(users, spawn_rate))
        return baseline, float(max(users, spawn_rate))


class SoakShape(_ProfileShape):
    """``--users`` held for a long time (default ten minutes): leaks, growing caches, lag."""

    default_run_time_s: ClassVar[int] = 600

    def users_at(self, progress: float, users: int, spawn_rate: float) -> tuple[int, float]:
        return users, spawn_rate


SHAPES: dict[str, type[_ProfileShape]] = {
    "ramp": RampShape,
    "step": StepShape,
    "spike": SpikeShape,
    "soak": SoakShape,
}


def shape_from_env() -> type[LoadTestShape] | None:
    """The shape named in ``ECOMCTL_LOAD_SHAPE`` (None when unset)."""
    name = os.environ.get(SHAPE_ENV, "").strip().lower()
    if not name:
        return None
    if name not in SHAPES:
        raise ValueError(f"{SHAPE_ENV}={name!r}: expected one of {', '.join(SHAPES)}")
    return SHAPES[name]


class ArrivalSchedule:
    """One user's fixed-interval schedule: journey k is due at ``first + k * interval``.

    ``start(now)`` is called when a journey begins and returns its intended start; the caller
    measures latency from there, so a journey that begins late because the previous one ran
    over its slot is charged for the wait (coordinated omission corrected). ``delay(now)`` is
    the user's wait time: until the next slot, or nothing when already behind. A user that
    falls behind does not skip slots: the backlog is the shop's queueing, and it shows.
    """

    __slots__ = ("_next", "interval_s")

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError("the pacing interval must be positive")
        self.interval_s = interval_s
        self._next: float | None = None

    def start(self, now: float) -> float:
        if self._next is None:
            self._next = now
        intended = min(self._next, now)  # a wake-up a hair early is not "late"
        self._next += self.interval_s
        return intended

    def delay(self, now: float) -> float:
        return 0.0 if self._next is None else max(0.0, self._next - now)


PACING_OPTION = "ecomctl_pacing_s"


def _pacing_option(parser: Any, **_: Any) -> None:
    # A Locust option, not only a variable: the master hands custom options to its workers,
    # so workers on other hosts (`ecomctl load worker`) pace like the master says.
    parser.add_argument("--ecomctl-pacing-s", env_var=PACING_ENV, default="",
                        include_in_web_ui=False,
                        help="Constant arrival rate: seconds between one user's journeys.")


def pacing_of(environment: Any) -> float | None:
    """Seconds between one user's journeys (``--ecomctl-pacing-s`` or
    ``ECOMCTL_LOAD_PACING_S``), or None."""
    options = getattr(environment, "parsed_options", None)
    raw = str(getattr(options, PACING_OPTION, "") or os.environ.get(PACING_ENV, "")).strip()
    if not raw:
        return None
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{PACING_ENV} must be a positive number of seconds")
    return value


# Registered by calls through Any, not as decorators: Locust's EventHook.add_listener is
# untyped, and as a decorator it would leave each listener untyped for mypy.
_events: Any = events
_events.init_command_line_parser.add_listener(_pacing_option)
