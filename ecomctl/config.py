"""One frozen settings object, read from the environment.

The variable names follow the ecosystem (``DATABASE_URL``, ``REDIS_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ``ELASTICSEARCH_URL``, the standard ``OTEL_*`` ones) and every
default points at the local stack that ``ecomctl stack up`` runs, so that a fresh checkout
works without any configuration and a Docker Compose user only has to export the same names.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ecomctl.errors import ConfigError


@dataclass(frozen=True)
class LocalPorts:
    """Ports of the local stack: away from the defaults so it never meets a system server."""

    postgres: int = 15432
    redis: int = 16379
    redis_cache: int = 16380  # the cache's own Redis: evicts its keys, never a session
    kafka: int = 19092
    kafka_controller: int = 19093
    elasticsearch: int = 19200
    elasticsearch_transport: int = 19300
    otlp_grpc: int = 14317
    otlp_http: int = 14318
    trace_query: int = 17686
    trace_health: int = 13133
    span_metrics: int = 18889  # the collector's /metrics (RED from spans, the apps' metrics)
    trace_ui: int = 19411  # Zipkin (its Lens UI)
    prometheus: int = 19090


LOCAL_PORTS = LocalPorts()
LOCAL_HOST = "127.0.0.1"
LOCAL_DB_USER = "ecomctl"
LOCAL_DB_PASSWORD = "ecomctl"
LOCAL_DB_NAME = "ecomctl"


def local_stack_env() -> dict[str, str]:
    """The client-side variables that point at the local stack (what ``stack env`` prints)."""
    p, h = LOCAL_PORTS, LOCAL_HOST
    return {
        "DATABASE_URL": (
            f"postgresql://{LOCAL_DB_USER}:{LOCAL_DB_PASSWORD}@{h}:{p.postgres}/{LOCAL_DB_NAME}"
        ),
        "REDIS_URL": f"redis://{h}:{p.redis}/0",
        "REDIS_CACHE_URL": f"redis://{h}:{p.redis_cache}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"{h}:{p.kafka}",
        "ELASTICSEARCH_URL": f"http://{h}:{p.elasticsearch}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{h}:{p.otlp_grpc}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "ECOMCTL_TRACE_QUERY_URL": f"http://{h}:{p.trace_query}",
        "ECOMCTL_TRACE_UI_URL": f"http://{h}:{p.trace_ui}/zipkin",
        "ECOMCTL_METRICS_URL": f"http://{h}:{p.prometheus}",
    }


_OTLP_PROTOCOLS = ("grpc", "http/protobuf")
_OTLP_SIGNAL_PATHS = {"traces": "v1/traces", "metrics": "v1/metrics"}
_EXPORTERS = ("otlp", "console", "none")
"""What ``OTEL_TRACES_EXPORTER`` and ``OTEL_METRICS_EXPORTER`` accept (comma separated)."""
DEFAULT_PROPAGATORS = ("tracecontext", "baggage")
_PROPAGATOR_PACKAGES = {
    "b3": "opentelemetry-propagator-b3", "b3multi": "opentelemetry-propagator-b3",
    "jaeger": "opentelemetry-propagator-jaeger", "xray": "opentelemetry-propagator-aws-xray",
    "ottrace": "opentelemetry-propagator-ot-trace",
}
"""Where the specification's other propagators come from, to say so when one is missing."""
DEFAULT_SEMCONV_OPT_IN = ("database", "http", "messaging")
"""ecomctl's ``OTEL_SEMCONV_STABILITY_OPT_IN`` when it is not set: the current database and
HTTP conventions from the instrumentations, and the current messaging names from ecomctl's
own span processor (``telemetry/semconv.py``; the Kafka instrumentation has no switch)."""
DEFAULT_OTLP_TIMEOUT_MS = 5_000
"""ecomctl's export timeout (the specification's is 10 s): a CLI run whose trace backend is
down should not wait long at exit."""
_INDEFINITE_MS = 2**31 - 1
"""A timeout of 0 means no limit (the specification); this long is what the exporters get."""


def _local_otlp_endpoint(protocol: str, signal: str | None) -> str:
    """The local stack's receiver for ``protocol``; with ``signal``, its OTLP/HTTP path too."""
    if protocol == "grpc":
        return f"http://{LOCAL_HOST}:{LOCAL_PORTS.otlp_grpc}"
    base = f"http://{LOCAL_HOST}:{LOCAL_PORTS.otlp_http}"
    return f"{base}/{_OTLP_SIGNAL_PATHS[signal]}" if signal else base


