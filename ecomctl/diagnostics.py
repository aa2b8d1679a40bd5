"""``ecomctl doctor``: every backend checked through the product's own clients.

The checks run one after another so that each latency is that backend's alone (concurrent
checks would charge one client's import and start-up time to the others).
"""

from __future__ import annotations

from ecomctl.adapters import probes
from ecomctl.config import Settings


async def run_doctor(settings: Settings) -> list[probes.ProbeResult]:
    cache = ([await probes.probe_redis(settings.redis_cache_url, name="redis-cache")]
             if settings.redis_cache_url != settings.redis_url else [])
    return [
        await probes.probe_postgres(settings.database_url),
        await probes.probe_redis(settings.redis_url),
        *cache,
        await probes.probe_kafka(",".join(settings.kafka_bootstrap_servers), create_topic=True),
        await probes.probe_elasticsearch(settings.elasticsearch_url),
        await probes.probe_trace_pipeline(settings.traces_otlp, settings.trace_query_url),
    ]
