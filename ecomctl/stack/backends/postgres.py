"""PostgreSQL from Debian's packages, on a private data directory and port."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from ecomctl.adapters.probes import ProbeResult, probe_postgres
from ecomctl.config import (
    LOCAL_DB_NAME,
    LOCAL_DB_PASSWORD,
    LOCAL_DB_USER,
    LOCAL_PORTS,
    local_stack_env,
)
from ecomctl.errors import InstallError
from ecomctl.stack.backend import Backend, LaunchSpec, Progress
from ecomctl.stack.toolchain import install_debian_packages, run_logged

PG_ROOT = Path("/usr/lib/postgresql")


def _bin_dir() -> Path | None:
    """The newest installed server's bin dir (Debian keeps one dir per major version)."""
    majors = sorted(
        (int(p.name), p / "bin")
        for p in (PG_ROOT.iterdir() if PG_ROOT.is_dir() else [])
        if p.name.isdigit() and (p / "bin" / "postgres").exists()
    )
    return majors[-1][1] if majors else None


class PostgresBackend(Backend):
    name = "postgres"

    @property
    def ports(self) -> tuple[int, ...]:
        return (LOCAL_PORTS.postgres,)

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def _socket_dir(self) -> Path:
        return self.data_dir / "socket"

    def installed_version(self) -> str | None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            return None
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+\.\d+)", out)
        return match.group(1) if match else "unknown"

    def install(self, progress: Progress) -> None:
        progress("apt-get install postgresql")
        install_debian_packages(["postgresql"], log_file=self.paths.install_log(self.name))

    def _bin(self, program: str) -> str:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise InstallError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        return str(bin_dir / program)

    def prepare(self) -> None:
        super().prepare()
        self.make_owned_dir(self._socket_dir)
        if (self._pgdata / "PG_VERSION").exists():
            self._remove_stale_lock()
            return
        self.make_owned_dir(self._pgdata, 0o700)
        log = self.log_file
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir, delete=False) as pwfile:
            pwfile.write(LOCAL_DB_PASSWORD + "\n")
        pw_path = Path(pwfile.name)
        if self.user is not None:
            self.user.own(pw_path)
        try:
            run_logged(
                [
                    self._bin("initdb"), "-D", str(self._pgdata), "-U", LOCAL_DB_USER,
                    f"--pwfile={pw_path}", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "-E", "UTF8", "--no-locale",
                ],
                log_file=log, what="initdb", user=self.user, env=self.base_env(),
            )
        finally:
            pw_path.unlink(missing_ok=True)
        run_logged(
            [self._bin("postgres"), "--single", "-D", str(self._pgdata), "postgres"],
            log_file=log, what="create database", user=self.user, env=self.base_env(),
            input_text=f"CREATE DATABASE {LOCAL_DB_NAME};\n",
        )

    def _remove_stale_lock(self) -> None:
        """A killed postmaster leaves postmaster.pid behind; if its pid now belongs to another
        program, PostgreSQL would refuse to start, so drop it when no postgres holds it."""
        import psutil

        lock = self._pgdata / "postmaster.pid"
        try:
            pid = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            if "postgres" in psutil.Process(pid).name():
                return
        except psutil.Error:
            pass
        lock.unlink(missing_ok=True)

    def launch_spec(self) -> LaunchSpec:
        settings = {
            "port": str(LOCAL_PORTS.postgres),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self._socket_dir),
            "max_connections": "200",
            "shared_buffers": "128MB",
            "logging_collector": "off",
        }
        argv = [self._bin("postgres"), "-D", str(self._pgdata)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return LaunchSpec(argv=argv, cwd=self.data_dir, env=self.base_env())

    async def probe(self, *, deep: bool) -> ProbeResult:
        return await probe_postgres(local_stack_env()["DATABASE_URL"], timeout=3)