@dataclass(frozen=True)
class OtlpExporterSettings:
    """How one signal is exported over OTLP, as the OpenTelemetry specification resolves it:
    the signal's own ``OTEL_EXPORTER_OTLP_{TRACES,METRICS}_<OPTION>`` first, then the common
    ``OTEL_EXPORTER_OTLP_<OPTION>``, then the local stack's default."""

    signal: str
    """``traces`` or ``metrics``."""
    protocol: str = "grpc"
    """``grpc`` or ``http/protobuf`` (``PROTOCOL``)."""
    endpoint: str = ""
    """The exporter's target (``ENDPOINT``). OTLP/HTTP: the signal's full URL (the common
    endpoint plus ``/v1/<signal>``; a signal endpoint as given). gRPC: a URL or host:port."""
    insecure: bool = True
    """gRPC without TLS: an ``http://`` endpoint, or ``INSECURE=true`` with a host:port one."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """``HEADERS``: ``key=value,...``, values percent-decoded, keys lower-cased (gRPC)."""
    timeout_s: float = DEFAULT_OTLP_TIMEOUT_MS / 1000
    """``TIMEOUT`` (milliseconds in the variable; 0: no limit)."""
    compression: str | None = None
    """``COMPRESSION``: ``gzip`` or none."""
    certificate: str | None = None
    """``CERTIFICATE``: the CA file that verifies the collector's certificate."""
    client_key: str | None = None
    """``CLIENT_KEY``: the private key file of the client certificate (mTLS)."""
    client_certificate: str | None = None
    """``CLIENT_CERTIFICATE``: the client certificate file (mTLS)."""

    @classmethod
    def local(cls, signal: str) -> OtlpExporterSettings:
        """The local stack's OTLP/gRPC receiver (nothing configured)."""
        return cls(signal, endpoint=_local_otlp_endpoint("grpc", signal))

    @classmethod
    def from_env(cls, source: Mapping[str, str], signal: str) -> OtlpExporterSettings:
        common, own = "OTEL_EXPORTER_OTLP_", f"OTEL_EXPORTER_OTLP_{signal.upper()}_"

        def pick(option: str) -> tuple[str, str]:
            """(variable, value): the signal's own variable when set, else the common one."""
            for name in (own + option, common + option):
                value = source.get(name, "").strip()
                if value:
                    return name, value
            return own + option, ""

        name, protocol = pick("PROTOCOL")
        protocol = _choice(name, protocol or "grpc", _OTLP_PROTOCOLS)
        name, endpoint = pick("ENDPOINT")
        if not endpoint:
            endpoint = _local_otlp_endpoint(protocol, signal)
        elif protocol != "grpc":
            endpoint = _url(name, endpoint, ("http", "https"))
            if name == common + "ENDPOINT":  # a base URL: the signal's path is appended
                endpoint = f"{endpoint.rstrip('/')}/{_OTLP_SIGNAL_PATHS[signal]}"
        else:
            endpoint = _grpc_target(name, endpoint)
        scheme = endpoint.partition("://")[0] if "://" in endpoint else ""
        insecure_name, insecure_value = pick("INSECURE")
        insecure = _otel_bool(insecure_name, insecure_value)
        if scheme:  # the scheme decides; INSECURE is for host:port endpoints only
            insecure = scheme == "http"
        name, timeout = pick("TIMEOUT")
        timeout_ms = _number(name, timeout, int, DEFAULT_OTLP_TIMEOUT_MS, low=0)
        name, compression = pick("COMPRESSION")
        compression = _choice(name, compression.lower() or "none", ("gzip", "none"))
        name, headers = pick("HEADERS")
        header_pairs = _key_values(name, headers, lower_keys=True)

        def file(option: str) -> str | None:
            name, path = pick(option)
            if not path:
                return None
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"{name}={path!r}: no such file")
            return str(Path(path).expanduser())

        return cls(
            signal, protocol=protocol, endpoint=endpoint, insecure=insecure,
            headers=header_pairs,
            timeout_s=(timeout_ms or _INDEFINITE_MS) / 1000,
            compression=None if compression == "none" else compression,
            certificate=file("CERTIFICATE"), client_key=file("CLIENT_KEY"),
            client_certificate=file("CLIENT_CERTIFICATE"),
        )


