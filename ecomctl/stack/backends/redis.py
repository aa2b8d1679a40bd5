"""Redis from Debian's packages, as two servers with two jobs.

``redis``: sessions, carts, login throttles and rate limits live only there, so it runs with
the append-only file (every write logged, fsync'd once a second) beside the RDB snapshots (a
crash or ``kill -9`` loses at most the last second instead of up to 5 minutes), and it never
evicts. ``redis-cache``: the caches, in memory, evicting the least recently used when full.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from ecomctl.adapters.probes import ProbeResult, probe_redis
from ecomctl.config import LOCAL_PORTS, local_stack_env
from ecomctl.errors import InstallError
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.toolchain import install_debian_packages

AOF_DIR = "appendonlydir"
AOF_NAME = "appendonly.aof"


class RedisBackend(Backend):
    name = "redis"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.redis,)

    def installed_version(self) -> str | None:
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        match = re.search(r"v=(\S+)", out.stdout)
        return match.group(1) if match else "unknown"

    def install(self, progress: Progress) -> None:
        progress("apt-get install redis-server")
        install_debian_packages(["redis-server"], log_file=self.paths.install_log(self.name))

    def prepare(self) -> None:
        super().prepare()
        self._adopt_snapshot()

    def _adopt_snapshot(self) -> None:
        """A data dir from before the append-only file: make its RDB snapshot the AOF's base.
        Redis started with ``appendonly yes`` and no AOF would otherwise start empty and
        ignore ``dump.rdb`` (every session and cart gone on the first restart)."""
        snapshot = self.data_dir / "dump.rdb"
        aof_dir = self.data_dir / AOF_DIR
        if aof_dir.exists() or not snapshot.exists():
            return
        staging = self.make_owned_dir(self.data_dir / f"{AOF_DIR}.new")
        base = f"{AOF_NAME}.1.base.rdb"
        shutil.copyfile(snapshot, staging / base)
        (staging / f"{AOF_NAME}.manifest").write_text(f"file {base} seq 1 type b\n")
        if self.user is not None:
            self.user.own(staging)
        staging.rename(aof_dir)

    def launch_spec(self) -> LaunchSpec:
        binary = shutil.which("redis-server")
        if binary is None:
            raise InstallError("redis-server not found on PATH")
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.ports[0]),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--logfile", "",
            *self.keeping(),
        ]
        return LaunchSpec(argv=argv, cwd=self.data_dir, env=self.base_env())

    def keeping(self) -> list[str]:
        """How the data is kept: sessions, carts and throttles are the source of truth, on
        disk (append-only, fsync every second) and never evicted: a full Redis refuses
        writes (503) rather than dropping someone's session."""
        return [
            "--save", "300 10",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--appenddirname", AOF_DIR,
            "--appendfilename", AOF_NAME,
            "--maxmemory", "512mb",
            "--maxmemory-policy", "noeviction",
        ]

    async def probe(self, *, deep: bool) -> ProbeResult:
        return await probe_redis(local_stack_env()["REDIS_URL"], timeout=3)


class RedisCacheBackend(RedisBackend):
    """The caches' own Redis (products, recommendations, their invalidations): in memory
    only, and when full it evicts the least recently used keys, which are all cache entries.
    Sharing one Redis, a flood of cache entries under ``volatile-lru`` evicted sessions,
    carts and throttle counters (they have TTLs too)."""

    name = "redis-cache"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.redis_cache,)

    def prepare(self) -> None:
        Backend.prepare(self)  # nothing on disk to adopt

    def keeping(self) -> list[str]:
        return ["--save", "", "--appendonly", "no",
                "--maxmemory", "128mb", "--maxmemory-policy", "allkeys-lru"]

    async def probe(self, *, deep: bool) -> ProbeResult:
        return await probe_redis(local_stack_env()["REDIS_CACHE_URL"], timeout=3,
                                 name=self.name)
