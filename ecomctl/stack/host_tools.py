"""The host tools the installers use (Go, a JDK, Maven): found, their versions read, and
checked against what each backend needs before anything is downloaded or built.

A "fresh Debian machine" is not enough by itself: Debian 12's golang-go is Go 1.19 (Jaeger's
build needs ``go get -tool``, Go 1.24) and Debian 12 has no JDK 21 (Elasticsearch 9 needs
one). A tool that is too old stops ``stack install`` with a ``ToolchainError`` (exit 2) that
names the tool, the version found, the version needed and how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ecomctl.errors import ToolchainError

ToolName = Literal["go", "java", "mvn"]
Version = tuple[int, ...]

GO_TOOLCHAIN_HINT = "go1.27.3"
"""A Go release the Go module proxy serves as a toolchain (``GOTOOLCHAIN``)."""

HOW_TO_GET: Mapping[ToolName, str] = {
    "go": (
        f"export GOTOOLCHAIN={GO_TOOLCHAIN_HINT} (any Go >= 1.21 then fetches that release "
        "from the Go module proxy), or put a newer Go first on PATH; Debian 12's golang-go "
        "(1.19) cannot build Jaeger"
    ),
    "java": (
        "install a JDK of that version (Temurin, or Debian 13's openjdk-21-jdk) and set "
        "ECOMCTL_JAVA_HOME to its directory"
    ),
    "mvn": "apt-get install maven (Debian 12 has 3.8.7), or put a newer mvn first on PATH",
}


@dataclass(frozen=True)
class ToolNeed:
    """One backend's installer needs ``tool`` at ``minimum`` or newer."""

    tool: ToolName
    minimum: Version
    needed_by: str


@dataclass(frozen=True)
class FoundTool:
    tool: ToolName
    path: str | None
    version: Version | None

    def describe(self) -> str:
        if self.path is None:
            return "none"
        version = format_version(self.version) if self.version else "an unreadable version"
        return f"{version} ({self.path})"


def format_version(version: Version) -> str:
    return ".".join(str(part) for part in version)


def parse_go_version(text: str) -> Version | None:
    """``go version go1.26.8 linux/amd64`` -> (1, 26, 8); ``go1.24rc1`` -> (1, 24)."""
    match = re.search(r"\bgo(\d+)\.(\d+)(?:\.(\d+))?", text)
    return _ints(match.groups()) if match else None


def parse_maven_version(text: str) -> Version | None:
    """The first line of ``mvn -v`` (it may carry colour codes) -> (3, 8, 7)."""
    match = re.search(r"Apache Maven (\d+)\.(\d+)(?:\.(\d+))?", text)
    return _ints(match.groups()) if match else None


def parse_java_release(text: str) -> Version | None:
    """A JDK's ``release`` file: ``JAVA_VERSION="17.0.15"`` -> (17, 0, 15); Java 8's
    ``"1.8.0_392"`` -> (8, 0, 392)."""
    match = re.search(r'JAVA_VERSION="(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:_(\d+))?', text)
    if not match:
        return None
    parts = _ints(match.groups())
    return parts[1:] if parts[0] == 1 and len(parts) > 1 else parts


def _ints(groups: Sequence[str | None]) -> Version:
    return tuple(int(g) for g in groups if g is not None)


