"""Prometheus from Debian's packages (2.42 on Debian 12): the stack's metrics backend, with
the shop's dashboard as one of its console pages.

It scrapes the local collector's /metrics every few seconds (the RED metrics the collector
derives from spans, and the processes' own metrics, which reach the collector over OTLP:
Prometheus 2.42 has no OTLP receiver of its own), keeps exemplars (trace ids on histogram
buckets), and serves ``/consoles/ecomctl.html``, drawn by the console library and the
static charts Debian's package serves (``/classic/static``). Its data lives under the
stack's state directory.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess

from ecomctl.adapters.probes import ProbeResult, probe_http_health
from ecomctl.config import LOCAL_HOST, LOCAL_PORTS
from ecomctl.errors import InstallError
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.toolchain import install_debian_packages
from ecomctl.telemetry.dashboard import CONSOLE, PANELS, Panel

RETENTION = "7d"
SCRAPE_INTERVAL = "5s"
DURATION_S = 900
"""What the dashboard's charts show: the last 15 minutes."""

_CONFIG = """\
global:
  scrape_interval: {interval}
  scrape_timeout: 4s
  evaluation_interval: {interval}
storage:
  exemplars:
    max_exemplars: 10000
scrape_configs:
  - job_name: collector
    # The series carry their processes' service.name and service.instance.id already.
    honor_labels: true
    static_configs:
      - targets: ["{collector}"]
    metric_relabel_configs:
      - action: labeldrop
        regex: "telemetry_sdk_.*|otel_scope_schema_url|otel_scope_version"
      # RED metrics are per service (the collector adds all its processes up): the process
      # the collector happened to see first is no label of theirs.
      - source_labels: [__name__]
        regex: "traces_span_metrics_.*"
        target_label: service_instance_id
        replacement: ""
      - source_labels: [__name__]
        regex: "traces_span_metrics_.*"
        target_label: instance
        replacement: ""
"""

# Debian's example library loads scripts that 2.42 no longer serves (d3.layout) or serves as
# ES modules (popper): this one loads only what draws the charts.
_LIBRARY = """\
{{ define "ecomctl_head" -}}
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ecomctl: the shop, live</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{{ pathPrefix }}/classic/static/rickshaw/rickshaw.min.css">
<link rel="stylesheet" href="{{ pathPrefix }}/classic/static/bootstrap4/css/bootstrap.min.css">
<link rel="stylesheet" href="{{ pathPrefix }}/classic/static/css/prom_console.css">
<script src="{{ pathPrefix }}/classic/static/d3/d3.min.js"></script>
<script src="{{ pathPrefix }}/classic/static/rickshaw/rickshaw.min.js"></script>
<script src="{{ pathPrefix }}/classic/static/jquery/jquery.min.js"></script>
<script>var PATH_PREFIX = "{{ pathPrefix }}";</script>
<script src="{{ pathPrefix }}/classic/static/js/prom_console.js"></script>
<style>
  body { padding: 1rem; }
  .panel { display: inline-block; width: 48%; vertical-align: top; margin: 0 1% 1.5rem 0; }
  .panel h5 { font-size: 1rem; }
</style>
</head>
<body>
{{- end }}
{{ define "ecomctl_tail" }}
</body>
</html>
{{ end }}
"""


def prometheus_config(collector: str) -> str:
    """Scraping the collector's /metrics at ``collector`` (host:port); the local stack's and
    compose.yaml's (fixtures/compose/prometheus.yml)."""
    return _CONFIG.format(interval=SCRAPE_INTERVAL, collector=collector)


@functools.cache
def _version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\S+)", out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def _table(panel: Panel) -> str:
    """The panel's latest values, one row per series, rendered by Prometheus itself."""
    label = re.sub(r"\[\[ *(\w+) *\]\]", r"{{ .Labels.\1 }}", panel.legend)
    return (
        f'<div class="panel" id="panel-{panel.key}"><h5>{html.escape(panel.title)}</h5>'
        '<table class="table table-sm chart" style="width: auto">'
        f"<tr><th>series</th><th>{html.escape(panel.unit)}</th></tr>\n"
        f"{{{{ range query {json.dumps(panel.expr)} }}}}"
        f'<tr><td>{label}</td><td>{{{{ .Value | printf "%.3f" }}}}</td></tr>'
        "{{ else }}<tr><td colspan=2>No timeseries returned</td></tr>{{ end }}"
        "</table></div>"
    )


def console_page(panels: tuple[Panel, ...] = PANELS) -> str:
    """The dashboard as a Prometheus console template: a chart (or a table) per panel."""
    charts = []
    for panel in panels:
        if panel.table:
            charts.append(_table(panel))
            continue
        options = {"expr": panel.expr, "name": panel.legend, "yTitle": panel.unit,
                   "renderer": "line", "duration": DURATION_S}
        charts.append(
            f'<div class="panel" id="panel-{panel.key}"><h5>{html.escape(panel.title)}</h5>'
            f'<div class="chart" id="chart-{panel.key}"></div>\n<script>\n'
            f"new PromConsole.Graph(Object.assign({json.dumps(options)}, {{\n"
            f'  node: document.querySelector("#chart-{panel.key}"),\n'
            "  yAxisFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,\n"
            "  yHoverFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,\n"
            "}));\n</script></div>"
        )
    return "\n".join([
        '{{ template "ecomctl_head" . }}',
        "<h3>ecomctl: the shop, live</h3>",
        '<p class="text-muted">Last 15 minutes, every 5 s scrape; RED metrics from the '
        "spans, the rest from the processes.</p>",
        *charts,
        '{{ template "ecomctl_tail" }}',
    ])


class PrometheusBackend(Backend):
    name = "prometheus"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.prometheus,)

    def installed_version(self) -> str | None:
        binary = shutil.which("prometheus")
        return None if binary is None else _version(binary)

    def install(self, progress: Progress) -> None:
        progress("apt-get install prometheus")
        install_debian_packages(["prometheus"], log_file=self.paths.install_log(self.name))

    def prepare(self) -> None:
        super().prepare()
        for sub in ("tsdb", "consoles", "console_libraries"):
            self.make_owned_dir(self.data_dir / sub)
        files = {
            "prometheus.yml": prometheus_config(f"{LOCAL_HOST}:{LOCAL_PORTS.span_metrics}"),
            f"consoles/{CONSOLE}": console_page(),
            "console_libraries/ecomctl.lib": _LIBRARY,
        }
        for name, text in files.items():
            path = self.data_dir / name
            path.write_text(text)
            if self.user is not None:
                self.user.own(path)

    def launch_spec(self) -> LaunchSpec:
        binary = shutil.which("prometheus")
        if binary is None:
            raise InstallError("prometheus not found on PATH")
        d = self.data_dir
        argv = [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'tsdb'}",
            f"--storage.tsdb.retention.time={RETENTION}",
            f"--web.listen-address={LOCAL_HOST}:{LOCAL_PORTS.prometheus}",
            f"--web.console.templates={d / 'consoles'}",
            f"--web.console.libraries={d / 'console_libraries'}",
            "--enable-feature=exemplar-storage",
        ]
        return LaunchSpec(argv=argv, cwd=d, env=self.base_env())

    async def probe(self, *, deep: bool) -> ProbeResult:
        url = f"http://{LOCAL_HOST}:{LOCAL_PORTS.prometheus}/-/ready"
        return await probe_http_health(self.name, url, timeout=3,
                                       version=self.installed_version())
