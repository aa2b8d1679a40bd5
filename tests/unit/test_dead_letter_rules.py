"""Dead letters without I/O: which errors are retried, what a dead letter's headers say, what a
replay sends, and how the replay ledger remembers what was replayed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecomctl.adapters.kafka.consumer import MalformedEvent
from ecomctl.adapters.kafka.dlq import (
    REPLAY_OF,
    DeadLetter,
    _Ledger,
    dead_letter_headers,
    dlq_topic,
    replay_headers,
    resolve_dlq_topic,
    shop_dlq_topics,
)
from ecomctl.config import Settings
from ecomctl.errors import (
    BackendUnavailable,
    ConfigError,
    InfraError,
    OutOfStock,
    RequestRejected,
    ValidationFailed,
    is_retryable,
)


@pytest.mark.parametrize(("error", "retryable"), [
    (BackendUnavailable("elasticsearch", "HTTP 503"), True),
    (InfraError("postgres went away"), True),
    (TimeoutError(), True),
    (RuntimeError("a handler bug, maybe a race"), True),
    (RequestRejected("elasticsearch rejected index (HTTP 400)"), False),
    (ValidationFailed("bad quantity"), False),
    (OutOfStock(1, 2), False),
    (MalformedEvent("not JSON"), False),
])
def test_errors_say_whether_a_retry_can_help(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


def test_dlq_topics_follow_the_topic_prefix() -> None:
    assert dlq_topic("bench.order-events") == "bench.order-events.dlq"
    assert dlq_topic("order-events.dlq") == "order-events.dlq"
    assert "bench.product-events.dlq" in shop_dlq_topics("bench.")
    assert resolve_dlq_topic("order-events", "bench.") == "bench.order-events.dlq"
    assert resolve_dlq_topic("bench.order-events.dlq", "bench.") == "bench.order-events.dlq"


def test_a_dead_letter_keeps_the_original_headers_first_and_says_why() -> None:
    first = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    original = [("traceparent", b"00-aa-bb-01"), ("event_type", b"order.paid"),
                ("empty", None)]
    headers = dead_letter_headers(
        original, error=RequestRejected("x" * 5000), group="shipment", topic="order-events",
        partition=2, offset=41, attempts=1, first_failure=first, retryable=False,
        trace_context={"traceparent": "00-cc-dd-01"},
    )
    assert headers[:2] == original[:2]  # a None header has no value to keep
    letter = DeadLetter("order-events.dlq", 0, 7, first, b"k", b"v", tuple(headers))
    row = letter.to_dict()
    assert row["traceparent"] == "00-aa-bb-01"  # the writer's, not the failing span's
    assert (row["error_type"], row["retryable"], row["group"]) == ("RequestRejected", False,
                                                                   "shipment")
    assert (row["source_topic"], row["source_partition"], row["source_offset"]) == (
        "order-events", 2, 41)
    assert row["attempts"] == 1 and row["first_failure"] == first.isoformat()
    assert len(row["error_message"]) == 1000 and row["event_type"] == "order.paid"


def test_a_record_without_trace_context_gets_the_failing_spans() -> None:
    headers = dead_letter_headers(
        [], error=MalformedEvent("bad"), group="g", topic="t", partition=0, offset=0,
        attempts=1, first_failure=datetime.now(UTC), retryable=False,
        trace_context={"traceparent": "00-cc-dd-01", "baggage": "x=1"},
    )
    assert ("traceparent", b"00-cc-dd-01") in headers
    assert all(key != "baggage" for key, _ in headers)


def test_a_replay_sends_the_original_headers_and_marks_itself() -> None:
    headers = [("traceparent", b"00-aa-bb-01"), ("event_id", b"e1"),
               ("traceparent", b"00-producer-span-01"), ("dlq.error.type", b"X"),
               ("dlq.replay.of", b"t.dlq/0/1")]
    sent = replay_headers(headers, "t.dlq/0/9")
    assert sent[:2] == [("traceparent", b"00-aa-bb-01"), ("event_id", b"e1")]
    assert [v for k, v in sent if k == REPLAY_OF] == [b"t.dlq/0/9"]
    assert not any(k.startswith("dlq.error") for k, _ in sent)


def test_the_replay_ledger_remembers_offsets_in_any_order() -> None:
    ledger = _Ledger.parse(-1, None)  # the group never committed
    assert not ledger.has(0)
    ledger = ledger.adding([3, 5])
    assert (ledger.below, ledger.has(3), ledger.has(4), ledger.has(0)) == (0, True, False, False)
    ledger = ledger.adding([0, 1, 2])
    assert ledger.below == 4 and ledger.extra == frozenset({5})
    again = _Ledger.parse(ledger.below, ledger.metadata())
    assert again == ledger and again.has(2) and again.has(5) and not again.has(4)


def test_consumer_retry_settings_are_read_and_validated() -> None:
    settings = Settings.from_env({"ECOMCTL_CONSUMER_MAX_ATTEMPTS": "5",
                                  "ECOMCTL_CONSUMER_RETRY_BACKOFF_S": "0.02"})
    assert settings.consumer_max_attempts == 5 and settings.consumer_retry_backoff_s == 0.02
    assert Settings.from_env({}).consumer_max_attempts == 3
    with pytest.raises(ConfigError, match="ECOMCTL_CONSUMER_MAX_ATTEMPTS"):
        Settings.from_env({"ECOMCTL_CONSUMER_MAX_ATTEMPTS": "0"})
