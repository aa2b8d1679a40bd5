"""A consumer's lag histograms get every event of a batch, exactly, whether recorded one at a
time or a poll's batch at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from ecomctl.adapters.kafka.consumer import ConsumerLag
from ecomctl.domain.events import ConsumedEvent

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _event(committed_ms_ago: int, published_ms_ago: int) -> ConsumedEvent:
    return ConsumedEvent(
        event_id=uuid.uuid4(), event_type="order.paid", aggregate_type="order",
        aggregate_id="1", payload={}, topic="order-events", partition=0, offset=0,
        occurred_at=NOW - timedelta(milliseconds=committed_ms_ago),
        published_at=NOW - timedelta(milliseconds=published_ms_ago), headers=())


def test_a_batch_records_each_event_like_one_at_a_time() -> None:
    events = [_event(900, 400), _event(120, 20), _event(120, 20), _event(5, 0)]
    one, batch = ConsumerLag(), ConsumerLag()
    for event in events:
        one.record(event, NOW.timestamp())
    batch.record_many(events, NOW.timestamp())
    for lag in (one, batch):
        assert lag.total.count == lag.kafka.count == 4
        # (within the histogram's three significant digits)
        assert abs(lag.total.max_us - 900_000) <= 900 and abs(lag.total.min_us - 5_000) <= 5
        assert abs(lag.kafka.max_us - 400_000) <= 400
        assert lag.kafka.min_us == 1  # published at "now": clamped to 1 us, not 0
    assert batch.total.percentiles_us((0.5, 0.99)) == one.total.percentiles_us((0.5, 0.99))
