"""The idempotent consumer runner: Kafka records -> handler, effectively once.

One PostgreSQL transaction records ``(consumer, event_id)`` in ``processed_events`` and runs
the handler; a redelivered event inserts nothing and is skipped. Kafka offsets are committed
only after the database commits (auto-commit is off), so a crash redelivers, and the dedupe
table absorbs the redelivery.

Batches: a poll's records of one partition go through one transaction with one bulk insert
into ``processed_events`` (one commit, one fsync, per partition and poll instead of per
event: a consumer that falls behind catches up in large steps); partitions run concurrently.
If anything in a batch fails (a malformed record, a handler error, PostgreSQL), its
transaction rolls back and those records are processed again one by one, with the rules
below, so one bad event costs its neighbours a retry, not their correctness.

Failures (errors are classified once, by ``ecomctl.errors.is_retryable``):
- a malformed record (not a JSON envelope) is dead-lettered at once;
- a handler error is retried ``max_attempts`` times in all with a capped exponential backoff,
  then dead-lettered (its transaction rolled back, so it is not marked processed): a poison
  message never blocks its partition. A non-retryable error (a DomainError such as
  ValidationFailed, a RequestRejected such as an Elasticsearch mapping rejection) is
  dead-lettered at once, since retrying cannot change the answer;
- a retryable InfraError (PostgreSQL or Elasticsearch unavailable...) is not the message's
  fault: the record is retried with a capped backoff until the backend is back or the
  consumer is stopped, never dead-lettered (an outage would otherwise empty a topic into its
  DLQ).
Dead-lettering writes the record to ``<topic>.dlq`` (see adapters/kafka/dlq) and waits for the
broker's ack before the offset is committed past it: nothing is dropped silently. While the
DLQ cannot be written, the record is retried like an outage.

Tracing: aiokafka's instrumentation ends its receive span before we see the record, so each
attempt opens a CONSUMER span ``process <topic>``, a child of the context in the headers. A
batch has its own ``process batch`` span (the bulk claim beneath it) linking to every event's
context, as OpenTelemetry's messaging conventions describe for batch processing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain, repeat
from typing import Any, Protocol, TypeVar, runtime_checkable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_BATCH_MESSAGE_COUNT,
    MESSAGING_CONSUMER_GROUP_NAME,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_DESTINATION_PARTITION_ID,
    MESSAGING_KAFKA_OFFSET,
    MESSAGING_MESSAGE_ID,
    MESSAGING_OPERATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MessagingOperationTypeValues,
    MessagingSystemValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from ecomctl.adapters.kafka.dlq import DeadLetterWriter, dead_letter_headers
from ecomctl.adapters.postgres.database import Database
from ecomctl.adapters.postgres.processed_events import CLAIM, CLAIM_MANY
from ecomctl.backoff import jittered, next_backoff
from ecomctl.domain.events import ConsumedEvent
from ecomctl.errors import BackendUnavailable, InfraError, is_retryable
from ecomctl.histogram import LatencyHistogram
from ecomctl.telemetry.context import current_service
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

log = logging.getLogger(__name__)

_MAX_BATCH_LINKS = 128
FETCH_MAX_WAIT_MS = 100
_NO_CONTEXT = Context()
_KAFKA = MessagingSystemValues.KAFKA.value
_PROCESS = MessagingOperationTypeValues.PROCESS.value
Headers = Sequence[tuple[str, bytes | None]]
T = TypeVar("T")


EventHandler = Callable[[ConsumedEvent, asyncpg.Connection], Awaitable[None]]
"""A handler may have an ``event_types`` attribute (a set of event types): in a batch, the
other events of its topics are only marked processed, without a call or a span."""


@runtime_checkable
class BatchEventHandler(Protocol):
    """A handler that can also take a poll's new events at once (in order, each event once,
    inside the batch's transaction): per-event work folded into a few statements. Its
    events get no span of their own; the batch span links to them."""

    async def __call__(self, event: ConsumedEvent, conn: asyncpg.Connection) -> None: ...

    async def handle_batch(
        self, events: Sequence[ConsumedEvent], conn: asyncpg.Connection
    ) -> None: ...


@runtime_checkable
class ClaimingBatchHandler(BatchEventHandler, Protocol):
    """A batch handler that also claims the events (``processed_events``) in the same single
    statement as its write, so a poll's partition costs one round trip and no transaction."""

    async def handle_new(
        self, consumer: str, events: Sequence[ConsumedEvent], conn: asyncpg.Connection
    ) -> set[uuid.UUID]: ...


