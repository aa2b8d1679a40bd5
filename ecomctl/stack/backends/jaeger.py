"""Jaeger v2 (an OpenTelemetry Collector distribution with in-memory storage and the query
API), built from the Go module proxy.

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
from ecomctl.stack.host_tools import ToolNeed, tool_path
from ecomctl.stack.toolchain import run_logged

JAEGER_MODULE_VERSION = "v1.76.0"
JAEGER_RELEASE = "2.13.0"
JAEGER_PACKAGE = "github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_MIN_GO = (1, 24, 6)
"""The ``go`` line of Jaeger's go.mod at that version (``go get -tool`` itself needs 1.24)."""

_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
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
      traces: memstore
    http:
      endpoint: {host}:{query}
    grpc:
      endpoint: {host}:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{otlp_grpc}
      http:
        endpoint: {host}:{otlp_http}
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""


class JaegerBackend(Backend):
    name = "jaeger"
    parallel_install = True

    @property
    def ports(self) -> tuple[int, ...]:
        p = LOCAL_PORTS
        return (p.otlp_grpc, p.otlp_http, p.trace_query, p.trace_query + 1, p.trace_health)

    @property
    def _binary(self) -> Path:
        return self.paths.cache / "bin" / f"jaeger-{JAEGER_RELEASE}"

    def installed_version(self) -> str | None:
        return JAEGER_RELEASE if self._binary.exists() else None

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
        partial = self._binary.with_suffix(".partial")
        run_logged(
            [
                go, "build", "-trimpath", "-o", str(partial),
                "-ldflags", f"-s -w -X {version_pkg}.latestVersion=v{JAEGER_RELEASE}",
                JAEGER_PACKAGE,
            ],
            log_file=log, what="go build jaeger", env=env, cwd=module, timeout=3600,
        )
        partial.chmod(0o755)
        partial.rename(self._binary)

    def prepare(self) -> None:
        super().prepare()
        p = LOCAL_PORTS
        config = self.data_dir / "config.yaml"
        config.write_text(
            _CONFIG.format(
                host=LOCAL_HOST, health=p.trace_health, query=p.trace_query,
                query_grpc=p.trace_query + 1, otlp_grpc=p.otlp_grpc, otlp_http=p.otlp_http,
            )
        )
        if self.user is not None:
            self.user.own(config)

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=[str(self._binary), f"--config={self.data_dir / 'config.yaml'}"],
            cwd=self.data_dir,
            env=self.base_env(),
        )

    async def probe(self, *, deep: bool) -> ProbeResult:
        url = f"http://{LOCAL_HOST}:{LOCAL_PORTS.trace_health}/status"
        result = await probe_http_health(self.name, url, timeout=3)
        if result.ok:
            return ProbeResult(result.backend, True, result.detail, JAEGER_RELEASE,
                               result.latency_ms)
        return result
