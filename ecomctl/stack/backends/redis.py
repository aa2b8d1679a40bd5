"""Redis from Debian's packages."""

from __future__ import annotations

import re
import shutil
import subprocess

from ecomctl.adapters.probes import ProbeResult, probe_redis
from ecomctl.config import LOCAL_PORTS, local_stack_env
from ecomctl.errors import InstallError
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.toolchain import install_debian_packages


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

    def launch_spec(self) -> LaunchSpec:
        binary = shutil.which("redis-server")
        if binary is None:
            raise InstallError("redis-server not found on PATH")
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(LOCAL_PORTS.redis),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--logfile", "",
            "--save", "300 10",
            "--maxmemory", "512mb",
            "--maxmemory-policy", "volatile-lru",
        ]
        return LaunchSpec(argv=argv, cwd=self.data_dir, env=self.base_env())

    async def probe(self, *, deep: bool) -> ProbeResult:
        return await probe_redis(local_stack_env()["REDIS_URL"], timeout=3)
