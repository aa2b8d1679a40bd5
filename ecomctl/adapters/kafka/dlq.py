"""Dead letters: the records a consumer gave up on, kept on ``<topic>.dlq`` to look at and replay.

A consumer that cannot process a record (undecodable, refused for good, or still failing after
its attempts) writes it here with its original key, value and headers (the writer's trace
context among them, so a replay continues that trace) plus ``dlq.*`` headers saying why, where
from and when; only after the broker acknowledged it (acks=all) does the consumer commit past
it. A DLQ topic has one partition: an offset names one dead letter.

Replay sends a dead letter back to its source topic (original key, value and trace context, and
a ``dlq.replay.of`` header). What was replayed is recorded in Kafka itself, as the committed
offset of the consumer group ``ecomctl-dlq-replay`` on the DLQ partition: every offset below
it was replayed, and the offsets replayed out of order above it are listed in the commit's
metadata. So a second replay of the same dead letter does nothing. Were a replay interrupted
between the broker's ack and that commit, the next one would send the record again: the
consumers' ``processed_events`` absorbs an event that was in fact processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from ecomctl.adapters.kafka.topics import ensure_topics
from ecomctl.domain.events import TOPICS
from ecomctl.errors import BackendUnavailable, ConfigError, error_code

DLQ_SUFFIX = ".dlq"
DLQ_PARTITIONS = 1
REPLAY_GROUP = "ecomctl-dlq-replay"
MAX_MESSAGE_CHARS = 1_000
_MAX_LEDGER_CHARS = 3_000  # Kafka's offset.metadata.max.bytes is 4096 by default

# The headers a dead letter adds to the original ones.
ERROR_TYPE = "dlq.error.type"
ERROR_CODE = "dlq.error.code"
ERROR_MESSAGE = "dlq.error.message"
ERROR_RETRYABLE = "dlq.error.retryable"
GROUP = "dlq.consumer.group"
SOURCE_TOPIC = "dlq.source.topic"
SOURCE_PARTITION = "dlq.source.partition"
SOURCE_OFFSET = "dlq.source.offset"
ATTEMPTS = "dlq.attempts"
FIRST_FAILURE = "dlq.first_failure"
DEAD_LETTERED_AT = "dlq.dead_lettered_at"
# ...and those a replay adds to the original ones.
REPLAY_OF = "dlq.replay.of"
REPLAYED_AT = "dlq.replayed_at"
_BAGGAGE_HEADERS = frozenset(W3CBaggagePropagator().fields)


def trace_headers() -> frozenset[str]:
    """The headers that carry trace context: those of the configured propagators
    (``OTEL_PROPAGATORS``; ``traceparent`` and ``tracestate`` by default), baggage aside."""
    return frozenset(propagate.get_global_textmap().fields) - _BAGGAGE_HEADERS

Headers = Sequence[tuple[str, bytes | None]]


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic`` (already carrying any topic prefix)."""
    return topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX


def shop_dlq_topics(prefix: str = "") -> list[str]:
    """The dead-letter topics of the shop's own topics, under ``prefix``."""
    return [dlq_topic(prefix + topic) for topic in TOPICS]


def resolve_dlq_topic(name: str, prefix: str = "") -> str:
    """A topic as a user names it (``order-events``, ``order-events.dlq``, with or without
    the prefix) -> the DLQ topic's name on the broker."""
    if prefix and not name.startswith(prefix):
        name = prefix + name
    return dlq_topic(name)


