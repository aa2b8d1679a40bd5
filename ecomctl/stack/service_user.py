"""The unprivileged account that runs the servers when ecomctl itself runs as root.

PostgreSQL's initdb and Elasticsearch refuse to run as root, and a server has no business
holding root anyway. As a normal user, the servers simply run as that user.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ecomctl.errors import InstallError

SERVICE_ACCOUNT = "ecomctl"


@dataclass(frozen=True)
class ServiceUser:
    name: str
    uid: int
    gid: int

    def own(self, *paths: Path) -> None:
        """Give ``paths`` (recursively) to this user."""
        for top in paths:
            for path in [top, *top.rglob("*")]:
                os.lchown(path, self.uid, self.gid)

    def check_can_enter(self, path: Path) -> None:
        """Fail clearly if an ancestor of ``path`` is closed to this user (e.g. under /root)."""
        for parent in [*reversed(path.parents)]:
            mode = parent.stat().st_mode
            if parent.stat().st_uid != self.uid and not mode & 0o001:
                raise InstallError(
                    f"{path} is inside {parent}, which the service user {self.name!r} cannot "
                    "enter; choose another ECOMCTL_HOME / ECOMCTL_CACHE_DIR"
                )


def service_user() -> ServiceUser | None:
    """The account to run servers as: None when not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    if not _account_exists():
        result = subprocess.run(
            [
                "useradd", "--system", "--user-group", "--no-create-home",
                "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by someone else
            raise InstallError(f"useradd {SERVICE_ACCOUNT} failed: {result.stderr.strip()}")
    entry = pwd.getpwnam(SERVICE_ACCOUNT)
    return ServiceUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _account_exists() -> bool:
    try:
        pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        return False
    return True
