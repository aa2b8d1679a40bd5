"""Jaeger v2 (an OpenTelemetry Collector distribution: OTLP in, traces on disk with the query
API, RED metrics from spans, metrics for Prometheus, spans to the trace UI), built from the Go
module proxy.

``go install jaeger@version`` is refused (Jaeger's go.mod has a ``replace`` directive, and the
v2 tags do not match the module path), so ecomctl builds it as a tool dependency of a tiny
module of its own, where replace directives of dependencies are ignored. v1.76.0 is the same
release as Jaeger v2.13.0.
"""

from __future__ import annotations

from pathlib import Path

from ecomctl.adapters.probes import ProbeResult, probe_http_health
from ecomctl.config import LOCAL_HOST, LOCAL_PORTS
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.backends.zipkin import KAFKA_TOPIC as ZIPKIN_TOPIC
from ecomctl.stack.host_tools import ToolNeed, tool_path
from ecomctl.stack.toolchain import run_logged

JAEGER_MODULE_VERSION = "v1.76.0"
JAEGER_RELEASE = "2.13.0"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_MIN_GO = (1, 24, 6)
"""The ``go`` line of Jaeger's go.mod at that version (``go get -tool`` itself needs 1.24)."""

# Traces: stored in Badger (on disk, kept TRACE_RETENTION), turned into RED metrics by the
# spanmetrics connector (so the Python processes pay nothing for them), and published to
# Kafka in Zipkin's JSON for the trace UI (backends/zipkin.py). Metrics: the applications'
# own (OTLP) and the RED ones, served at /metrics for Prometheus (backends/prometheus.py),
# every resource attribute a label, so the processes of one service stay apart
# (service.instance.id).
_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter, spanmetrics, kafka/zipkin]
    metrics:
      receivers: [otlp, spanmetrics]
      processors: [batch]
      exporters: [prometheus]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: {host}:{health}
  jaeger_query:
    enable_tracing: false
    storage:
      traces: badger_store
    http:
      endpoint: {host}:{query}
    grpc:
      endpoint: {host}:{query_grpc}
  jaeger_storage:
    backends:
      badger_store:
        badger:
          ephemeral: false
          directories:
            keys: {data}/badger/keys
            values: {data}/badger/values
          ttl:
            spans: {retention}
          # No fsync per write: the write-ahead log is memory-mapped, so a crash of the
          # process loses nothing, a crash of the machine the last moments.
          consistency: false
          maintenance_interval: 5m
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{otlp_grpc}
      http:
        endpoint: {host}:{otlp_http}
processors:
  batch:
    send_batch_size: 8192
    send_batch_max_size: 8192
    timeout: 200ms
connectors:
  spanmetrics:
    # One series per service, whatever its processes (their service.instance.id would make
    # new series with every process started: Prometheus' memory grows with series).
    resource_metrics_key_attributes: [service.name, service.namespace]
    histogram:
      unit: ms
      explicit:
        buckets: [2ms, 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2500ms, 5s, 10s]
    exemplars:
      enabled: true
    metrics_flush_interval: 5s
    metrics_expiration: 2m
exporters:
  jaeger_storage_exporter:
    trace_storage: badger_store
  prometheus:
    endpoint: {host}:{span_metrics}
    enable_open_metrics: true
    # A process gone for 2 minutes leaves the dashboard (its last values would stand still).
    metric_expiration: 2m
    resource_to_telemetry_conversion:
      enabled: true
  kafka/zipkin:
    brokers: [{kafka}]
    traces:
      topic: {zipkin_topic}
      encoding: zipkin_json
    # Messages of at most 200 spans (a whole batch would pass Kafka's 1 MB limit), and a
    # bounded queue while Kafka is away.
    sending_queue:
      sizer: items
      queue_size: 20000
      batch:
        min_size: 200
        max_size: 200
        flush_timeout: 500ms
