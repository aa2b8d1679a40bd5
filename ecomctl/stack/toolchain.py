"""Finding and running the host tools the installers need: dpkg/apt, a JDK, Maven, Go.

Every install step appends its output to a log under the cache dir, and a failure raises
``InstallError`` naming the step and that log.
"""

from __future__ import annotations

import os
import re
import shutil
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


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    try:
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text())
    except OSError:
        return None
    return int(match.group(1)) if match else None


def find_java_home(minimum: int) -> tuple[Path, int]:
    """The newest JDK of at least ``minimum`` (``$ECOMCTL_JAVA_HOME``, ``$JAVA_HOME``,
    ``/usr/lib/jvm/*``, the ``java`` on PATH)."""
    candidates: list[Path] = []
    for var in ("ECOMCTL_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        candidates.extend(sorted(p for p in jvm_root.iterdir() if p.is_dir()))
    java = shutil.which("java")
    if java:
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    found = [
        (home, major)
        for home in candidates
        if (home / "bin" / "java").exists() and (major := _java_major(home)) is not None
    ]
    usable = [(home, major) for home, major in found if major >= minimum]
    if not usable:
        seen = ", ".join(f"{h} ({m})" for h, m in found) or "none"
        raise InstallError(
            f"no JDK {minimum}+ found (seen: {seen}); install one and set ECOMCTL_JAVA_HOME"
        )
    return max(usable, key=lambda pair: pair[1])


def require_tool(name: str, debian_package: str, *, log_file: Path) -> str:
    """Path of ``name``, installing its Debian package first if it is missing."""
    path = shutil.which(name)
    if path is None:
        install_debian_packages([debian_package], log_file=log_file)
        path = shutil.which(name)
    if path is None:
        raise InstallError(f"{name} not found even after installing {debian_package}")
    return path