@dataclass(frozen=True)
class BatchSpanSettings:
    """How finished spans are batched on their way to the span exporters (``OTEL_BSP_*``):
    by the export process's queue (``ECOMCTL_SPAN_EXPORT=process``, the default), by the SDK's
    ``BatchSpanProcessor`` (``thread``, the console exporter, Locust's request spans). The run's
    own capture file (``--trace-file``) has a queue of its own, sized for a run's burst.

    ecomctl's defaults differ from the specification's where a serving process needs it."""

    schedule_delay_ms: int = 500
    """``OTEL_BSP_SCHEDULE_DELAY``: the longest a span waits for its batch (specification:
    5000; a live dashboard wants sooner)."""
    export_timeout_ms: int = 30_000
    """``OTEL_BSP_EXPORT_TIMEOUT``: the longest one batch's export may take, retries included
    (0: no limit); an OTLP exporter gets the shorter of this and its own ``TIMEOUT``."""
    max_queue_size: int = 65_536
    """``OTEL_BSP_MAX_QUEUE_SIZE``: spans waiting beyond this are dropped (specification:
    2048, which a gateway's burst fills)."""
    max_export_batch_size: int = 1_024
    """``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``: spans per export, at most the queue size
    (specification: 512)."""

    @property
    def export_timeout_s(self) -> float | None:
        """The export timeout in seconds, None for no limit."""
        return self.export_timeout_ms / 1000 if self.export_timeout_ms else None

    @classmethod
    def from_env(cls, source: Mapping[str, str]) -> BatchSpanSettings:
        default = cls()

        def number(name: str, fallback: int, *, low: int) -> int:
            value: int = _number(name, source.get(name, "").strip(), int, fallback, low=low)
            return value

        queue = number("OTEL_BSP_MAX_QUEUE_SIZE", default.max_queue_size, low=1)
        batch_name = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
        batch = number(batch_name, min(default.max_export_batch_size, queue), low=1)
        if batch > queue:
            raise ConfigError(f"{batch_name}={batch}: must not exceed OTEL_BSP_MAX_QUEUE_SIZE "
                              f"({queue})")
        return cls(
            schedule_delay_ms=number("OTEL_BSP_SCHEDULE_DELAY", default.schedule_delay_ms,
                                     low=1),
            export_timeout_ms=number("OTEL_BSP_EXPORT_TIMEOUT", default.export_timeout_ms,
                                     low=0),
            max_queue_size=queue, max_export_batch_size=batch,
        )


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_s`` a second."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_s > 0 and self.burst >= 1):
            raise ConfigError(f"rate limit {self.per_s}/s burst {self.burst}: both must be > 0")

    def __str__(self) -> str:
        return f"{self.per_s:g}/s,{self.burst}"


