"""The shop's OpenTelemetry instruments, created once per meter and shared by services."""

from __future__ import annotations

from opentelemetry import metrics
from opentelemetry.metrics import Meter


class ShopMetrics:
    def __init__(self, meter: Meter | None = None) -> None:
        meter = meter or metrics.get_meter("ecomctl")
        self.cache_lookups = meter.create_counter(
            "ecom.cache.lookups", unit="{lookup}",
            description="Cache lookups by service, level (l1, l2, l3) and result (hit, miss)",
        )
        self.request_duration = meter.create_histogram(
            "ecom.request.duration", unit="s",
            description="Gateway request latency by route and status code",
        )
        self.orders = meter.create_counter(
            "ecom.orders", unit="{order}", description="Orders by outcome"
        )
        self.payments = meter.create_counter(
            "ecom.payments", unit="{payment}", description="Payment attempts by status"
        )
        self.outbox_lag = meter.create_histogram(
            "ecom.outbox.lag", unit="s",
            description="Time from outbox insert to publication on Kafka",
        )
        self.consumer_lag = meter.create_histogram(
            "ecom.consumer.lag", unit="s",
            description="Time from publication to processing by a consumer, per consumer",
        )

    def cache_lookup(self, service: str, level: str, hit: bool) -> None:
        self.cache_lookups.add(
            1, {"ecom.service": service, "ecom.cache.level": level, "ecom.cache.hit": hit}
        )
