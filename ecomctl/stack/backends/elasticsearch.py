"""Real Elasticsearch from its integration-test distribution on Maven Central.

That zip is the server with its core modules only (no bundled JDK, no ``GET /`` root
endpoint, no analysis-common); ecomctl needs nothing beyond it: the standard analyzer,
multi_match, filters, aggregations and bulk indexing are all core. It runs on the machine's
newest JDK (21+ for 9.x) and, under root, as the unprivileged service user.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ecomctl.adapters.probes import ProbeResult, probe_elasticsearch
from ecomctl.config import LOCAL_PORTS, local_stack_env
from ecomctl.stack.archive import extract_zip
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.host_tools import ToolNeed, java_home
from ecomctl.stack.maven import MAVEN_NEED, copy_artifact

ES_VERSION = "9.3.2"
ES_COORDINATE = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
ES_SHA256 = "99b5b540c8d3a5c53cbe1e4f35c46acefff59131760ddc330a7616cd319086f1"
"""Maven Central has no checksum files for this zip: its digest, pinned when first fetched."""
ES_MIN_JAVA = 21
ES_HEAP = "512m"

_SETTINGS = """\
cluster.name: ecomctl
node.name: ecomctl-local
discovery.type: single-node
network.host: 127.0.0.1
http.port: {http_port}
transport.port: {transport_port}
path.data: {data}
path.logs: {logs}
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
"""


class ElasticsearchBackend(Backend):
    name = "elasticsearch"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.elasticsearch, LOCAL_PORTS.elasticsearch_transport)

    @property
    def _home(self) -> Path:
        return self.paths.cache / f"elasticsearch-{ES_VERSION}"

    def installed_version(self) -> str | None:
        return ES_VERSION if (self._home / "bin" / "elasticsearch").exists() else None

    def tool_needs(self) -> tuple[ToolNeed, ...]:
        # The JDK is checked before the 110 MB download: no point fetching what cannot run.
        return (ToolNeed("java", (ES_MIN_JAVA,), f"Elasticsearch {ES_VERSION}"), MAVEN_NEED)

    def install(self, progress: Progress) -> None:
        downloads = self.paths.cache / "downloads"
        progress(f"downloading {ES_COORDINATE} from Maven Central")
        archive = copy_artifact(
            ES_COORDINATE, target=downloads, cache=self.paths.cache,
            log_file=self.paths.install_log(self.name), sha256=ES_SHA256,
        )
        progress("extracting")
        extract_zip(archive, self._home)

    def prepare(self) -> None:
        super().prepare()
        config = self.data_dir / "config"
        if not (config / "jvm.options").exists():
            shutil.copytree(self._home / "config", config, dirs_exist_ok=True)
        for sub in ("data", "logs", "tmp"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        (config / "elasticsearch.yml").write_text(
            _SETTINGS.format(
                http_port=LOCAL_PORTS.elasticsearch,
                transport_port=LOCAL_PORTS.elasticsearch_transport,
                data=self.data_dir / "data",
                logs=self.data_dir / "logs",
            )
        )
        if self.user is not None:
            self.user.own(self.data_dir)

    def launch_spec(self) -> LaunchSpec:
        jdk = java_home(ES_MIN_JAVA, f"Elasticsearch {ES_VERSION}")
        env = {
            **self.base_env(),
            "ES_JAVA_HOME": str(jdk),
            "ES_PATH_CONF": str(self.data_dir / "config"),
            "ES_TMPDIR": str(self.data_dir / "tmp"),
            # No pre-touch: the heap is committed as it is used, which keeps the idle stack small.
            "ES_JAVA_OPTS": f"-Xms{ES_HEAP} -Xmx{ES_HEAP} -XX:-AlwaysPreTouch",
        }
        return LaunchSpec(
            argv=[str(self._home / "bin" / "elasticsearch")], cwd=self.data_dir, env=env
        )

    async def probe(self, *, deep: bool) -> ProbeResult:
        return await probe_elasticsearch(local_stack_env()["ELASTICSEARCH_URL"], timeout=3)
