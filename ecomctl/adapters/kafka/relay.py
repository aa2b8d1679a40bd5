"""The outbox relay: publishes committed outbox rows to Kafka, at least once.

One batch is one PostgreSQL transaction: claim unpublished rows (``FOR UPDATE SKIP LOCKED``,
so concurrent relays never publish the same row at the same time), send them, wait for every
broker ack, mark them published, commit. Any failure rolls the claim back and the rows are
sent again later; consumers deduplicate on ``event_id``.

Ordering: one relay keeps each aggregate's events in order (key = aggregate id, so one
partition; batches are sequential). Several relays on the same outbox are safe against
duplicates-in-flight but may reorder events of one aggregate across batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.semconv._incubating.attributes.messaging_attributes import (
    MESSAGING_BATCH_MESSAGE_COUNT,
    MESSAGING_DESTINATION_NAME,
    MESSAGING_OPERATION_TYPE,
    MESSAGING_SYSTEM,
    MessagingOperationTypeValues,
    MessagingSystemValues,
)

from ecomctl.adapters.postgres.database import Database
from ecomctl.backoff import jittered, next_backoff
from ecomctl.errors import BackendUnavailable, InfraError
from ecomctl.telemetry.metrics import ShopMetrics
from ecomctl.telemetry.spans import ServiceTracer

log = logging.getLogger(__name__)

# The envelope is built by PostgreSQL: no JSON decode/encode round trip in Python, and the
# payload (JSONB) is embedded as is. occurred_at is UTC whatever the session time zone.
_CLAIM = """
SELECT id, topic, event_id::text AS event_id, event_type, aggregate_id,
       trace_context::text AS trace_context,
       json_build_object(
           'event_id', event_id,
           'event_type', event_type,
           'aggregate_type', aggregate_type,
           'aggregate_id', aggregate_id,
           'occurred_at', to_char(created_at AT TIME ZONE 'UTC',
                                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
           'payload', payload
       )::text AS envelope
FROM outbox
WHERE published_at IS NULL AND ($2::text[] IS NULL OR topic = ANY($2::text[]))
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED
"""

# clock_timestamp(), not now(): now() is the transaction start, before the broker acked.
_MARK = """
UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1::bigint[])
RETURNING topic, EXTRACT(EPOCH FROM published_at - created_at)::float8 AS lag_s
"""

_PENDING = """
SELECT EXISTS (
    SELECT 1 FROM outbox
    WHERE published_at IS NULL AND ($1::text[] IS NULL OR topic = ANY($1::text[]))
)
"""

_MAX_LINKS = 64  # links from a batch span to the traces that wrote its events
_FIRST_BACKOFF_S = 0.1


class OutboxDrainTimeout(InfraError):
    """``drain`` gave up: unpublished outbox rows remained when the timeout expired."""


@dataclass
class RelayStats:
    """Counters since the relay object was created (read by reports and tests)."""

    published: int = 0
    batches: int = 0
    failures: int = 0
    last_error: str | None = None


class OutboxRelay:
    """Publishes the outbox to Kafka.

    ``producer`` must be started, send bytes (no serializers) and use ``acks="all"``.
    ``topics`` restricts the relay to rows of those topics (None: every row).
    """

    def __init__(
        self,
        db: Database,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.05,
        tracer: ServiceTracer | None = None,
        metrics: ShopMetrics | None = None,
        topics: Sequence[str] | None = None,
        topic_prefix: str = "",
        publish_timeout_s: float = 30.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._db = db
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._tracer = tracer or ServiceTracer("outbox")
        self._metrics = metrics
        self._topics = list(topics) if topics is not None else None
        self._topic_prefix = topic_prefix  # outbox rows name the topic; Kafka's has the prefix
        self._publish_timeout_s = publish_timeout_s
        self._max_backoff_s = max_backoff_s
        self.stats = RelayStats()
        self.paused = False
        """While True, ``run`` publishes nothing (the broker-unreachable fault); rows wait."""

    async def run_once(self) -> int:
        """Publish one batch; return how many rows were published (0: nothing to do).

        Raises BackendUnavailable when PostgreSQL or Kafka fails; the batch is then rolled
        back and will be published again.
        """
        # Idle polls would otherwise flood the trace backend with BEGIN/SELECT/ROLLBACK and
        # pool-reset root traces, 20 per second. Suppression covers the whole connection
        # scope (the reset runs on release); the batch span re-enables instrumentation.
        with suppress_instrumentation():
            async with self._db.connection() as conn:
                tx = conn.transaction()
                await tx.start()
                try:
                    rows = await conn.fetch(_CLAIM, self._batch_size, self._topics)
                    if not rows:
                        await tx.rollback()
                        return 0
                    await self._publish_and_mark(conn, tx, rows)
                except BaseException as exc:
                    await _rollback_quietly(tx)
                    if conn.is_closed() and isinstance(exc, Exception) and not isinstance(
                        exc, InfraError
                    ):
                        # asyncpg may report a connection killed mid-query as an internal
                        # client error; it is the database going away all the same.
                        raise BackendUnavailable("postgres", f"connection lost: {exc!r}") from exc
                    raise
        self.stats.published += len(rows)
        self.stats.batches += 1
        return len(rows)

    async def _publish_and_mark(
        self, conn: asyncpg.Connection, tx: Any, rows: Sequence[asyncpg.Record]
    ) -> None:
        # A root span per batch: the relay's work is not part of whatever span started it,
        # and a fresh context also lifts the idle-poll suppression for this batch's work.
        token = otel_context.attach(Context())
        try:
            with self._tracer.span(
                "outbox.publish",
                {
                    MESSAGING_SYSTEM: MessagingSystemValues.KAFKA.value,
                    MESSAGING_OPERATION_TYPE: MessagingOperationTypeValues.SEND.value,
                    MESSAGING_BATCH_MESSAGE_COUNT: len(rows),
                },
            ) as span:
                await self._publish(rows, span)
                lags = await conn.fetch(_MARK, [row["id"] for row in rows])
                await tx.commit()
        finally:
            otel_context.detach(token)
        if self._metrics is not None:
            for lag in lags:
                self._metrics.outbox_lag.record(
                    lag["lag_s"], {MESSAGING_DESTINATION_NAME: lag["topic"]}
                )

    async def _publish(self, rows: Sequence[asyncpg.Record], span: trace.Span) -> None:
        futures: list[asyncio.Future[Any]] = []
        links = 0
        try:
            for row in rows:
                carrier = _carrier(row["trace_context"])
                headers = [(k, v.encode()) for k, v in carrier.items()]
                headers.append(("event_id", row["event_id"].encode()))
                headers.append(("event_type", row["event_type"].encode()))
                # The writer's context is current while sending, so the per-message producer
                # span of the aiokafka instrumentation joins the trace that wrote the event.
                writer = propagate.extract(carrier)
                writer_span = trace.get_current_span(writer).get_span_context()
                if writer_span.is_valid and links < _MAX_LINKS:
                    span.add_link(writer_span)
                    links += 1
                token = otel_context.attach(writer)
                try:
                    future = await self._producer.send(
                        self._topic_prefix + row["topic"],
                        row["envelope"].encode(),
                        key=row["aggregate_id"].encode(),
                        headers=headers,
                    )
                finally:
                    otel_context.detach(token)
                futures.append(future)
            # return_exceptions: every ack is awaited, none is left unretrieved on failure.
            acks = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), self._publish_timeout_s
            )
            failed = [ack for ack in acks if isinstance(ack, BaseException)]
            if failed:
                raise failed[0]
        except KafkaError as exc:
            raise BackendUnavailable("kafka", f"publish failed: {exc!r}") from exc
        except TimeoutError as exc:
            raise BackendUnavailable(
                "kafka", f"no ack for {len(futures)} message(s) in {self._publish_timeout_s}s"
            ) from exc

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set. Never raises on backend failures: they are counted
        in ``stats`` and retried with a capped exponential backoff."""
        backoff = 0.0
        while not stop.is_set():
            if self.paused:
                await _sleep_unless(stop, self._poll_interval_s)
                continue
            try:
                published = await self.run_once()
            except Exception as exc:  # any failure is transient for a relay: keep going
                backoff = next_backoff(backoff, _FIRST_BACKOFF_S, self._max_backoff_s)
                pause = jittered(backoff)
                self._record_failure(exc, pause)
                await _sleep_unless(stop, pause)
                continue
            backoff = 0.0
            if published == 0:
                await _sleep_unless(stop, self._poll_interval_s)

    async def drain(self, timeout_s: float) -> None:
        """Publish until no unpublished row (of this relay's topics) remains, including rows
        another relay holds locked right now. Raises OutboxDrainTimeout after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        backoff = 0.0
        while True:
            pause = self._poll_interval_s
            try:
                if await self.run_once() > 0:
                    backoff = 0.0
                    continue
                if not await self._pending():
                    return
            except Exception as exc:
                backoff = next_backoff(backoff, _FIRST_BACKOFF_S, self._max_backoff_s)
                pause = jittered(backoff)
                self._record_failure(exc, pause)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise OutboxDrainTimeout(
                    f"outbox not drained after {timeout_s}s (last error: {self.stats.last_error})"
                )
            await asyncio.sleep(min(pause, remaining))

    async def _pending(self) -> bool:
        with suppress_instrumentation():
            async with self._db.connection() as conn:
                return bool(await conn.fetchval(_PENDING, self._topics))

    def _record_failure(self, exc: Exception, backoff: float) -> None:
        self.stats.failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        log.warning("outbox relay: %s; retrying in %.2fs", self.stats.last_error, backoff)


def _carrier(stored: str) -> dict[str, str]:
    """The stored trace context (what the configured propagators wrote: traceparent,
    tracestate... by default); ignores anything malformed."""
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


async def _rollback_quietly(tx: Any) -> None:
    """Roll back after a failure; if the connection is gone the pool discards it anyway,
    and the original error is the one worth raising."""
    with contextlib.suppress(Exception):
        await tx.rollback()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
