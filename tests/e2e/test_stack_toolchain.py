"""`ecomctl stack install` checks the Go, JDK and Maven it finds before using them: a tool
that is too old stops it with exit 2 (tool, version found, version needed, how to get it)
before anything is downloaded; with the machine's real tools it proceeds."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _script(path: Path, output: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def stack_dirs() -> Iterator[dict[str, str]]:
    """Empty state and cache dirs (so every backend is still to install), in a place the
    service user can enter when the tests run as root."""
    root = Path(tempfile.mkdtemp(prefix="ecomctl-toolchain-", dir="/var/tmp"))
    root.chmod(0o755)
    try:
        yield {"ECOMCTL_HOME": str(root / "state"), "ECOMCTL_CACHE_DIR": str(root / "cache")}
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def old_tools(tmp_path: Path) -> dict[str, str]:
    """Debian 12's Go, an old Maven first on PATH, and an explicit JDK 11."""
    bin_dir = tmp_path / "bin"
    _script(bin_dir / "go", "go version go1.19.8 linux/amd64")
    _script(bin_dir / "mvn", "Apache Maven 3.0.5 (r01de14724cdef164cd33c7c8c2fe155faf9602da)")
    jdk = tmp_path / "jdk-11"
    _script(jdk / "bin" / "java", 'openjdk version "11.0.2"')
    (jdk / "release").write_text('JAVA_VERSION="11.0.2"\n')
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "ECOMCTL_JAVA_HOME": str(jdk)}


def test_too_old_tools_stop_the_install_with_exit_2_before_any_download(
    ecomctl: Any, stack_dirs: dict[str, str], old_tools: dict[str, str]
) -> None:
    result = ecomctl("stack", "install", env={**stack_dirs, **old_tools}, timeout=120)
    assert result.exit_code == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "go: found 1.19.8" in message and "needs Go >= 1.24.6" in message
    assert "GOTOOLCHAIN=go1.27.3" in message
    assert "java: found 11.0.2" in message and "needs a JDK >= 21" in message
    assert "java: found 11.0.2" in message and "needs a JDK >= 17" in message
    assert "ECOMCTL_JAVA_HOME" in message
    assert "mvn: found 3.0.5" in message and "needs Maven >= 3.6.3" in message
    cache = Path(stack_dirs["ECOMCTL_CACHE_DIR"])
    downloads = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert downloads == [], downloads


def test_only_the_tools_of_the_backends_to_install_are_checked(
    ecomctl: Any, stack_dirs: dict[str, str], old_tools: dict[str, str]
) -> None:
    result = ecomctl("stack", "install", "jaeger", env={**stack_dirs, **old_tools}, timeout=120)
    assert result.exit_code == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "go: found 1.19.8" in message
    assert "java:" not in message and "mvn:" not in message


def test_a_missing_explicit_jdk_is_named(ecomctl: Any, stack_dirs: dict[str, str]) -> None:
    env = {**stack_dirs, "ECOMCTL_JAVA_HOME": "/nonexistent/jdk"}
    result = ecomctl("stack", "install", "kafka", "--check", env=env, timeout=120)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "java: found an unreadable version (/nonexistent/jdk)" in " ".join(
        result.stderr.split()
    )


def test_the_machines_tools_pass_the_check(ecomctl: Any, stack_dirs: dict[str, str]) -> None:
    result = ecomctl("stack", "install", "--check", env=stack_dirs, timeout=300)
    assert result.exit_code == 0, result.stdout + result.stderr
    # PostgreSQL and Redis are Debian packages: installed for the whole machine.
    assert "to install: kafka, elasticsearch, jaeger" in result.stdout
    rows = {line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line}
    assert {"go", "java", "mvn"} <= rows


def test_with_the_right_tools_the_install_proceeds(
    ecomctl: Any, stack_dirs: dict[str, str]
) -> None:
    """A real install into an empty cache: Kafka's jars through the pinned dependency plugin
    with strict checksums (the shared stack's cache is warm, so this is what proves it)."""
    result = ecomctl("stack", "install", "kafka", env=stack_dirs, timeout=600)
    assert result.exit_code == 0, result.stdout + result.stderr
    cache = Path(stack_dirs["ECOMCTL_CACHE_DIR"])
    jars = {p.name for p in (cache / "kafka-4.1.1" / "lib").glob("*.jar")}
    assert "kafka_2.13-4.1.1.jar" in jars and "kafka-clients-4.1.1.jar" in jars
    log = (cache / "logs" / "install-kafka.log").read_text()
    assert "maven-dependency-plugin:3.11.0:copy-dependencies" in log
    assert "--strict-checksums" in log
    again = ecomctl("stack", "install", "kafka", env=stack_dirs, timeout=120)
    assert again.exit_code == 0 and "nothing (all installed)" in again.stdout