@dataclass(frozen=True)
class PushBack:
    """How the gateway refuses work it cannot do well, instead of queueing it without bound.

    The per-address limits are sized for one machine's own load generators: ``checkout
    simulate`` and Locust log every shopper in at once from 127.0.0.1, and a login that
    succeeds gives its token back, so only failed logins (guessing, unknown emails) drain the
    login bucket. Registrations always count.
    """

    login: RateLimit | None = RateLimit(per_s=1.0, burst=100)
    """``ECOMCTL_LOGIN_LIMIT``: per client address, ``RATE/s,BURST`` or ``off``."""
    register: RateLimit | None = RateLimit(per_s=2.0, burst=100)
    """``ECOMCTL_REGISTER_LIMIT``: per client address, ``RATE/s,BURST`` or ``off``."""
    forwarded_allow_ips: tuple[str, ...] = ()
    """``ECOMCTL_FORWARDED_ALLOW_IPS`` (``serve --forwarded-allow-ips``): the proxies, comma
    separated addresses or networks (``*``: any), whose ``X-Forwarded-For`` names the client.
    Empty (the default), the header is ignored: anyone can send it."""
    db_acquire_timeout_s: float = 2.0
    """``ECOMCTL_DB_ACQUIRE_TIMEOUT``: longest wait for a pooled PostgreSQL connection (503)."""
    hash_queue: int = 16
    """``ECOMCTL_HASH_QUEUE``: password hashes that may wait for a CPU slot (503 beyond)."""
    limit_concurrency: int | None = 1024
    """``ECOMCTL_LIMIT_CONCURRENCY``: connections plus in-flight requests per gateway process
    before uvicorn answers 503 at once (``0``: no limit). Idle keep-alive connections count,
    so it must exceed the number of concurrent clients (shoppers, Locust users)."""

    @classmethod
    def from_env(cls, source: Mapping[str, str]) -> PushBack:
        def get(name: str) -> str:
            return source.get(name, "").strip()

        default = cls()
        if get("ECOMCTL_TRUST_FORWARDED_FOR"):
            raise ConfigError("ECOMCTL_TRUST_FORWARDED_FOR is replaced by "
                              "ECOMCTL_FORWARDED_ALLOW_IPS: name the proxies you trust")
        concurrency = _number("ECOMCTL_LIMIT_CONCURRENCY", get("ECOMCTL_LIMIT_CONCURRENCY"),
                              int, default.limit_concurrency or 0, low=0)
        return cls(
            login=_rate_limit("ECOMCTL_LOGIN_LIMIT", get("ECOMCTL_LOGIN_LIMIT"), default.login),
            register=_rate_limit("ECOMCTL_REGISTER_LIMIT", get("ECOMCTL_REGISTER_LIMIT"),
                                 default.register),
            forwarded_allow_ips=forwarded_allow_ips(get("ECOMCTL_FORWARDED_ALLOW_IPS")),
            db_acquire_timeout_s=_number("ECOMCTL_DB_ACQUIRE_TIMEOUT",
                                         get("ECOMCTL_DB_ACQUIRE_TIMEOUT"), float,
                                         default.db_acquire_timeout_s, low=0.001),
            hash_queue=_number("ECOMCTL_HASH_QUEUE", get("ECOMCTL_HASH_QUEUE"), int,
                               default.hash_queue, low=0),
            limit_concurrency=concurrency or None,
        )


