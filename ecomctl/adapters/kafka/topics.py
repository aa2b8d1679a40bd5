"""Creating (and, for tests, deleting) Kafka topics idempotently.

``create_topics`` does not raise for a topic that already exists: the broker answers with a
per-topic error code, so we list first, create only what is missing and read the codes."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from ecomctl.errors import BackendUnavailable

_UNKNOWN_TOPIC = 3  # UnknownTopicOrPartitionError: deleting a topic that is already gone


async def ensure_topics(
    bootstrap: str,
    topics: Sequence[str],
    partitions: int = 3,
    *,
    replication_factor: int = 1,
    timeout_s: float = 10.0,
) -> list[str]:
    """Create the missing ``topics``; return the names actually created (empty when all
    existed). Safe to call concurrently: losing a creation race is not an error."""
    admin = _admin(bootstrap, timeout_s)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
             for t in missing],
            timeout_ms=int(timeout_s * 1000),
        )
        created: list[str] = []
        for topic, code, *rest in response.topic_errors:
            if code == 0:
                created.append(topic)
            elif code != TopicAlreadyExistsError.errno:
                detail = rest[0] if rest and rest[0] else for_code(code).__name__
                raise BackendUnavailable("kafka", f"cannot create topic {topic}: {detail}")
        return created
    except KafkaError as exc:
        raise BackendUnavailable("kafka", f"topic admin failed: {exc!r}") from exc
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, topics: Sequence[str], *, timeout_s: float = 10.0) -> None:
    """Delete ``topics``; topics that do not exist are ignored (used by test clean-up)."""
    admin = _admin(bootstrap, timeout_s)
    try:
        await admin.start()
        response = await admin.delete_topics(list(topics), timeout_ms=int(timeout_s * 1000))
        for topic, code, *_ in response.topic_error_codes:
            if code not in (0, _UNKNOWN_TOPIC):
                raise BackendUnavailable(
                    "kafka", f"cannot delete topic {topic}: {for_code(code).__name__}"
                )
    except KafkaError as exc:
        raise BackendUnavailable("kafka", f"topic admin failed: {exc!r}") from exc
    finally:
        await admin.close()


def _admin(bootstrap: str, timeout_s: float) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
