"""Running the installers' steps: logged subprocesses and Debian packages via apt.

Which Go, JDK and Maven to use, and whether they are new enough, is ``host_tools``' job.

Every install step appends its output to a log under the cache dir, and a failure raises
``InstallError`` naming the step and that log.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ecomctl.errors import InstallError
from ecomctl.stack.service_user import ServiceUser


def run_logged(
    argv: Sequence[str],
    *,
    log_file: Path,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    user: ServiceUser | None = None,
    input_text: str | None = None,
) -> None:
    """Run a setup step (as ``user`` if given), its output appended to ``log_file``;
    raise InstallError on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            result = subprocess.run(
                list(argv),
                input=input_text.encode() if input_text is not None else None,
                stdin=subprocess.DEVNULL if input_text is None else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                timeout=timeout,
                check=False,
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
            )
        except FileNotFoundError as exc:
            raise InstallError(f"{what}: {argv[0]} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise InstallError(f"{what}: timed out after {timeout:.0f}s (log: {log_file})") from exc
    if result.returncode != 0:
        raise InstallError(f"{what} failed with exit {result.returncode} (log: {log_file})")


def missing_debian_packages(packages: Sequence[str]) -> list[str]:
    missing = []
    for package in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package],
            capture_output=True,
            text=True,
            check=False,
        )
        if "install ok installed" not in result.stdout:
            missing.append(package)
    return missing


def install_debian_packages(packages: Sequence[str], *, log_file: Path) -> None:
    """``apt-get install`` what is missing (root only; otherwise say what to run)."""
    missing = missing_debian_packages(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        raise InstallError(
            f"Debian packages missing: {' '.join(missing)}; "
            f"run: sudo apt-get install -y {' '.join(missing)}"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run_logged(["apt-get", "update"], log_file=log_file, what="apt-get update", env=env)
    run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *missing],
        log_file=log_file,
        what=f"apt-get install {' '.join(missing)}",
        env=env,
    )
