"""Zipkin server with its Lens UI, the stack's trace UI: search by service, operation, tag and
duration, a trace's waterfall with every span's attributes, the service dependency graph.

Maven Central serves Zipkin's executable jar; it runs on the machine's JDK (17+). Spans reach
it through Kafka: the local collector (Jaeger) publishes every trace it stores, in Zipkin's
JSON v2, to the ``zipkin`` topic, which Zipkin's Kafka collector consumes. Zipkin keeps them
in memory, bounded (``MAX_SPANS``): it is for looking at recent traces; Jaeger's on-disk store
is the durable copy that ecomctl reads.
"""

from __future__ import annotations

from pathlib import Path

from ecomctl.adapters.probes import ProbeResult, probe_http_health
from ecomctl.config import LOCAL_HOST, LOCAL_PORTS
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.host_tools import ToolNeed, java_home
from ecomctl.stack.maven import MAVEN_NEED, copy_artifact

ZIPKIN_VERSION = "3.6.1"
ZIPKIN_COORDINATE = f"io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec"
ZIPKIN_MIN_JAVA = 17
KAFKA_TOPIC = "zipkin"
MAX_SPANS = 40_000
"""Spans kept, the newest (a 20-second simulation makes about 11,000). The shop's spans are
rich (SQL text, resource attributes on every span): 3.5 KB of heap each, 2.5 KB once G1 has
deduplicated their strings (measured with 60,000 spans: 211 MB, 150 MB)."""
HEAP = "256m"

# Bounded threads and memory (an unbounded blocking pool grew to 200 threads, 400 MB RSS,
# under a burst of Kafka messages), G1 with string deduplication (the spans repeat their
# tags' strings: a third less heap), client compiler only (a faster start, less code cache),
# the JDK's DNS resolver (Armeria's own opens a UDP socket on every address), and an exit on
# running out of heap (its Kafka consumer would die and leave it up, serving nothing new:
# down, `stack status` says so and `stack up` starts it again).
_JVM_OPTIONS = (
    f"-Xms32m -Xmx{HEAP} -XX:+UseG1GC -XX:+UseStringDeduplication "
    "-XX:MaxMetaspaceSize=128m -Xss512k "
    "-XX:+ExitOnOutOfMemoryError "
    "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=48m -XX:MaxDirectMemorySize=64m "
    "-Dcom.linecorp.armeria.numCommonBlockingTaskThreads=8 "
    "-Dcom.linecorp.armeria.numCommonWorkers=2 "
    "-Dcom.linecorp.armeria.useJdkDnsResolver=true -Djava.net.preferIPv4Stack=true"
).split()


class ZipkinBackend(Backend):
    name = "zipkin"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.trace_ui,)

    @property
    def _jar(self) -> Path:
        return self.paths.cache / "downloads" / f"zipkin-server-{ZIPKIN_VERSION}-exec.jar"

    def installed_version(self) -> str | None:
        return ZIPKIN_VERSION if self._jar.exists() else None

    def tool_needs(self) -> tuple[ToolNeed, ...]:
        return (ToolNeed("java", (ZIPKIN_MIN_JAVA,), f"Zipkin {ZIPKIN_VERSION}"), MAVEN_NEED)

    def install(self, progress: Progress) -> None:
        progress(f"downloading {ZIPKIN_COORDINATE} from Maven Central")
        copy_artifact(ZIPKIN_COORDINATE, target=self._jar.parent, cache=self.paths.cache,
                      log_file=self.paths.install_log(self.name))

    def launch_spec(self) -> LaunchSpec:
        jdk = java_home(ZIPKIN_MIN_JAVA, f"Zipkin {ZIPKIN_VERSION}")
        env = {
            **self.base_env(),
            "STORAGE_TYPE": "mem",
            "MEM_MAX_SPANS": str(MAX_SPANS),
            "KAFKA_BOOTSTRAP_SERVERS": f"{LOCAL_HOST}:{LOCAL_PORTS.kafka}",
            "KAFKA_TOPIC": KAFKA_TOPIC,
            "KAFKA_GROUP_ID": "ecomctl-zipkin",
            "KAFKA_STREAMS": "1",
            # Kafka is the one way in: the HTTP collector would share the UI's port.
            **{f"COLLECTOR_{kind}_ENABLED": "false"
               for kind in ("HTTP", "GRPC", "SCRIBE", "ACTIVEMQ", "RABBITMQ", "PULSAR")},
            "DISCOVERY_EUREKA_ENABLED": "false",
            "SELF_TRACING_ENABLED": "false",
            "AUTOCOMPLETE_KEYS": "ecom.order.id,ecom.user.id,http.route",
        }
        # Zipkin has no variable for its address: Armeria's port list, as Spring arguments.
        listen = [f"--armeria.ports[0].ip={LOCAL_HOST}",
                  f"--armeria.ports[0].port={LOCAL_PORTS.trace_ui}",
                  "--armeria.ports[0].protocols[0]=http"]
        return LaunchSpec(argv=[str(jdk / "bin" / "java"), *_JVM_OPTIONS, "-jar",
                                str(self._jar), *listen],
                          cwd=self.data_dir, env=env)

    async def probe(self, *, deep: bool) -> ProbeResult:
        url = f"http://{LOCAL_HOST}:{LOCAL_PORTS.trace_ui}/health"
        return await probe_http_health(self.name, url, timeout=3, version=ZIPKIN_VERSION)
