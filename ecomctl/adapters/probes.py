"""Health probes through the product's own clients (asyncpg, redis.asyncio, aiokafka, the
Elasticsearch client, httpx and the OTLP exporter).

``stack up`` waits on them, ``stack status`` shows them and ``doctor`` reports them. A probe
never raises: it returns a ``ProbeResult`` that says what worked and, if not, why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ecomctl.config import OtlpExporterSettings

PROBE_TIMEOUT_S = 5.0
HEALTH_TOPIC = "ecomctl.healthcheck"


@dataclass(frozen=True)
class ProbeResult:
    backend: str
    ok: bool
    detail: str
    version: str | None = None
    latency_ms: float | None = None


async def _run(
    backend: str, check: Callable[[], Awaitable[tuple[str, str | None]]], timeout: float
) -> ProbeResult:
    started = time.perf_counter()
    try:
        detail, version = await asyncio.wait_for(check(), timeout)
    except TimeoutError:
        return ProbeResult(backend, False, f"no answer within {timeout:g}s")
    except Exception as exc:  # a probe reports every failure instead of raising
        return ProbeResult(backend, False, _describe(exc))
    return ProbeResult(backend, True, detail, version, (time.perf_counter() - started) * 1000)


@contextlib.contextmanager
def _library_logs_silenced(name: str) -> Iterator[None]:
    """A probe reports its own failure; the client library logging it too is only noise."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def probe_postgres(url: str, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    import asyncpg

    async def check() -> tuple[str, str | None]:
        conn = await asyncpg.connect(url, timeout=timeout)
        try:
            version = await conn.fetchval("SHOW server_version")
            database = await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()
        return f"SELECT ok on database {database}", str(version).split()[0]

    return await _run("postgres", check, timeout)


async def probe_redis(url: str, timeout: float = PROBE_TIMEOUT_S, *,
                      name: str = "redis") -> ProbeResult:
    import redis.asyncio as redis

    async def check() -> tuple[str, str | None]:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            await client.ping()
            key = f"ecomctl:probe:{uuid.uuid4().hex}"
            await client.set(key, "1", ex=10)
            if await client.get(key) != b"1":
                raise RuntimeError("SET/GET round trip returned a different value")
            await client.delete(key)
            info = await client.info("server")
        finally:
            await client.aclose()
        return "PING, SET/GET ok", str(info.get("redis_version"))

    return await _run(name, check, timeout)


async def probe_kafka(
    bootstrap_servers: str, *, create_topic: bool, timeout: float = PROBE_TIMEOUT_S
) -> ProbeResult:
    """Metadata round trip; with ``create_topic`` also creates (once) a health-check topic."""

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async def check() -> tuple[str, str | None]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
        )
        await admin.start()
        try:
            if create_topic:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(HEALTH_TOPIC, num_partitions=1, replication_factor=1)]
                    )
            cluster: Any = await admin.describe_cluster()
            topics = await admin.list_topics()
        finally:
            await admin.close()
        brokers = len(cluster.get("brokers", [])) if isinstance(cluster, dict) else "?"
        if create_topic and HEALTH_TOPIC not in topics:
            raise RuntimeError(f"topic {HEALTH_TOPIC} missing from metadata after create")
        return f"metadata ok: {brokers} broker(s), {len(topics)} topic(s)", None

    with _library_logs_silenced("aiokafka"):
        return await _run("kafka", check, timeout)


async def probe_elasticsearch(url: str, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    from elasticsearch import AsyncElasticsearch

    async def check() -> tuple[str, str | None]:
        client = AsyncElasticsearch(url, request_timeout=timeout, retry_on_timeout=False)
        try:
            health = await client.cluster.health()
            # Not info(): the integration-test distribution has no root (GET /) endpoint.
            nodes = await client.nodes.info(filter_path="nodes.*.version")
        finally:
            await client.close()
        status = health["status"]
        if status not in ("green", "yellow"):
            raise RuntimeError(f"cluster health is {status}")
        versions = sorted({node["version"] for node in nodes["nodes"].values()})
        return f"cluster {health['cluster_name']} {status}", ", ".join(versions)

    return await _run("elasticsearch", check, timeout)


async def probe_http_health(
    backend: str, url: str, timeout: float = PROBE_TIMEOUT_S, *, version: str | None = None
) -> ProbeResult:
    """Healthy when ``url`` answers 200; ``version``: what the result reports as running."""
    import httpx

    async def check() -> tuple[str, str | None]:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        return f"health endpoint {response.status_code}", version

    return await _run(backend, check, timeout)


async def probe_trace_pipeline(
    exporter: OtlpExporterSettings, query_url: str, timeout: float = 15.0
) -> ProbeResult:
    """Export one span with the OTLP exporter the shop uses (``OTEL_EXPORTER_OTLP_[TRACES_]*``)
    and read it back from the trace query API."""

    import httpx

    otlp_protocol = exporter.protocol

    async def check() -> tuple[str, str | None]:
        trace_id = await asyncio.to_thread(_export_probe_span, exporter)
        url = f"{query_url.rstrip('/')}/api/traces/{trace_id}"
        async with httpx.AsyncClient(timeout=5) as client:
            while True:
                response = await client.get(url)
                if response.status_code == 200 and response.json().get("data"):
                    return f"span exported over OTLP/{otlp_protocol} and read back", None
                await asyncio.sleep(0.3)

    return await _run("traces", check, timeout)


def _export_probe_span(otlp: OtlpExporterSettings) -> str:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME

    from ecomctl.telemetry.exporters import otlp_span_exporter

    endpoint = otlp.endpoint
    exporter = otlp_span_exporter(otlp)
    finished: list[ReadableSpan] = []

    class Collect(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            finished.append(span)

    provider = TracerProvider(resource=Resource({SERVICE_NAME: "ecomctl-doctor"}))
    provider.add_span_processor(Collect())
    with provider.get_tracer("ecomctl.doctor").start_as_current_span("doctor.probe") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    try:
        if exporter.export(finished) is not SpanExportResult.SUCCESS:
            raise RuntimeError(f"OTLP export to {endpoint} failed")
    finally:
        exporter.shutdown()
        provider.shutdown()
    return trace_id