"""

TRACE_RETENTION = "24h"
"""How long Jaeger keeps a trace on disk."""
MEMORY_LIMIT = "128MiB"
"""Go's soft memory limit (``GOMEMLIMIT``): Badger's caches are fixed by Jaeger, so this is
what keeps the collector's memory small (measured: 257 MB RSS after 100,000 traces, 615 MB
without it), at the cost of more garbage collection in bursts."""


def jaeger_config(*, host: str, data: str, kafka: str, ports: dict[str, int],
                  zipkin_topic: str = ZIPKIN_TOPIC) -> str:
    """The collector's configuration: listening on ``host`` at ``ports`` (health, query,
    query_grpc, otlp_grpc, otlp_http, span_metrics), Badger under ``data``, spans for the
    trace UI to ``zipkin_topic`` on Kafka at ``kafka``. The local stack's, and compose.yaml's
    (fixtures/compose/jaeger.yaml)."""
    return _CONFIG.format(host=host, data=data, kafka=kafka, retention=TRACE_RETENTION,
                          zipkin_topic=zipkin_topic, **ports)


# The container's standard ports, for compose.yaml.
CONTAINER_PORTS = {"health": 13133, "query": 16686, "query_grpc": 16685, "otlp_grpc": 4317,
                   "otlp_http": 4318, "span_metrics": 8889}


class JaegerBackend(Backend):
    name = "jaeger"
    parallel_install = True

    @property
    def ports(self) -> tuple[int, ...]:
        p = LOCAL_PORTS
        return (p.otlp_grpc, p.otlp_http, p.trace_query, p.trace_query + 1, p.trace_health,
                p.span_metrics)

    @property
    def binary(self) -> Path:
        return self.paths.cache / "bin" / f"jaeger-{JAEGER_RELEASE}"

    def installed_version(self) -> str | None:
        return JAEGER_RELEASE if self.binary.exists() else None

    def tool_needs(self) -> tuple[ToolNeed, ...]:
        return (ToolNeed("go", JAEGER_MIN_GO, "Jaeger's build (go get -tool)"),)

    def tool_env(self) -> dict[str, str]:
        """The build's Go environment, in ecomctl's cache; a toolchain that ``GOTOOLCHAIN``
        asks for is fetched into it too (once), when the version is checked."""
        go_root = self.paths.cache / "go"
        return {
            "GOPATH": str(go_root / "path"),
            "GOMODCACHE": str(go_root / "mod"),
            "GOCACHE": str(go_root / "build-cache"),
            "GOFLAGS": "-mod=mod",
            "CGO_ENABLED": "0",
        }

    def install(self, progress: Progress) -> None:
        log = self.paths.install_log(self.name)
        go = tool_path("go")
        module = self.paths.cache / "go" / "jaeger-build"
        module.mkdir(parents=True, exist_ok=True)
        env = self.tool_env()
        (module / "go.mod").unlink(missing_ok=True)
        run_logged([go, "mod", "init", "ecomctl.local/jaeger-build"], log_file=log,
                   what="go mod init", env=env, cwd=module)
        progress(f"go get -tool {JAEGER_PACKAGE}@{JAEGER_MODULE_VERSION}")
        run_logged([go, "get", "-tool", f"{JAEGER_PACKAGE}@{JAEGER_MODULE_VERSION}"],
                   log_file=log, what="go get jaeger", env=env, cwd=module)
        progress("go build (a few minutes on 2 cores, once)")
        version_pkg = "github.com/jaegertracing/jaeger/internal/version"
        partial = self.binary.with_suffix(".partial")
        run_logged(
            [
                go, "build", "-trimpath", "-o", str(partial),
                "-ldflags", f"-s -w -X {version_pkg}.latestVersion=v{JAEGER_RELEASE}",
                JAEGER_PACKAGE,
            ],
            log_file=log, what="go build jaeger", env=env, cwd=module, timeout=3600,
        )
        partial.chmod(0o755)
        partial.rename(self.binary)

    def prepare(self) -> None:
        super().prepare()
        p = LOCAL_PORTS
        config = self.data_dir / "config.yaml"
        self.make_owned_dir(self.data_dir / "badger")
        config.write_text(jaeger_config(
            host=LOCAL_HOST, data=str(self.data_dir), kafka=f"{LOCAL_HOST}:{p.kafka}",
            ports={"health": p.trace_health, "query": p.trace_query,
                   "query_grpc": p.trace_query + 1, "otlp_grpc": p.otlp_grpc,
                   "otlp_http": p.otlp_http, "span_metrics": p.span_metrics},
        ))
        if self.user is not None:
            self.user.own(config)

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=[str(self.binary), f"--config={self.data_dir / 'config.yaml'}"],
            cwd=self.data_dir,
            env={**self.base_env(), "GOMEMLIMIT": MEMORY_LIMIT},
        )

    async def probe(self, *, deep: bool) -> ProbeResult:
        url = f"http://{LOCAL_HOST}:{LOCAL_PORTS.trace_health}/status"
        return await probe_http_health(self.name, url, timeout=3, version=JAEGER_RELEASE)