def dead_letter_headers(
    headers: Headers,
    *,
    error: BaseException,
    group: str,
    topic: str,
    partition: int,
    offset: int,
    attempts: int,
    first_failure: datetime,
    retryable: bool,
    now: datetime | None = None,
    trace_context: Mapping[str, str] | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers, then why, where from and when. ``trace_context`` (the failing
    span's) is added only when the record carried none, so its trace is the one continued."""
    out = [(key, value) for key, value in headers if value is not None]
    fields = trace_headers()
    if trace_context and fields.isdisjoint(key for key, _ in out):
        out.extend((k, v.encode()) for k, v in trace_context.items() if k in fields)
    message = str(error)[:MAX_MESSAGE_CHARS]
    out.extend((key, value.encode()) for key, value in (
        (ERROR_TYPE, type(error).__name__),
        (ERROR_CODE, error_code(error)),
        (ERROR_MESSAGE, message),
        (ERROR_RETRYABLE, "true" if retryable else "false"),
        (GROUP, group),
        (SOURCE_TOPIC, topic),
        (SOURCE_PARTITION, str(partition)),
        (SOURCE_OFFSET, str(offset)),
        (ATTEMPTS, str(attempts)),
        (FIRST_FAILURE, first_failure.isoformat()),
        (DEAD_LETTERED_AT, (now or datetime.now(UTC)).isoformat()),
    ))
    return out


def replay_headers(
    headers: Headers, of: str, now: datetime | None = None
) -> list[tuple[str, bytes]]:
    """The original headers without the ``dlq.*`` ones (and without the extra trace context
    an instrumented producer appended: the first one is the writer's), plus the replay's mark."""
    out: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    fields = trace_headers()
    for key, value in headers:
        if value is None or key.startswith("dlq.") or (key in fields and key in seen):
            continue
        seen.add(key)
        out.append((key, value))
    out.append((REPLAY_OF, of.encode()))
    out.append((REPLAYED_AT, (now or datetime.now(UTC)).isoformat().encode()))
    return out


class DeadLetterWriter:
    """Writes dead letters durably (acks=all, awaited). Shares ``producer`` when given one
    (it must use acks=all), else starts its own on the first dead letter: a consumer that
    never gives up on a record costs no connection."""

    def __init__(
        self, bootstrap: str, *, producer: AIOKafkaProducer | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._producer = producer
        self._owns_producer = producer is None
        self._timeout_s = timeout_s
        self._ensured: set[str] = set()
        self._lock = asyncio.Lock()

    async def write(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> tuple[str, int, int]:
        """Send one dead letter to ``<topic>.dlq`` and wait for the broker's ack; returns
        (dlq topic, partition, offset). Raises BackendUnavailable when Kafka did not take it."""
        target = dlq_topic(topic)
        try:
            producer = await self._ready(target)
            metadata = await asyncio.wait_for(
                producer.send_and_wait(target, value, key=key, headers=headers), self._timeout_s
            )
        except KafkaError as exc:
            raise BackendUnavailable("kafka", f"dead letter to {target}: {exc!r}") from exc
        except TimeoutError as exc:
            raise BackendUnavailable(
                "kafka", f"dead letter to {target}: no ack in {self._timeout_s}s"
            ) from exc
        return target, metadata.partition, metadata.offset

    async def _ready(self, target: str) -> AIOKafkaProducer:
        async with self._lock:
            if target not in self._ensured:
                # Before the first write: the broker's auto-creation would use its default
                # partition count, and a DLQ has one partition.
                await ensure_topics(self._bootstrap, [target], DLQ_PARTITIONS)
                self._ensured.add(target)
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
                    client_id="ecomctl-dead-letters",
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        producer = self._producer
        if self._owns_producer and producer is not None:
            self._producer = None
            await producer.stop()


# -- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ topic, with what its headers say."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    replayed: bool = False

    def header(self, name: str) -> str | None:
        value = next((v for k, v in self.headers if k == name), None)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def source_topic(self) -> str:
        return self.header(SOURCE_TOPIC) or self.topic.removesuffix(DLQ_SUFFIX)

    @property
    def event_type(self) -> str | None:
        return self.header("event_type") or self._envelope_field("event_type")

    @property
    def event_id(self) -> str | None:
        return self.header("event_id") or self._envelope_field("event_id")

    def _envelope_field(self, name: str) -> str | None:
        try:
            envelope = json.loads(self.value or b"")
        except ValueError:
            return None
        value = envelope.get(name) if isinstance(envelope, dict) else None
        return value if isinstance(value, str) else None

    @property
    def address(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def to_dict(self) -> dict[str, Any]:
        def number(name: str) -> int | None:
            text = self.header(name)
            return int(text) if text is not None and text.lstrip("-").isdigit() else None

        return {
            "dlq_topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "dead_lettered_at": self.header(DEAD_LETTERED_AT) or self.timestamp.isoformat(),
            "source_topic": self.source_topic,
            "source_partition": number(SOURCE_PARTITION),
            "source_offset": number(SOURCE_OFFSET),
            "group": self.header(GROUP),
            "event_type": self.event_type,
            "event_id": self.event_id,
            "error_type": self.header(ERROR_TYPE),
            "error_message": self.header(ERROR_MESSAGE),
            "retryable": self.header(ERROR_RETRYABLE) == "true",
            "attempts": number(ATTEMPTS),
            "first_failure": self.header(FIRST_FAILURE),
            "traceparent": self.header("traceparent"),
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "replayed": self.replayed,
        }


@dataclass
class _Ledger:
    """What was replayed from one DLQ partition: every offset below ``below``, and ``extra``."""

    below: int = 0
    extra: frozenset[int] = frozenset()

    def has(self, offset: int) -> bool:
        return offset < self.below or offset in self.extra

    def adding(self, offsets: Iterable[int]) -> _Ledger:
        extra = set(self.extra) | set(offsets)
        below = self.below
        while below in extra:
            extra.discard(below)
            below += 1
        return _Ledger(below, frozenset(o for o in extra if o >= below))

    def metadata(self) -> str:
        return json.dumps(sorted(self.extra), separators=(",", ":"))

    @classmethod
    def parse(cls, offset: int, metadata: str | None) -> _Ledger:
        try:
            extra = json.loads(metadata or "[]")
        except ValueError:
            extra = []
        below = max(offset, 0)
        return cls(below, frozenset(int(o) for o in extra if isinstance(o, int) and o >= below))


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` the broker has (asking a consumer about a
    missing topic could auto-create it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        present = set(await admin.list_topics())
        wanted = [topic for topic in dict.fromkeys(topics) if topic in present]
        described = await admin.describe_topics(wanted) if wanted else []
    except KafkaError as exc:
        raise BackendUnavailable("kafka", f"describing topics: {exc!r}") from exc
    finally:
        await admin.close()
    return [TopicPartition(topic["topic"], partition["partition"]) for topic in described
            if topic.get("error_code") == 0
            for partition in sorted(topic["partitions"], key=lambda p: p["partition"])]


async def read_dead_letters(
    bootstrap: str, topics: Sequence[str], *, limit: int | None = None,
    group: str = REPLAY_GROUP, timeout_s: float = 10.0,
) -> list[DeadLetter]:
    """The dead letters on ``topics`` (missing topics have none), oldest first; with
    ``limit``, the most recent ``limit``. Each says whether it was replayed."""
    partitions = await topic_partitions(bootstrap, topics)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, request_timeout_ms=int(timeout_s * 1000))
    try:
        await consumer.start()
        consumer.assign(partitions)
        begin = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        for tp in partitions:
            start = begin[tp] if limit is None else max(begin[tp], end[tp] - limit)
            consumer.seek(tp, start)
        letters = await _read_until(consumer, end, timeout_s)
        ledgers = await _ledgers(bootstrap, group, partitions)
    except KafkaError as exc:
        raise BackendUnavailable("kafka", f"reading dead letters: {exc!r}") from exc
    finally:
        await consumer.stop()
    marked = [_with_replayed(letter, ledgers) for letter in letters]
    marked.sort(key=lambda d: (d.timestamp, d.topic, d.partition, d.offset))
    return marked if limit is None else marked[-limit:] if limit > 0 else []


async def _read_until(
    consumer: AIOKafkaConsumer, end: Mapping[TopicPartition, int], timeout_s: float
) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = {tp for tp, last in end.items() if await consumer.position(tp) < last}
    while pending:
        if loop.time() > deadline:
            raise BackendUnavailable("kafka", f"reading dead letters: no end in {timeout_s}s")
        batches = await consumer.getmany(*pending, timeout_ms=200)
        for tp, records in batches.items():
            letters.extend(_letter(r) for r in records if r.offset < end[tp])
        pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
    return letters


def _letter(record: Any) -> DeadLetter:
    return DeadLetter(
        topic=record.topic, partition=record.partition, offset=record.offset,
        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        key=record.key, value=record.value,
        headers=tuple((k, v) for k, v in record.headers if v is not None),
    )


def _with_replayed(letter: DeadLetter, ledgers: Mapping[TopicPartition, _Ledger]) -> DeadLetter:
    ledger = ledgers.get(TopicPartition(letter.topic, letter.partition), _Ledger())
    if not ledger.has(letter.offset):
        return letter
    return DeadLetter(letter.topic, letter.partition, letter.offset, letter.timestamp,
                      letter.key, letter.value, letter.headers, replayed=True)


async def _ledgers(
    bootstrap: str, group: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, _Ledger]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        committed = await admin.list_consumer_group_offsets(group, partitions=list(partitions))
    finally:
        await admin.close()
    return {tp: _Ledger.parse(meta.offset, meta.metadata) for tp, meta in committed.items()}


# -- replaying -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayReport:
    replayed: list[DeadLetter]
    already_replayed: list[DeadLetter]

    def to_dict(self) -> dict[str, Any]:
        return {"replayed": [d.to_dict() for d in self.replayed],
                "already_replayed": [d.to_dict() for d in self.already_replayed]}


async def replay_dead_letters(
    bootstrap: str, topic: str, *, offsets: Sequence[int] | None = None,
    partition: int | None = None, group: str = REPLAY_GROUP, timeout_s: float = 10.0,
) -> ReplayReport:
    """Send the dead letters of DLQ ``topic`` back to their source topics: those at
    ``offsets`` (ConfigError if one does not exist), or all (``offsets=None``). A dead letter
    replayed before is not sent again; what was sent is recorded once the broker acked it."""
    letters = await read_dead_letters(bootstrap, [topic], group=group, timeout_s=timeout_s)
    if offsets is not None:
        wanted = set(offsets)
        letters = [d for d in letters if d.offset in wanted
                   and (partition is None or d.partition == partition)]
        missing = wanted - {d.offset for d in letters}
        if missing:
            raise ConfigError(f"{topic}: no dead letter at offset(s) "
                              f"{', '.join(map(str, sorted(missing)))}")
    fresh = [d for d in letters if not d.replayed]
    report = ReplayReport(fresh, [d for d in letters if d.replayed])
    if not fresh:
        return report
    try:
        await _send(bootstrap, fresh, timeout_s)
        await _record(bootstrap, group, fresh, timeout_s)
    except KafkaError as exc:
        raise BackendUnavailable("kafka", f"replaying dead letters: {exc!r}") from exc
    return report


async def _send(bootstrap: str, letters: Sequence[DeadLetter], timeout_s: float) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, client_id="ecomctl-dlq-replay")
    await producer.start()
    fields = trace_headers()
    try:
        futures = []
        for letter in letters:
            headers = replay_headers(letter.headers, letter.address)
            # The original context is current while sending: an instrumented producer's
            # span joins the trace the event was written in.
            carrier = {k: v.decode("utf-8", "replace") for k, v in headers
                       if k in fields}
            token = otel_context.attach(propagate.extract(carrier))
            try:
                futures.append(await producer.send(letter.source_topic, letter.value,
                                                   key=letter.key, headers=headers))
            finally:
                otel_context.detach(token)
        acks = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True),
                                      timeout_s)
        failed = [ack for ack in acks if isinstance(ack, BaseException)]
        if failed:
            raise failed[0]
    except TimeoutError as exc:
        raise BackendUnavailable("kafka", f"replay: no ack in {timeout_s}s") from exc
    finally:
        await producer.stop()


async def _record(
    bootstrap: str, group: str, letters: Sequence[DeadLetter], timeout_s: float
) -> None:
    by_partition: dict[TopicPartition, list[int]] = {}
    for letter in letters:
        by_partition.setdefault(TopicPartition(letter.topic, letter.partition), []).append(
            letter.offset)
    ledgers = await _ledgers(bootstrap, group, list(by_partition))
    commits: dict[TopicPartition, tuple[int, str]] = {}
    for tp, replayed in by_partition.items():
        ledger = ledgers.get(tp, _Ledger()).adding(replayed)
        metadata = ledger.metadata()
        if len(metadata) > _MAX_LEDGER_CHARS:
            raise ConfigError(f"{tp.topic}: too many dead letters replayed out of order to "
                              "record; replay the earlier ones first (--all)")
        commits[tp] = (ledger.below, metadata)
    # A consumer of the replay group on the DLQ partitions, assigned (no group join): its
    # commit is the record of what was replayed.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False,
                                request_timeout_ms=int(timeout_s * 1000))
    await consumer.start()
    try:
        consumer.assign(list(commits))
        await consumer.commit(commits)
    finally:
        with contextlib.suppress(KafkaError):
            await consumer.stop()