def _run_version(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=120, check=False,
            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout + result.stderr


def find_go(env: Mapping[str, str] | None = None) -> FoundTool:
    """The ``go`` on PATH and the version it runs as under ``env`` (``GOTOOLCHAIN`` may make
    it fetch and run another release: the version reported is the one that will build). Run
    from ``/``, so no go.mod of the caller's working directory picks the toolchain."""
    path = shutil.which("go")
    if path is None:
        return FoundTool("go", None, None)
    return FoundTool("go", path, parse_go_version(_run_version([path, "version"], env)))


def find_maven() -> FoundTool:
    path = shutil.which("mvn")
    if path is None:
        return FoundTool("mvn", None, None)
    return FoundTool("mvn", path, parse_maven_version(_run_version([path, "-v"])))


def java_version(java_home: Path) -> Version | None:
    try:
        return parse_java_release((java_home / "release").read_text())
    except OSError:
        return None


def java_candidates() -> list[FoundTool]:
    """Every JDK ecomctl may use, explicit choice first.

    ``$ECOMCTL_JAVA_HOME`` is the user's explicit choice: when set, it is the only
    candidate (a wrong one is reported, never silently replaced). Otherwise ``$JAVA_HOME``,
    every JDK under ``/usr/lib/jvm``, and the ``java`` on PATH.
    """
    explicit = os.environ.get("ECOMCTL_JAVA_HOME")
    homes: list[Path] = []
    if explicit:
        homes.append(Path(explicit))
    else:
        if os.environ.get("JAVA_HOME"):
            homes.append(Path(os.environ["JAVA_HOME"]))
        jvm_root = Path("/usr/lib/jvm")
        if jvm_root.is_dir():
            homes.extend(sorted(p for p in jvm_root.iterdir() if p.is_dir()))
        java = shutil.which("java")
        if java:
            homes.append(Path(os.path.realpath(java)).parent.parent)
    found = []
    for home in dict.fromkeys(homes):
        if (home / "bin" / "java").exists():
            found.append(FoundTool("java", str(home), java_version(home)))
        elif explicit:
            found.append(FoundTool("java", str(home), None))
    return found


def find_java(minimum: Version) -> FoundTool:
    """The newest JDK of at least ``minimum``, or the newest one seen (maybe too old)."""
    candidates = [c for c in java_candidates() if c.version is not None]
    usable = [c for c in candidates if c.version is not None and c.version >= minimum]
    pool = usable or candidates
    if not pool:
        explicit = os.environ.get("ECOMCTL_JAVA_HOME")
        return FoundTool("java", explicit, None) if explicit else FoundTool("java", None, None)
    return max(pool, key=lambda c: c.version or ())


def tool_path(tool: Literal["go", "mvn"]) -> str:
    """The tool on PATH (``check_tools`` has vouched for its version before an install)."""
    path = shutil.which(tool)
    if path is None:
        raise ToolchainError([f"{tool}: not found on PATH. How to get it: {HOW_TO_GET[tool]}"])
    return path


def java_home(minimum: int, needed_by: str) -> Path:
    """The JDK to run ``needed_by`` with; ToolchainError when none is new enough."""
    need = ToolNeed("java", (minimum,), needed_by)
    found = find_java(need.minimum)
    problem = shortfall(need, found)
    if problem:
        raise ToolchainError([problem])
    assert found.path is not None
    return Path(found.path)


def shortfall(need: ToolNeed, found: FoundTool) -> str | None:
    """What is wrong with ``found`` for ``need``, said so the user can fix it; None if fine."""
    if found.version is not None and found.version >= need.minimum:
        return None
    label = {"go": "Go", "java": "a JDK", "mvn": "Maven"}[need.tool]
    return (
        f"{need.tool}: found {found.describe()}; {need.needed_by} needs {label} "
        f">= {format_version(need.minimum)}. How to get it: {HOW_TO_GET[need.tool]}"
    )


def debian_candidate_version(package: str) -> Version | None:
    """The version apt would install (``Candidate: 2:1.19~1`` -> (1, 19)), None if unknown."""
    text = _run_version(["apt-cache", "policy", package])
    match = re.search(r"Candidate:\s*(?:\d+:)?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return _ints(match.groups()) if match else None


@dataclass(frozen=True)
class ToolCheck:
    need: ToolNeed
    found: FoundTool
    problem: str | None


def check_tools(
    needs: Sequence[ToolNeed],
    *,
    env: Mapping[str, str] | None = None,
    install_package: Callable[[str], None] | None = None,
) -> list[ToolCheck]:
    """Find each needed tool and compare versions; raise ToolchainError naming every tool
    that is missing or too old (all at once, so one round of fixes is enough).

    ``env`` is the environment the tools will run in (a ``GOTOOLCHAIN`` there counts).
    ``install_package`` (apt, for root) is used for a missing Maven, and for a missing Go
    only when the Debian candidate is new enough: a Go that cannot build Jaeger is never
    installed.
    """
    checks = []
    for need in needs:
        found = _find(need, env)
        if found.path is None and install_package is not None:
            package = _installable_package(need)
            if package is not None:
                install_package(package)
                found = _find(need, env)
        checks.append(ToolCheck(need, found, shortfall(need, found)))
    problems = [c.problem for c in checks if c.problem]
    if problems:
        raise ToolchainError(problems)
    return checks


def _find(need: ToolNeed, env: Mapping[str, str] | None) -> FoundTool:
    if need.tool == "go":
        return find_go(env)
    if need.tool == "mvn":
        return find_maven()
    return find_java(need.minimum)


def _installable_package(need: ToolNeed) -> str | None:
    if need.tool == "mvn":
        return "maven"
    if need.tool == "go":
        candidate = debian_candidate_version("golang-go")
        return "golang-go" if candidate is not None and candidate >= need.minimum else None
    return None