class MalformedEvent(ValueError):
    """A record whose value is not a valid event envelope."""

    retryable = False  # the same bytes will not decode any better


class _HandlerFailed(Exception):
    """A handler raised inside a batch: which event, and why."""

    def __init__(self, event: ConsumedEvent, cause: Exception) -> None:
        super().__init__(str(cause))
        self.event = event
        self.cause = cause


@dataclass
class ConsumerStats:
    processed: int = 0
    duplicates: int = 0
    failed: int = 0
    malformed: int = 0
    retries: int = 0  # handler attempts that failed and were retried
    infra_retries: int = 0  # attempts that hit an unavailable backend
    commit_failures: int = 0  # offset commits refused (e.g. a rebalance); redelivery follows
    dead_lettered: int = 0  # records written to their topic's DLQ (failed + malformed)
    dead_lettered_by_topic: dict[str, int] = field(default_factory=dict)  # by source topic
    dlq_write_failures: int = 0  # dead letters Kafka did not take (retried)
    last_error: str | None = None


class ConsumerLag:
    """How far behind the business the consumer runs, for every event it processed (not only
    the sampled ones, so reports do not depend on tracing): ``total`` from the business
    commit (outbox row written) to processed, ``kafka`` from publication to processed."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = LatencyHistogram()
        self.kafka = LatencyHistogram()

    def record(self, event: ConsumedEvent, now: float) -> None:
        self.record_many([event], now)

    def record_many(self, events: Sequence[ConsumedEvent], now: float) -> None:
        """Every event's lags, exact, in one pass per histogram (a batch of a poll)."""
        self.total.record_many_us([max(1, round((now - e.occurred_at.timestamp()) * 1e6))
                                   for e in events])
        self.kafka.record_many_us([max(1, round((now - e.published_at.timestamp()) * 1e6))
                                   for e in events])


