"""The shop's OpenTelemetry instruments, created once per meter and shared by services.

Only what spans cannot tell is measured in-process (the collector derives request rates,
errors and durations from the spans themselves): cache lookups per tier, orders, payments
and checkouts by outcome, event ages, Kafka consumer lag, and waits for scarce resources.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation

# Seconds, from a fraction of a millisecond (a free pool connection) to the 2 s a request
# may wait for one, and on to the tens of seconds an event may be behind.
_SECONDS = [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0]

ConsumerLag = Callable[[], "int | None"]
"""A consumer's lag right now in messages (None: not known yet)."""


class ShopMetrics:
    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("ecomctl")
        # Counted in a dict, read at each collection: a synchronous counter's ``add`` cost
        # every cached request ~3% of the gateway's CPU (py-spy), a dict increment next to
        # nothing. Only the event loop's thread writes; the collection copies in one step.
        self._cache_counts: dict[tuple[str, str, bool], int] = {}
        meter.create_observable_counter(
            "ecom.cache.lookups", callbacks=[self._observe_cache_lookups], unit="{lookup}",
            description="Cache lookups by service, level (l1, l2, l3) and result (hit, miss)",
        )
        self.orders = meter.create_counter(
            "ecom.orders", unit="{order}", description="Orders by outcome"
        )
        self.payments = meter.create_counter(
            "ecom.payments", unit="{payment}", description="Payment attempts by status"
        )
        self.checkouts = meter.create_counter(
            "ecom.checkouts", unit="{checkout}",
            description="Checkouts answered, by outcome (paid, payment_declined, "
            "payment_unknown)",
        )
        self.outbox_lag = meter.create_histogram(
            "ecom.outbox.lag", unit="s",
            description="Time from outbox insert to publication on Kafka",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.consumer_lag = meter.create_histogram(
            "ecom.consumer.lag", unit="s",
            description="Time from publication to processing by a consumer, per consumer",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self.wait = meter.create_histogram(
            "ecom.wait", unit="s",
            description="Time spent waiting for a scarce resource (a password-hash slot, a "
            "database connection), by resource",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self._lags: dict[str, ConsumerLag] = {}
        self._lags_lock = threading.Lock()
        meter.create_observable_gauge(
            "ecom.kafka.consumer.lag", callbacks=[self._observe_lags], unit="{message}",
            description="Messages a consumer group's consumer in this process has yet to "
            "process (high-water mark less its position), per consumer",
        )

    def cache_lookup(self, service: str, level: str, hit: bool, count: int = 1) -> None:
        key = (service, level, hit)
        self._cache_counts[key] = self._cache_counts.get(key, 0) + count

    def _observe_cache_lookups(self, _: CallbackOptions) -> Iterable[Observation]:
        for (service, level, hit), count in list(self._cache_counts.items()):
            yield Observation(count, {"ecom.service": service, "ecom.cache.level": level,
                                      "ecom.cache.hit": hit})

    def waited(self, resource: str) -> Callable[[float], None]:
        """A callback recording waits (seconds) for ``resource``."""
        attributes = {"ecom.resource": resource}

        def record(seconds: float) -> None:
            self.wait.record(seconds, attributes)

        return record

    def watch_consumer_lag(self, consumer: str, lag: ConsumerLag) -> None:
        """Report ``lag()`` as consumer ``consumer``'s lag at every collection."""
        with self._lags_lock:
            self._lags[consumer] = lag

    def _observe_lags(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lags_lock:
            lags = list(self._lags.items())
        for consumer, lag in lags:
            value = lag()
            if value is not None:
                yield Observation(value, {"ecom.consumer": consumer})
