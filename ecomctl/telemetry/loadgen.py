"""The load generator's own spans: every Locust request a CLIENT span of service ``loadgen``.

A load request carries trace context into the gateway; unless the request itself is a span,
the gateway's server span is an orphan (its parent is nowhere). ``scenarios/otel_hook.py``
starts a ``ClientSpan`` per request and sends *its* context (``ClientSpan.headers``, written by
the ``OTEL_PROPAGATORS`` propagators, ``traceparent`` by default), so the trace of a load
request starts at the client, and the client's latency of one request can be set against the
server's.

The variables are read by the shop's own parser (``Settings``), so they mean here what they
mean to ``serve`` and ``checkout simulate``: the same default protocol (``grpc``), exporters,
sampler, propagators and batching (``OTEL_BSP_*``). Locust runs under gevent, so spans are
exported over OTLP/**HTTP** only (OTLP/gRPC under gevent's monkey patching is not worth the
risk), by the SDK's ``BatchSpanProcessor``, and flushed when the test stops. Where they go:

- the traces endpoint of ``Settings.traces_otlp`` when its protocol is ``http/protobuf``
  (``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL``) and an endpoint variable is set
  (``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``; none set, a plain ``locust -f`` exports
  nothing); with ``grpc`` a warning says to choose ``http/protobuf``. ``ecomctl load run``
  sets both for its Locust processes (``locust_otlp_env``). ``OTEL_TRACES_EXPORTER`` without
  ``otlp`` or ``OTEL_SDK_DISABLED=true`` turn the export off;
- ``$ECOMCTL_LOAD_SPAN_DIR/loadgen-<pid>.jsonl`` (OTLP JSON lines, ``trace_store``), which
  ``ecomctl load run`` appends to the gateway's capture. A worker started by ``ecomctl load
  worker`` (``ECOMCTL_LOAD_SPANS_TO_MASTER=1``; maybe on another host) sends its batches to
  the master instead, which writes them there (``scenarios/otel_hook.py``).

Neither configured (plain ``locust -f``): no tracing, no error. This module imports no Locust
and no gevent; ``ecomctl load run`` uses ``locust_otlp_env`` and ``append_captures``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from ecomctl import __version__
from ecomctl.config import OtlpExporterSettings, Settings
from ecomctl.telemetry.exporters import batch_processor, otlp_span_exporter
from ecomctl.telemetry.propagation import propagator_from
from ecomctl.telemetry.sampling import sampler_from
from ecomctl.telemetry.trace_store import capture_processor

LOADGEN_SERVICE = "loadgen"
SPAN_DIR_ENV = "ECOMCTL_LOAD_SPAN_DIR"
SPANS_TO_MASTER_ENV = "ECOMCTL_LOAD_SPANS_TO_MASTER"
CANCELLED = "loadgen.cancelled"
"""The attribute of a request span ended without an answer (its user was stopped)."""
CAPTURE_GLOB = "loadgen-*.jsonl"
HTTP_PROTOCOL = "http/protobuf"
FLUSH_TIMEOUT_MS = 10_000

log = logging.getLogger("ecomctl.loadgen")
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def loadgen_otlp(settings: Settings, env: Mapping[str, str]) -> OtlpExporterSettings | None:
    """Where this Locust process exports its spans over OTLP/HTTP (``settings.traces_otlp``,
    read from ``env``), or None: no endpoint variable in ``env`` (a plain ``locust -f``), the
    export turned off, or a gRPC protocol (with a warning)."""
    if settings.sdk_disabled or "otlp" not in settings.traces_exporters:
        return None
    if not any(env.get(name, "").strip() for name in _ENDPOINT_VARIABLES):
        return None
    otlp = settings.traces_otlp
    if otlp.protocol != HTTP_PROTOCOL:
        log.warning("OTLP protocol %r: the load generator exports over %s only (gevent); "
                    "set OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=%s and the collector's OTLP/HTTP "
                    "endpoint. Its spans are not exported.", otlp.protocol, HTTP_PROTOCOL,
                    HTTP_PROTOCOL)
        return None
    return otlp


def locust_otlp_env(settings: Settings) -> dict[str, str]:
    """What the Locust processes of ``ecomctl load run`` need to export where the gateway
    exports its spans (``settings.traces_otlp``, every standard variable applied): that
    collector's OTLP/HTTP traces URL. An OTLP/gRPC endpoint is mapped to the HTTP receiver
    on the next port, the pairing of the specification's 4317/4318 and of the local stack's
    14317/14318; set ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf`` (and its endpoint)
    for a collector that pairs them otherwise. Nothing when the gateway exports no spans over
    OTLP: the processes inherit the variables that say so."""
    otlp = settings.traces_otlp
    if settings.sdk_disabled or "otlp" not in settings.traces_exporters:
        return {}
    endpoint = otlp.endpoint
    if otlp.protocol != HTTP_PROTOCOL:
        if "://" not in endpoint:  # gRPC's host:port
            endpoint = f"{'http' if otlp.insecure else 'https'}://{endpoint}"
        parts = urlsplit(endpoint)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        endpoint = f"{parts.scheme}://{parts.hostname}:{port + 1}/v1/traces"
    return {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": HTTP_PROTOCOL}


# -- the client spans ---------------------------------------------------------------------------


@dataclass
class ClientSpan:
    """One request's span; ``headers`` carry its context (send them with the request)."""

    span: trace.Span
    start_ns: int
    headers: dict[str, str]
    ended: bool = field(default=False)

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` among ``headers`` (empty without ``tracecontext``)."""
        return self.headers.get("traceparent", "")

    def end(self, *, status_code: int | None, duration_ms: float | None,
            error: str | None, name: str | None = None) -> None:
        """The request finished: ``duration_ms`` is the client's own measure (Locust's
        response time), so the span lasts exactly what the load test reports. ``error``:
        the request failed by the load test's verdict (a 402 a scenario expects is not).
        ``name``: the endpoint it was recorded under, when not the one it started as (an
        attempt pushed back and sent again)."""
        if self.ended:
            return
        self.ended = True
        if name:
            self.span.update_name(name)
        if status_code:
            self.span.set_attribute("http.response.status_code", status_code)
        if error is not None:
            self.span.set_attribute("error.type", str(status_code) if status_code else error)
            self.span.set_status(Status(StatusCode.ERROR, error))
        end_ns = (self.start_ns + round(duration_ms * 1_000_000)
                  if duration_ms is not None else None)
        self.span.end(end_time=end_ns)

    def cancel(self) -> None:
        """The request never finished (its user was stopped mid-request). Still ended and
        exported: the gateway may have served it, and its span needs this parent."""
        if not self.ended:
            self.span.set_attribute(CANCELLED, True)
            self.ended = True
            self.span.end()


class LoadgenTracing:
    """The tracer provider of one Locust process (not the global one: Locust's own
    ``--otel`` may set that)."""

    def __init__(self, processors: list[SpanProcessor], settings: Settings | None = None) -> None:
        settings = Settings.from_env() if settings is None else settings
        # As the shop's processes do (telemetry/setup.py): ecomctl's namespace unless
        # OTEL_RESOURCE_ATTRIBUTES names one, and the service's own name, whatever
        # OTEL_SERVICE_NAME says (it names a process, and this one is the load generator).
        detected = Resource.create({"service.version": __version__})
        resource = Resource({"service.namespace": "ecomctl", **detected.attributes,
                             "service.name": LOADGEN_SERVICE})
        # The sampler comes from OTEL_TRACES_SAMPLER, as the gateway's does, checked the same
        # way (the SDK's own reading raises a traceback on a ratio above 1).
        self.provider = TracerProvider(resource=resource, shutdown_on_exit=False,
                                       sampler=sampler_from(settings))
        self._propagator: TextMapPropagator = propagator_from(settings)
        for processor in processors:
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("ecomctl.loadgen", __version__)
        self._servers: dict[str, tuple[str, int | None]] = {}

    def start(self, method: str, name: str, host: str, path: str) -> ClientSpan:
        """A CLIENT span named ``METHOD name`` (the endpoint as the load result keys it)."""
        server = self._servers.get(host)
        if server is None:
            parts = urlsplit(host)
            server = self._servers[host] = (parts.hostname or "", parts.port)
        attributes: dict[str, str | int] = {
            "http.request.method": method, "url.template": name,
            "url.full": f"{host.rstrip('/')}{path}", "server.address": server[0],
        }
        if server[1] is not None:
            attributes["server.port"] = server[1]
        start_ns = time.time_ns()
        span = self.tracer.start_span(f"{method} {name}", kind=SpanKind.CLIENT,
                                      attributes=attributes, start_time=start_ns)
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        return ClientSpan(span, start_ns, carrier)

    def flush(self) -> None:
        self.provider.force_flush(FLUSH_TIMEOUT_MS)

    def shutdown(self) -> None:
        self.provider.shutdown()


def tracing_from_env(
    env: Mapping[str, str] | None = None, extra: Sequence[SpanExporter] = ()
) -> LoadgenTracing | None:
    """This process's tracing, or None when neither an endpoint, nor a span directory, nor
    an ``extra`` exporter is there. Exporters are batched as ``OTEL_BSP_*`` say; the span
    directory's capture has its own queue, sized for a run."""
    source = os.environ if env is None else env
    settings = Settings.from_env(source)
    processors = [batch_processor(exporter, settings.batch) for exporter in extra]
    otlp = loadgen_otlp(settings, source)
    if otlp is not None:
        processors.append(batch_processor(otlp_span_exporter(otlp, settings.batch),
                                          settings.batch))
    span_dir = source.get(SPAN_DIR_ENV, "").strip()
    if span_dir:
        processors.append(capture_processor(Path(span_dir) / f"loadgen-{os.getpid()}.jsonl"))
    return LoadgenTracing(processors, settings) if processors else None


# -- ecomctl load run's side --------------------------------------------------------------------


def append_captures(span_dir: Path, trace_file: Path, pattern: str = CAPTURE_GLOB) -> int:
    """Append the capture files of ``span_dir`` (the Locust processes' by default) to
    ``trace_file`` (both OTLP JSON lines), so one file holds every load request's trace
    from its client span down. Returns the number of lines appended."""
    lines = 0
    files = sorted(span_dir.glob(pattern)) if span_dir.is_dir() else []
    if not files:
        return 0
    trace_file.parent.mkdir(parents=True, exist_ok=True)
    with trace_file.open("a", encoding="utf-8") as out:
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out.write(line + "\n")
                    lines += 1
    return lines
