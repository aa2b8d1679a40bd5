"""Resolving artifacts from Maven Central into ecomctl's cache with the machine's Maven.

The dependency plugin is named with its version: Debian's Maven 3.8 binds the unversioned
``dependency:`` prefix to 2.8 (2013). Maven runs with strict checksums (``-C``), so a
corrupted or tampered download fails instead of being used; an artifact published without
checksum files (Elasticsearch's integration-test zip) is checked against a pinned sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ecomctl.errors import InstallError
from ecomctl.stack.host_tools import ToolNeed, tool_path
from ecomctl.stack.toolchain import run_logged

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.11.0"
MAVEN_NEED = ToolNeed("mvn", (3, 6, 3), f"{DEPENDENCY_PLUGIN.split(':', 1)[1]}")
"""The plugin's own prerequisite."""

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.ecomctl.stack</groupId>
  <artifactId>{artifact_id}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

_DEPENDENCY = """    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>"""


def _maven_args(cache: Path, *, strict: bool = True) -> list[str]:
    checksums = ["--strict-checksums"] if strict else []
    return ["-B", "-q", *checksums, f"-Dmaven.repo.local={cache / 'm2'}"]


def copy_dependencies(
    coordinates: Sequence[str], *, target: Path, cache: Path, log_file: Path, name: str
) -> None:
    """Resolve ``group:artifact:version`` coordinates with their runtime dependencies and copy
    every jar into ``target``."""
    mvn = tool_path("mvn")
    project = cache / "maven-projects" / name
    project.mkdir(parents=True, exist_ok=True)
    deps = []
    for coordinate in coordinates:
        group, artifact, version = coordinate.split(":")
        deps.append(_DEPENDENCY.format(group=group, artifact=artifact, version=version))
    (project / "pom.xml").write_text(
        _POM.format(artifact_id=name, dependencies="\n".join(deps))
    )
    target.mkdir(parents=True, exist_ok=True)
    run_logged(
        [
            mvn, *_maven_args(cache), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={target}", "-DincludeScope=runtime",
        ],
        log_file=log_file, what=f"Maven resolve {', '.join(coordinates)}", cwd=project,
    )


def copy_artifact(
    coordinate: str, *, target: Path, cache: Path, log_file: Path, sha256: str | None = None
) -> Path:
    """Copy one artifact (``group:artifact:version:type[:classifier]``, no dependencies) into
    ``target``; its path there.

    ``sha256`` is for an artifact Maven Central publishes without checksum files (strict
    checksums would refuse it): the download is then checked against this pinned digest.
    """
    mvn = tool_path("mvn")
    target.mkdir(parents=True, exist_ok=True)
    run_logged(
        [
            mvn, *_maven_args(cache, strict=sha256 is None), f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={coordinate}", f"-DoutputDirectory={target}",
        ],
        log_file=log_file, what=f"Maven download {coordinate}", cwd=target,
    )
    _, artifact, version, kind, *classifier = coordinate.split(":")
    path = target / f"{'-'.join([artifact, version, *classifier])}.{kind}"
    if sha256 is not None:
        actual = _sha256(path)
        if actual != sha256:
            path.unlink(missing_ok=True)
            raise InstallError(
                f"{coordinate}: sha256 {actual} does not match the pinned {sha256}; "
                "the download was deleted"
            )
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
