"""The Apache Kafka broker in KRaft mode (one combined broker/controller node), its jars
resolved from Maven Central into ecomctl's cache."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from ecomctl.adapters.probes import ProbeResult, probe_kafka
from ecomctl.config import LOCAL_HOST, LOCAL_PORTS, local_stack_env
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.host_tools import ToolNeed, java_home
from ecomctl.stack.maven import MAVEN_NEED, copy_dependencies
from ecomctl.stack.toolchain import run_logged

KAFKA_VERSION = "4.1.1"
KAFKA_MIN_JAVA = 17
# Kafka ships log4j2 but no SLF4J binding; without one its startup log is silent.
_COORDINATES = (
    f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
    "org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",
)

_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers={host}:{controller_port}
log.dirs={log_dirs}
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# The log cleaner allocates 128 MiB up front by default; a dev node needs far less.
log.cleaner.dedupe.buffer.size=8388608
# Bounded on disk: a day, at most 256 MiB a partition, in 32 MiB segments (retention drops
# whole closed segments; the default 1 GiB segment kept every partition's first GiB). With
# Kafka's week the span topic to Zipkin alone reached 7 GiB in a day of benches and tests.
log.retention.hours=24
log.retention.bytes=268435456
log.segment.bytes=33554432
"""

_LOG4J2 = """\
Configuration:
  name: ecomctl-kafka
  shutdownHook: disable
  Appenders:
    Console:
      name: STDOUT
      target: SYSTEM_OUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.clients
        level: WARN
"""

_JVM_FLAGS = (
    "-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:MaxMetaspaceSize=128m",
    "-XX:ReservedCodeCacheSize=64m", "-XX:MaxDirectMemorySize=128m", "-Djava.awt.headless=true",
)


class KafkaBackend(Backend):
    name = "kafka"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.kafka, LOCAL_PORTS.kafka_controller)

    @property
    def _lib(self) -> Path:
        return self.paths.cache / f"kafka-{KAFKA_VERSION}" / "lib"

    @property
    def _complete_marker(self) -> Path:
        return self._lib.parent / ".complete"

    def installed_version(self) -> str | None:
        return KAFKA_VERSION if self._complete_marker.exists() else None

    def tool_needs(self) -> tuple[ToolNeed, ...]:
        return (ToolNeed("java", (KAFKA_MIN_JAVA,), f"Kafka {KAFKA_VERSION}"), MAVEN_NEED)

    def install(self, progress: Progress) -> None:
        progress(f"resolving kafka_2.13:{KAFKA_VERSION} and its dependencies from Maven Central")
        copy_dependencies(
            _COORDINATES, target=self._lib, cache=self.paths.cache,
            log_file=self.paths.install_log(self.name), name=f"kafka-{KAFKA_VERSION}",
        )
        self._complete_marker.touch()

    def _java(self) -> str:
        return str(java_home(KAFKA_MIN_JAVA, f"Kafka {KAFKA_VERSION}") / "bin" / "java")

    def _java_argv(self, main_class: str, *args: str) -> list[str]:
        return [
            self._java(), *_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.yaml'}",
            "-cp", f"{self._lib}/*", main_class, *args,
        ]

    def prepare(self) -> None:
        super().prepare()
        properties = self.data_dir / "server.properties"
        (self.data_dir / "log4j2.yaml").write_text(_LOG4J2)
        properties.write_text(
            _SERVER_PROPERTIES.format(
                host=LOCAL_HOST, port=LOCAL_PORTS.kafka,
                controller_port=LOCAL_PORTS.kafka_controller,
                log_dirs=self.data_dir / "logs",
            )
        )
        if self.user is not None:
            self.user.own(self.data_dir)
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        run_logged(
            self._java_argv(
                "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id,
                "-c", str(properties),
            ),
            log_file=self.log_file, what="format Kafka storage", user=self.user,
            env=self.base_env(), cwd=self.data_dir,
        )

    def launch_spec(self) -> LaunchSpec:
        return LaunchSpec(
            argv=self._java_argv("kafka.Kafka", str(self.data_dir / "server.properties")),
            cwd=self.data_dir,
            env=self.base_env(),
        )

    async def probe(self, *, deep: bool) -> ProbeResult:
        result = await probe_kafka(
            local_stack_env()["KAFKA_BOOTSTRAP_SERVERS"], create_topic=deep, timeout=5
        )
        if result.ok:
            return ProbeResult(result.backend, True, result.detail, KAFKA_VERSION,
                               result.latency_ms)
        return result