@dataclass(frozen=True)
class Settings:
    """Where ecomctl's clients connect, and how they trace."""

    database_url: str
    redis_url: str
    """``REDIS_URL``: sessions, carts, login throttles and rate limits (never evicted)."""
    redis_cache_url: str
    """``REDIS_CACHE_URL``: the product and recommendation caches (L2) and their
    invalidations, in a Redis of their own that evicts least-recently-used keys when full;
    default: the local stack's, or ``REDIS_URL`` when only that is set."""
    kafka_bootstrap_servers: tuple[str, ...]
    elasticsearch_url: str
    otlp_endpoint: str
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` (default: the local stack's receiver for
    ``otlp_protocol``). The exporters use ``traces_otlp`` and ``metrics_otlp``, where the
    signal's own variables are applied too."""
    otlp_protocol: str
    """``OTEL_EXPORTER_OTLP_PROTOCOL`` (default ``grpc``)."""
    trace_query_url: str
    trace_ui_url: str = ""
    """Where a person looks at a trace (``ECOMCTL_TRACE_UI_URL``, default the local stack's
    Zipkin): ``<url>/traces/<trace id>``."""
    metrics_url: str = ""
    """The metrics backend (``ECOMCTL_METRICS_URL``, default the local stack's Prometheus)."""
    search_alias: str = "ecomctl-products"
    """The Elasticsearch alias of the product index (``ECOMCTL_SEARCH_ALIAS``)."""
    kafka_topic_prefix: str = ""
    """Put before every Kafka topic name (``ECOMCTL_KAFKA_TOPIC_PREFIX``), so two shops (the
    bench's scratch one and yours) can share a broker without consuming each other's events."""
    consumer_max_attempts: int = 3
    """Tries of a failing event before its consumer dead-letters it to ``<topic>.dlq``
    (``ECOMCTL_CONSUMER_MAX_ATTEMPTS``); a non-retryable failure is dead-lettered at once."""
    consumer_retry_backoff_s: float = 0.1
    """The first pause between two tries, doubling each time
    (``ECOMCTL_CONSUMER_RETRY_BACKOFF_S``)..."""
    consumer_max_backoff_s: float = 5.0
    """...up to this (``ECOMCTL_CONSUMER_MAX_BACKOFF_S``)."""
    pending_order_ttl_s: float = 900.0
    """How long a Pending order holds its stock before the sweeper cancels it
    (``ECOMCTL_PENDING_ORDER_TTL_S``)."""
    max_pending_orders: int = 3
    """Open Pending orders per customer; one more is refused with 409
    (``ECOMCTL_MAX_PENDING_ORDERS``)."""
    service_name: str = "ecomctl"
    """``OTEL_SERVICE_NAME``, else a ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``: the
    ``service.name`` of the process's metrics. Spans carry their own service's name
    (gateway, order, payment...) in its place."""
    traces_sampler: str = "parentbased_always_on"
    traces_sampler_arg: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    """``OTEL_RESOURCE_ATTRIBUTES``, values percent-decoded."""
    metrics_exporters: tuple[str, ...] = ("otlp",)
    """``OTEL_METRICS_EXPORTER``: ``otlp`` (to the collector, and on to the metrics backend;
    the default, as the specification says), ``console`` (standard output), both
    (``otlp,console``), or none (``none``: metrics stay in-process, for the run's report)."""
    exemplar_filter: str = "always_off"
    """``OTEL_METRICS_EXEMPLAR_FILTER``: ``always_off`` (ecomctl's default: sampling
    exemplars costs every measurement, and the collector's span metrics carry trace ids
    already), ``trace_based`` (the specification's default) or ``always_on``."""
    metric_export_interval_ms: int = 5_000
    """``OTEL_METRIC_EXPORT_INTERVAL``: how often metrics are exported (the specification's
    default is 60 s; a local dashboard wants 5)."""
    traces_exporters: tuple[str, ...] = ("otlp",)
    """``OTEL_TRACES_EXPORTER``: ``otlp``, ``console`` (standard output), both
    (``otlp,console``), or none (``none``). The in-process capture runs either way."""
    traces_otlp: OtlpExporterSettings = field(
        default_factory=lambda: OtlpExporterSettings.local("traces"))
    """``OTEL_EXPORTER_OTLP_[TRACES_]*``: where and how spans are exported."""
    span_export: str = "process"
    """``ECOMCTL_SPAN_EXPORT``: where spans are encoded and sent over OTLP: ``process`` (an
    export process beside each serving process, which then only queues spans; the default)
    or ``thread`` (the SDK's batch processor in the serving process, as OpenTelemetry
    does out of the box)."""
    batch: BatchSpanSettings = field(default_factory=BatchSpanSettings)
    """``OTEL_BSP_*``: how spans are batched for export, in either mode."""
    propagators: tuple[str, ...] = DEFAULT_PROPAGATORS
    """``OTEL_PROPAGATORS``: the installed propagators (entry points of the
    ``opentelemetry_propagator`` group) that inject and extract trace context on HTTP requests
    and Kafka records, in order; ``none``: no propagation (empty)."""
    semconv_opt_in: tuple[str, ...] = DEFAULT_SEMCONV_OPT_IN
    """``OTEL_SEMCONV_STABILITY_OPT_IN`` as given (any words: each instrumentation reads the
    ones it knows), else ecomctl's ``database,http,messaging``."""
    metrics_otlp: OtlpExporterSettings = field(
        default_factory=lambda: OtlpExporterSettings.local("metrics"))
    """``OTEL_EXPORTER_OTLP_[METRICS_]*``: where and how metrics are exported."""
    sdk_disabled: bool = False
    """``OTEL_SDK_DISABLED=true``: no spans and no metrics at all (no-op providers)."""
    push_back: PushBack = field(default_factory=PushBack)
    """Rate limits, queue bounds and timeouts (``ECOMCTL_*_LIMIT``, see ``PushBack``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: ``os.environ``); raise ConfigError when invalid."""
        source = os.environ if env is None else env
        defaults = local_stack_env()

        def get(name: str) -> str:
            value = source.get(name, "").strip()
            return value or defaults[name]

        def number(name: str, kind: type[int] | type[float], default: float, *,
                   low: float) -> Any:
            return _number(name, source.get(name, "").strip(), kind, default, low=low)

        protocol = _choice("OTEL_EXPORTER_OTLP_PROTOCOL",
                           source.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip() or "grpc",
                           _OTLP_PROTOCOLS)
        otlp_endpoint = source.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if protocol != "grpc" or "://" in otlp_endpoint:
            otlp_endpoint = _url("OTEL_EXPORTER_OTLP_ENDPOINT",
                                 otlp_endpoint or _local_otlp_endpoint(protocol, None),
                                 ("http", "https"))
        else:
            otlp_endpoint = _grpc_target("OTEL_EXPORTER_OTLP_ENDPOINT", otlp_endpoint
                                         or _local_otlp_endpoint(protocol, None))
        resource_attributes = _key_values(
            "OTEL_RESOURCE_ATTRIBUTES", source.get("OTEL_RESOURCE_ATTRIBUTES", "")
        )
        return cls(
            database_url=_url("DATABASE_URL", get("DATABASE_URL"), ("postgresql", "postgres")),
            redis_url=_url("REDIS_URL", get("REDIS_URL"), ("redis", "rediss")),
            redis_cache_url=_url("REDIS_CACHE_URL", _cache_url(source, defaults),
                                 ("redis", "rediss")),
            kafka_bootstrap_servers=_host_ports(
                "KAFKA_BOOTSTRAP_SERVERS", get("KAFKA_BOOTSTRAP_SERVERS")
            ),
            elasticsearch_url=_url(
                "ELASTICSEARCH_URL", get("ELASTICSEARCH_URL"), ("http", "https")
            ),
            otlp_endpoint=otlp_endpoint,
            otlp_protocol=protocol,
            trace_query_url=_url(
                "ECOMCTL_TRACE_QUERY_URL", get("ECOMCTL_TRACE_QUERY_URL"), ("http", "https")
            ),
            trace_ui_url=_url(
                "ECOMCTL_TRACE_UI_URL", get("ECOMCTL_TRACE_UI_URL"), ("http", "https")
            ).rstrip("/"),
            metrics_url=_url(
                "ECOMCTL_METRICS_URL", get("ECOMCTL_METRICS_URL"), ("http", "https")
            ).rstrip("/"),
            search_alias=_index_name(
                "ECOMCTL_SEARCH_ALIAS",
                source.get("ECOMCTL_SEARCH_ALIAS", "").strip() or "ecomctl-products",
            ),
            kafka_topic_prefix=_topic_prefix(source.get("ECOMCTL_KAFKA_TOPIC_PREFIX", "").strip()),
            consumer_max_attempts=number("ECOMCTL_CONSUMER_MAX_ATTEMPTS", int,
                                         cls.consumer_max_attempts, low=1),
            consumer_retry_backoff_s=number("ECOMCTL_CONSUMER_RETRY_BACKOFF_S", float,
                                            cls.consumer_retry_backoff_s, low=0),
            consumer_max_backoff_s=number("ECOMCTL_CONSUMER_MAX_BACKOFF_S", float,
                                          cls.consumer_max_backoff_s, low=0),
            pending_order_ttl_s=number("ECOMCTL_PENDING_ORDER_TTL_S", float,
                                       cls.pending_order_ttl_s, low=0.1),
            max_pending_orders=number("ECOMCTL_MAX_PENDING_ORDERS", int,
                                      cls.max_pending_orders, low=1),
            service_name=source.get("OTEL_SERVICE_NAME", "").strip()
            or resource_attributes.get("service.name") or "ecomctl",
            traces_sampler=_sampler(source.get("OTEL_TRACES_SAMPLER", "")),
            traces_sampler_arg=_sampler_arg(source.get("OTEL_TRACES_SAMPLER", ""),
                                            source.get("OTEL_TRACES_SAMPLER_ARG", "")),
            metrics_exporters=_exporters("OTEL_METRICS_EXPORTER",
                                         source.get("OTEL_METRICS_EXPORTER", "")),
            exemplar_filter=_choice(
                "OTEL_METRICS_EXEMPLAR_FILTER",
                source.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip().lower() or "always_off",
                ("always_off", "trace_based", "always_on"),
            ),
            metric_export_interval_ms=number("OTEL_METRIC_EXPORT_INTERVAL", int,
                                             cls.metric_export_interval_ms, low=1),
            resource_attributes=resource_attributes,
            traces_exporters=_exporters("OTEL_TRACES_EXPORTER",
                                        source.get("OTEL_TRACES_EXPORTER", "")),
            traces_otlp=OtlpExporterSettings.from_env(source, "traces"),
            span_export=_choice("ECOMCTL_SPAN_EXPORT",
                                source.get("ECOMCTL_SPAN_EXPORT", "").strip().lower()
                                or "process",
                                ("process", "thread")),
            batch=BatchSpanSettings.from_env(source),
            propagators=_propagators(source.get("OTEL_PROPAGATORS", "")),
            semconv_opt_in=_words(source.get("OTEL_SEMCONV_STABILITY_OPT_IN", ""))
            or DEFAULT_SEMCONV_OPT_IN,
            metrics_otlp=OtlpExporterSettings.from_env(source, "metrics"),
            sdk_disabled=_otel_bool("OTEL_SDK_DISABLED", source.get("OTEL_SDK_DISABLED", "")),
            push_back=PushBack.from_env(source),
        )


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"{name}={value!r}: expected a URL like {schemes[0]}://host:port/...")
    try:
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: {exc}") from exc
    return value


_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,254}")


def _index_name(name: str, value: str) -> str:
    if not _INDEX_NAME.fullmatch(value):
        raise ConfigError(f"{name}={value!r}: expected a lower-case Elasticsearch index name")
    return value


def _topic_prefix(value: str) -> str:
    # Kafka's legal topic characters; the rest of the name must still fit in 249.
    if not re.fullmatch(r"[A-Za-z0-9._-]{0,200}", value):
        raise ConfigError(f"ECOMCTL_KAFKA_TOPIC_PREFIX={value!r}: expected letters, digits, "
                          "'.', '_' or '-' (at most 200)")
    return value


def _rate_limit(name: str, value: str, default: RateLimit | None) -> RateLimit | None:
    """``RATE/s,BURST`` (``5/s,100``; ``/s`` optional) or ``off``; empty: the default."""
    if not value:
        return default
    if value.lower() in ("off", "0", "none"):
        return None
    rate, sep, burst = value.partition(",")
    rate = rate.strip().removesuffix("/s")
    try:
        if not sep:
            raise ValueError
        return RateLimit(float(rate), int(burst))
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{name}={value!r}: expected RATE/s,BURST with both > 0 "
                          "(e.g. 5/s,100) or off") from exc


SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
            "parentbased_always_off", "parentbased_traceidratio")


def _sampler(value: str) -> str:
    """``OTEL_TRACES_SAMPLER``: one of the spec's names, in any case."""
    name = value.strip().lower() or "parentbased_always_on"
    if name not in SAMPLERS:
        raise ConfigError(f"OTEL_TRACES_SAMPLER={value.strip()!r}: expected one of "
                          f"{', '.join(SAMPLERS)}")
    return name


def _sampler_arg(sampler: str, value: str) -> str | None:
    """``OTEL_TRACES_SAMPLER_ARG``: a ratio in [0, 1], read only by the ratio samplers (the
    others ignore it, as the spec says)."""
    value = value.strip()
    if not value or not _sampler(sampler).endswith("traceidratio"):
        return None
    try:
        ratio = float(value)
    except ValueError:
        ratio = math.nan
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG={value!r}: expected a sampling ratio "
                          "from 0 to 1 (e.g. 0.1)")
    return value


def _cache_url(source: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    """``REDIS_CACHE_URL``, else the local stack's cache when ``REDIS_URL`` is the local
    stack's too, else ``REDIS_URL`` (a deployment with one Redis keeps working)."""
    if cache := source.get("REDIS_CACHE_URL", "").strip():
        return cache
    redis = source.get("REDIS_URL", "").strip()
    return redis if redis and redis != defaults["REDIS_URL"] else defaults["REDIS_CACHE_URL"]


def forwarded_allow_ips(value: str) -> tuple[str, ...]:
    """``ECOMCTL_FORWARDED_ALLOW_IPS``: ``*``, or addresses and networks, comma separated."""
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"ECOMCTL_FORWARDED_ALLOW_IPS: {item!r} is not an address or "
                              "network (expected e.g. 10.0.0.5,192.168.0.0/16 or *)") from None
    return items


def _number(
    name: str, value: str, kind: type[int] | type[float], default: float, *, low: float
) -> Any:
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < low:
        raise ConfigError(f"{name}={value!r}: expected a {kind.__name__} >= {low:g}")
    return number


def _choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def _host_ports(name: str, value: str) -> tuple[str, ...]:
    servers = tuple(item.strip() for item in value.split(",") if item.strip())
    for server in servers:
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}={value!r}: expected host:port[,host:port...]")
    if not servers:
        raise ConfigError(f"{name} is empty: expected host:port[,host:port...]")
    return servers


def _key_values(name: str, value: str, *, lower_keys: bool = False) -> dict[str, str]:
    """``key1=value1,key2=value2`` as in W3C Baggage (what ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_EXPORTER_OTLP_*HEADERS`` hold): values are percent-decoded, so ``%2C`` is a comma
    and ``%3D`` an equals sign inside a value."""
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{name}: {item!r} is not key=value")
        pairs[key.lower() if lower_keys else key] = unquote(val.strip())
    return pairs


def _otel_bool(name: str, value: str) -> bool:
    """An OpenTelemetry boolean: only ``true`` (any case) is true; empty is false. Any
    other word is refused rather than silently taken for false (``1``, ``yes``...)."""
    word = value.strip().lower()
    if word in ("", "false"):
        return False
    if word == "true":
        return True
    raise ConfigError(f"{name}={value!r}: expected true or false")


def _grpc_target(name: str, value: str) -> str:
    """An OTLP/gRPC endpoint: an http(s) URL, or host:port as gRPC itself takes it."""
    if "://" in value:
        return _url(name, value, ("http", "https"))
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={value!r}: expected http(s)://host:port or host:port")
    return value


def _words(value: str) -> tuple[str, ...]:
    """A comma-separated list, lower case, each word once, in order."""
    return tuple(dict.fromkeys(w for w in (p.strip().lower() for p in value.split(",")) if w))


def _exporters(name: str, value: str) -> tuple[str, ...]:
    """``OTEL_TRACES_EXPORTER`` or ``OTEL_METRICS_EXPORTER``: a comma-separated list,
    ``otlp`` when empty; ``none`` adds nothing."""
    names = _words(value) or ("otlp",)
    for item in names:
        if item not in _EXPORTERS:
            raise ConfigError(f"{name}={value.strip()!r}: {item!r} is not one ecomctl has "
                              f"(expected {', '.join(_EXPORTERS)})")
    return tuple(item for item in names if item != "none")


@functools.cache
def installed_propagators() -> tuple[str, ...]:
    """The propagators the installed packages register (``opentelemetry_propagator`` entry
    points): what ``OTEL_PROPAGATORS`` may name."""
    from importlib.metadata import entry_points

    return tuple(sorted({e.name for e in entry_points(group="opentelemetry_propagator")}))


def propagators_error(env: Mapping[str, str] | None = None) -> ConfigError | None:
    """What is wrong with ``OTEL_PROPAGATORS``, if anything. The OpenTelemetry API reads the
    variable itself when ``opentelemetry.propagate`` is first imported, and a name it cannot
    load is a bare ``ValueError`` from that import, often before ``Settings`` is read: the
    CLI asks this to tell that error for what it is."""
    try:
        _propagators((os.environ if env is None else env).get("OTEL_PROPAGATORS", ""))
    except ConfigError as exc:
        return exc
    return None


def _propagators(value: str) -> tuple[str, ...]:
    """``OTEL_PROPAGATORS``: installed propagators, comma separated (default
    ``tracecontext,baggage``), or ``none`` alone."""
    names = _words(value)
    if not names:
        return DEFAULT_PROPAGATORS
    if "none" in names:
        if len(names) > 1:
            raise ConfigError(f"OTEL_PROPAGATORS={value.strip()!r}: none turns propagation "
                              "off, it cannot be combined with a propagator")
        return ()
    installed = installed_propagators()
    for item in names:
        if item not in installed:
            package = _PROPAGATOR_PACKAGES.get(item)
            why = f"it needs {package}, which is not installed" if package else "unknown"
            raise ConfigError(f"OTEL_PROPAGATORS={value.strip()!r}: {item!r}: {why} "
                              f"(installed: {', '.join(installed)}; or none)")
    return names


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the local stack keeps data, logs and pid files (``$ECOMCTL_HOME``).

    Root gets the system location (``/var/lib/ecomctl``): the servers run as an unprivileged
    user who cannot enter ``/root``.
    """
    source = os.environ if env is None else env
    if source.get("ECOMCTL_HOME"):
        return Path(source["ECOMCTL_HOME"]).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/lib/ecomctl")
    base = source.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ecomctl"


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where downloads and builds are cached (``$ECOMCTL_CACHE_DIR``); kept across ``down``."""
    source = os.environ if env is None else env
    if source.get("ECOMCTL_CACHE_DIR"):
        return Path(source["ECOMCTL_CACHE_DIR"]).expanduser().absolute()
    if os.geteuid() == 0:
        return Path("/var/cache/ecomctl")
    base = source.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ecomctl"