class _HeadersGetter(Getter[Headers]):
    """Reads W3C entries from Kafka headers (bytes). The first value wins: the relay writes
    the writer's context first, before anything an instrumented producer appends."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        for name, value in carrier:
            if name == key and value is not None:
                return [value.decode("utf-8", "replace")]
        return None

    def keys(self, carrier: Headers) -> list[str]:
        return [name for name, _ in carrier]


_GETTER = _HeadersGetter()


class EventConsumer:
    """Consumes ``topics`` as consumer group ``group_id`` (default: ``name``) and calls
    ``handler(event, conn)`` inside the transaction that marks the event processed."""

    def __init__(
        self,
        name: str,
        topics: list[str],
        handler: EventHandler,
        *,
        bootstrap: str,
        db: Database,
        tracer: ServiceTracer | None = None,
        group_id: str | None = None,
        metrics: ShopMetrics | None = None,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        max_poll_records: int = 200,
        poll_timeout_s: float = 0.2,
        dead_letters: DeadLetterWriter | None = None,
    ) -> None:
        """``max_attempts``: tries of a retryable failure before it is dead-lettered, with a
        backoff of ``retry_backoff_s`` doubling up to ``max_backoff_s``. ``dead_letters``:
        a shared writer (its owner closes it); None starts one of our own when needed."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.name = name
        self.topics = list(topics)
        self.group_id = group_id or name
        self._handler = handler
        # Checked once: isinstance against a runtime Protocol walks its members each time.
        self._batch_handler = handler if isinstance(handler, BatchEventHandler) else None
        self._claiming_handler = (handler if isinstance(handler, ClaimingBatchHandler)
                                  else None)
        self._bootstrap = bootstrap
        self._db = db
        self._tracer = tracer or ServiceTracer(name)
        self._metrics = metrics
        self._lag_attributes: dict[str, dict[str, str]] = {}
        self._max_attempts = max_attempts
        self._retry_backoff_s = retry_backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_poll_records = max_poll_records
        self._poll_timeout_ms = int(poll_timeout_s * 1000)
        self._dead_letters = dead_letters or DeadLetterWriter(bootstrap)
        self._owns_dead_letters = dead_letters is None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.stats = ConsumerStats()
        self.event_lag = ConsumerLag()
        self._positions: dict[TopicPartition, int] = {}  # next offset to process
        self._pending_commit: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.watch_consumer_lag(self.group_id, self.known_lag)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe (idempotent). Does not start consuming: call ``run`` or
        ``start_background``."""
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            client_id=f"ecomctl-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            # An idle partition's fetch waits this long on the broker for data. aiokafka
            # sends ``lag()``'s offset requests on the fetch's connection, where the broker
            # answers them only after it: at the default 500 ms each lag() took 0.6-1 s.
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise BackendUnavailable("kafka", f"consumer {self.name}: {exc!r}") from exc
        self._consumer = consumer

    def start_background(self) -> asyncio.Task[None]:
        """Run in a task until ``stop()``; call after ``await start()``."""
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.run(self._stop), name=f"consumer-{self.name}")
        return self._task

    async def stop(self) -> None:
        """Stop the background task (if any) and leave the group. Offsets of fully processed
        records are already committed; anything in flight is redelivered later."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # a cancelled run() may leave one in flight
            await self._settle_commit()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        if self._owns_dead_letters:
            await self._dead_letters.close()

    # -- the loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Backend failures are counted and retried."""
        # The client library's own receive spans belong to this consumer's service.
        current_service.set(self._tracer.service)
        await self.start()
        consumer = self._require_consumer()
        backoff = 0.0
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
            except KafkaError as exc:
                backoff = next_backoff(backoff, self._retry_backoff_s, self._max_backoff_s)
                self._note_error("poll", exc)
                await _sleep_unless(stop, jittered(backoff))
                continue
            backoff = 0.0
            if batches:
                await self._process_batches(consumer, batches, stop)
        await self._settle_commit()

    async def _process_batches(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[Any]],
        stop: asyncio.Event,
    ) -> None:
        # Partitions are independent (order matters within one): each goes through its own
        # transaction, concurrently, so a consumer is not bound by one round trip at a time.
        items = list(batches.items())
        outcomes = await asyncio.gather(*(self._process_together(records)
                                          for _, records in items))
        done: dict[TopicPartition, int] = {}
        leftovers: list[tuple[TopicPartition, list[Any], dict[int, Exception]]] = []
        for (tp, records), (committed, failed) in zip(items, outcomes, strict=True):
            if committed:
                done[tp] = records[-1].offset + 1
            elif records:
                leftovers.append((tp, records, failed))
        for position, (tp, records, failed) in enumerate(leftovers):
            for record in records:
                if not await self._handle(record, stop, failed.get(record.offset)):
                    # Stopped while a backend was down: rewind every unfinished partition so
                    # a later run() on this consumer neither skips nor loses these records.
                    consumer.seek(tp, record.offset)
                    for later_tp, later, _ in leftovers[position + 1 :]:
                        consumer.seek(later_tp, later[0].offset)
                    await self._settle_commit()
                    await self._commit(consumer, done)
                    return
                done[tp] = record.offset + 1
        # One commit per poll: every record in it is already committed in PostgreSQL, and a
        # redelivery after a crash is absorbed by processed_events. The commit's round trip
        # overlaps the next poll's work; commits still go out one at a time, in order.
        await self._settle_commit()
        if done:
            self._pending_commit = asyncio.create_task(self._commit(consumer, done))

    async def _process_together(
        self, records: list[Any]
    ) -> tuple[bool, dict[int, Exception]]:
        """One partition's records of a poll in one transaction (one statement for a
        ``ClaimingBatchHandler``). Not committed when any part of it fails (the caller then
        goes record by record); a handler's own error counts as that record's first attempt,
        returned by offset."""
        if len(records) < 2:
            return False, {}  # one record: the per-record path costs the same
        try:
            events = [_parse(record) for record in records]
        except MalformedEvent:
            return False, {}
        batched = self._batch_handler is not None
        # A batch handler's events get no span of their own: only the batch span's links
        # need their writers' contexts, and it keeps _MAX_BATCH_LINKS of them.
        contexts = [propagate.extract(record.headers, context=Context(), getter=_GETTER)
                    for record in (records[:_MAX_BATCH_LINKS] if batched else records)]
        links = [Link(span_context) for span_context in
                 (trace.get_current_span(c).get_span_context() for c in contexts)
                 if span_context.is_valid]
        processed: list[ConsumedEvent] = []
        try:
            with self._tracer.span("process batch", self._batch_attributes(len(records)),
                                   kind=SpanKind.CONSUMER, links=links):
                if self._claiming_handler is not None:
                    unique = _each_once(events, lambda event: event.event_id)
                    async with self._db.connection() as conn:
                        claimed = await self._claiming_handler.handle_new(self.name, unique, conn)
                    processed = [event for event in unique if event.event_id in claimed]
                else:
                    processed = await self._claim_and_handle(events, contexts)
        except _HandlerFailed as failure:
            self._note_error(f"batch of {len(records)} (retried record by record)",
                             failure.cause)
            return False, {failure.event.offset: failure.cause}
        except Exception as exc:
            self._note_error(f"batch of {len(records)} (retried record by record)", exc)
            return False, {}
        self.stats.duplicates += len(events) - len(processed)
        self._processed_many(processed, time.time())
        return True, {}

    async def _claim_and_handle(
        self, events: list[ConsumedEvent], contexts: list[Context]
    ) -> list[ConsumedEvent]:
        """One partition's poll in one transaction: the claim, then the handler on the
        events new to this consumer. Returns those events."""
        async with self._db.transaction() as conn:
            claimed = {row["event_id"] for row in await conn.fetch(
                CLAIM_MANY, self.name, [event.event_id for event in events])}
            # (contexts past the links' for a batch handler: none needed)
            padded = chain(contexts, repeat(_NO_CONTEXT))
            first = _each_once(zip(events, padded, strict=False), lambda pair: pair[0].event_id)
            new = [(event, context) for event, context in first if event.event_id in claimed]
            if self._batch_handler is not None:
                await self._batch_handler.handle_batch([event for event, _ in new], conn)
                return [event for event, _ in new]
            wanted = getattr(self._handler, "event_types", None)
            for event, parent in new:
                if wanted is not None and event.event_type not in wanted:
                    continue  # claimed as processed; no handler, no span
                try:
                    await self._run_handler(event, parent, conn, attempt=1)
                except Exception as exc:
                    if isinstance(exc, InfraError) and is_retryable(exc):
                        raise  # the backend's fault: it spends no attempt
                    raise _HandlerFailed(event, exc) from exc
            return [event for event, _ in new]

    async def _run_handler(
        self, event: ConsumedEvent, parent: Context, conn: asyncpg.Connection, attempt: int
    ) -> None:
        """The handler inside its event's own span (a child of the writer's context)."""
        token = otel_context.attach(parent)
        try:
            with self._tracer.span(f"process {event.topic}",
                                   self._event_attributes(event, attempt),
                                   kind=SpanKind.CONSUMER):
                await self._handler(event, conn)
        finally:
            otel_context.detach(token)

    def _processed(self, event: ConsumedEvent, now: float) -> None:
        self._processed_many([event], now)

    def _processed_many(self, events: Sequence[ConsumedEvent], now: float) -> None:
        self.stats.processed += len(events)
        self.event_lag.record_many(events, now)
        if self._metrics is None:
            return
        for event in events:  # the metric's histogram too: one measurement per event
            attributes = self._lag_attributes.get(event.topic)
            if attributes is None:  # one dict per topic, not one per event
                attributes = self._lag_attributes[event.topic] = {
                    "ecom.consumer": self.name, MESSAGING_DESTINATION_NAME: event.topic}
            self._metrics.consumer_lag.record(now - event.published_at.timestamp(),
                                              attributes)

    def _batch_attributes(self, count: int) -> dict[str, Any]:
        return {
            MESSAGING_SYSTEM: _KAFKA,
            MESSAGING_OPERATION_TYPE: _PROCESS,
            MESSAGING_OPERATION_NAME: _PROCESS,
            MESSAGING_BATCH_MESSAGE_COUNT: count,
            MESSAGING_CONSUMER_GROUP_NAME: self.group_id,
        }

    def known_lag(self) -> int | None:
        """Messages not processed yet, from what the client already knows (no request): each
        partition's high-water mark as of its last fetch less the next offset to process;
        None until it knows both for some partition. Cheap, and safe from the metrics
        thread; ``lag`` asks the broker."""
        consumer = self._consumer
        if consumer is None:
            return None
        total, known = 0, False
        try:
            assigned = consumer.assignment()
            for tp, position in list(self._positions.items()):
                highwater = consumer.highwater(tp) if tp in assigned else None
                if highwater is not None:
                    total += max(0, highwater - position)
                    known = True
        except (AssertionError, RuntimeError):  # reassigned under our feet: next time
            return None
        return total if known else None

    async def _settle_commit(self) -> None:
        """Wait for the offset commit still in flight, if any (it handles its own errors)."""
        pending, self._pending_commit = self._pending_commit, None
        if pending is not None:
            await pending

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        self._positions.update(offsets)
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            self.stats.commit_failures += 1
            self._note_error("commit", exc)

    async def _handle(
        self, record: Any, stop: asyncio.Event, failed_in_batch: Exception | None = None
    ) -> bool:
        """Process one record to a final outcome; False only if stopped before one.
        ``failed_in_batch``: the handler already failed once on it, in the poll's batch."""
        parent = propagate.extract(record.headers, context=Context(), getter=_GETTER)
        try:
            event = _parse(record)
        except MalformedEvent as exc:
            self._malformed(record, parent, exc)
            return await self._dead_letter(record, exc, 1, datetime.now(UTC), parent, stop)
        attempt = 0
        first_failure: datetime | None = None
        if failed_in_batch is not None:
            attempt = 1
            first_failure = datetime.now(UTC)
            outcome = await self._after_failure(record, event, attempt, failed_in_batch,
                                                first_failure, parent, stop)
            if outcome is not None:
                return outcome
        infra_backoff = 0.0
        while True:
            attempt += 1
            try:
                duplicate = await self._process_once(event, parent, attempt)
            except Exception as exc:
                if isinstance(exc, InfraError) and is_retryable(exc):
                    # The backend, not the message: retry without spending the attempt budget.
                    attempt -= 1
                    self.stats.infra_retries += 1
                    infra_backoff = next_backoff(infra_backoff, self._retry_backoff_s,
                                                 self._max_backoff_s)
                    self._note_error(f"event {event.event_id}", exc)
                    await _sleep_unless(stop, jittered(infra_backoff))
                    if stop.is_set():
                        return False
                    continue
                first_failure = first_failure or datetime.now(UTC)
                outcome = await self._after_failure(record, event, attempt, exc,
                                                    first_failure, parent, stop)
                if outcome is not None:
                    return outcome
                continue
            if duplicate:
                self.stats.duplicates += 1
            else:
                self._processed(event, time.time())
            return True

    async def _after_failure(
        self, record: Any, event: ConsumedEvent, attempt: int, exc: Exception,
        first_failure: datetime, parent: Context, stop: asyncio.Event,
    ) -> bool | None:
        """After a failed attempt: True when given up (dead-lettered, final), False when
        stopped before that or while backing off, None to try again."""
        self._note_error(f"event {event.event_id} attempt {attempt}", exc)
        # A business rule or a rejected request will say no again: do not retry those.
        if attempt >= self._max_attempts or not is_retryable(exc):
            self.stats.failed += 1
            log.error(
                "consumer %s: giving up on event %s (%s) at %s[%d]@%d after %d attempts; "
                "dead-lettering it", self.name, event.event_id, event.event_type, event.topic,
                event.partition, event.offset, attempt,
            )
            return await self._dead_letter(record, exc, attempt, first_failure, parent, stop)
        self.stats.retries += 1
        backoff = min(self._max_backoff_s, self._retry_backoff_s * 2 ** (attempt - 1))
        await _sleep_unless(stop, jittered(backoff))
        return False if stop.is_set() else None

    async def _dead_letter(
        self, record: Any, exc: BaseException, attempts: int, first_failure: datetime,
        parent: Context, stop: asyncio.Event,
    ) -> bool:
        """Write ``record`` to its DLQ and wait for the ack; True once it is there (the
        offset may then be committed past it), False when stopped before Kafka took it."""
        backoff = 0.0
        token = otel_context.attach(parent)
        try:
            with self._tracer.span(
                f"dead-letter {record.topic}",
                {**self._span_attributes(record.topic, record.partition, record.offset),
                 ERROR_TYPE: type(exc).__name__, "ecom.consumer.attempt": attempts},
            ):
                carrier: dict[str, str] = {}
                propagate.inject(carrier)  # this span: for a record that carried no context
                headers = dead_letter_headers(
                    record.headers, error=exc, group=self.group_id, topic=record.topic,
                    partition=record.partition, offset=record.offset, attempts=attempts,
                    first_failure=first_failure, retryable=is_retryable(exc),
                    trace_context=carrier,
                )
                while True:
                    try:
                        await self._dead_letters.write(record.topic, record.key, record.value,
                                                       headers)
                        break
                    except InfraError as write_error:
                        self.stats.dlq_write_failures += 1
                        self._note_error(f"dead letter of {record.topic}[{record.partition}]"
                                         f"@{record.offset}", write_error)
                        backoff = next_backoff(backoff, self._retry_backoff_s,
                                               self._max_backoff_s)
                        await _sleep_unless(stop, jittered(backoff))
                        if stop.is_set():
                            return False
        finally:
            otel_context.detach(token)
        self.stats.dead_lettered += 1
        by_topic = self.stats.dead_lettered_by_topic
        by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
        return True

    async def _process_once(self, event: ConsumedEvent, parent: Context, attempt: int) -> bool:
        """One attempt in one transaction; True when the event was already processed."""
        attributes = self._event_attributes(event, attempt)
        token = otel_context.attach(parent)
        try:
            with self._tracer.span(
                f"process {event.topic}", attributes, kind=SpanKind.CONSUMER
            ) as span:
                async with self._db.transaction() as conn:
                    if await conn.fetchval(CLAIM, self.name, event.event_id) is None:
                        span.set_attribute("ecom.consumer.duplicate", True)
                        return True
                    await self._handler(event, conn)
                return False
        finally:
            otel_context.detach(token)

    def _malformed(self, record: Any, parent: Context, exc: MalformedEvent) -> None:
        self.stats.malformed += 1
        self._note_error(f"malformed record at {record.topic}[{record.partition}]", exc)
        token = otel_context.attach(parent)
        try:
            with self._tracer.span(
                f"process {record.topic}",
                self._span_attributes(record.topic, record.partition, record.offset),
                kind=SpanKind.CONSUMER,
            ) as span:
                span.set_status(Status(StatusCode.ERROR, "malformed event envelope"))
                span.set_attribute(ERROR_TYPE, "MalformedEvent")
        finally:
            otel_context.detach(token)

    def _event_attributes(self, event: ConsumedEvent, attempt: int) -> dict[str, Any]:
        attributes = self._span_attributes(event.topic, event.partition, event.offset)
        attributes[MESSAGING_MESSAGE_ID] = str(event.event_id)
        attributes["ecom.event.type"] = event.event_type
        attributes["ecom.consumer.attempt"] = attempt
        # Produce-to-consume lag (Kafka record timestamp to now) and the outbox's share
        # before it (commit to publication), for reports that read spans only.
        attributes["ecom.kafka.lag_ms"] = round(
            (time.time() - event.published_at.timestamp()) * 1000, 3
        )
        attributes["ecom.outbox.lag_ms"] = round(event.publish_lag_s * 1000, 3)
        return attributes

    def _span_attributes(self, topic: str, partition: int, offset: int) -> dict[str, Any]:
        return {
            MESSAGING_SYSTEM: _KAFKA,
            MESSAGING_OPERATION_TYPE: _PROCESS,
            MESSAGING_OPERATION_NAME: _PROCESS,
            MESSAGING_DESTINATION_NAME: topic,
            MESSAGING_DESTINATION_PARTITION_ID: str(partition),
            MESSAGING_CONSUMER_GROUP_NAME: self.group_id,
            MESSAGING_KAFKA_OFFSET: offset,  # was messaging.kafka.message.offset (deprecated)
        }

    def _note_error(self, where: str, exc: BaseException) -> None:
        self.stats.last_error = f"{where}: {type(exc).__name__}: {exc}"
        log.warning("consumer %s: %s", self.name, self.stats.last_error)

    # -- progress ------------------------------------------------------------------------

    async def lag(self) -> int | None:
        """Records on the assigned partitions not yet processed and committed; None while
        no partition is assigned (the group is still joining)."""
        consumer = self._require_consumer()
        partitions = list(consumer.assignment())
        if not partitions:
            return None
        try:
            end = await consumer.end_offsets(partitions)
            begin = await consumer.beginning_offsets(partitions)
            total = 0
            for tp in partitions:
                committed = await consumer.committed(tp)
                total += max(0, end[tp] - (begin[tp] if committed is None else committed))
        except KafkaError as exc:
            raise BackendUnavailable("kafka", f"consumer {self.name} lag: {exc!r}") from exc
        return total

    async def wait_until_idle(self, timeout_s: float = 10.0, poll_s: float = 0.05) -> bool:
        """Wait until everything published so far is processed and committed; False on
        timeout. Needs the loop running (``run`` or ``start_background``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if await self.lag() == 0:
                return True
            await asyncio.sleep(poll_s)
        return False

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError(f"consumer {self.name} is not started")
        return self._consumer


def _each_once(items: Iterable[T], event_id_of: Callable[[T], uuid.UUID]) -> list[T]:
    """Each event's first item, in order (Kafka may deliver an event twice)."""
    seen: set[uuid.UUID] = set()
    once = []
    for item in items:
        event_id = event_id_of(item)
        if event_id not in seen:
            seen.add(event_id)
            once.append(item)
    return once


def _parse(record: Any) -> ConsumedEvent:
    try:
        envelope = json.loads(record.value)
        if not isinstance(envelope, dict):
            raise MalformedEvent("envelope is not a JSON object")
        payload = envelope["payload"]
        if not isinstance(payload, dict):
            raise MalformedEvent("payload is not a JSON object")
        occurred_at = datetime.fromisoformat(envelope["occurred_at"])
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        return ConsumedEvent(
            event_id=uuid.UUID(envelope["event_id"]),
            event_type=_text(envelope, "event_type"),
            aggregate_type=_text(envelope, "aggregate_type"),
            aggregate_id=_text(envelope, "aggregate_id"),
            payload=payload,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            occurred_at=occurred_at,
            published_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            headers=tuple(_headers(record.headers)),
        )
    except MalformedEvent:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # JSON, UUID, date, missing field
        raise MalformedEvent(f"{type(exc).__name__}: {exc}") from exc


def _text(envelope: dict[str, Any], key: str) -> str:
    value = envelope[key]
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} is not a string")
    return value


def _headers(headers: Iterable[tuple[str, bytes | None]]) -> Iterable[tuple[str, bytes]]:
    return ((key, value) for key, value in headers if value is not None)


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
