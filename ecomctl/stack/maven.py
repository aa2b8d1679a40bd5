"""Resolving artifacts from Maven Central into ecomctl's cache with the machine's Maven."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ecomctl.stack.toolchain import require_tool, run_logged

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


def _maven_args(cache: Path) -> list[str]:
    return ["-B", "-q", f"-Dmaven.repo.local={cache / 'm2'}"]


def copy_dependencies(
    coordinates: Sequence[str], *, target: Path, cache: Path, log_file: Path, name: str
) -> None:
    """Resolve ``group:artifact:version`` coordinates with their runtime dependencies and copy
    every jar into ``target``."""
    mvn = require_tool("mvn", "maven", log_file=log_file)
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
            mvn, *_maven_args(cache), "dependency:copy-dependencies",
            f"-DoutputDirectory={target}", "-DincludeScope=runtime",
        ],
        log_file=log_file, what=f"Maven resolve {', '.join(coordinates)}", cwd=project,
    )


def copy_artifact(coordinate: str, *, target: Path, cache: Path, log_file: Path) -> None:
    """Copy one artifact (``group:artifact:version[:type]``, no dependencies) into ``target``."""
    mvn = require_tool("mvn", "maven", log_file=log_file)
    target.mkdir(parents=True, exist_ok=True)
    run_logged(
        [
            mvn, *_maven_args(cache), "dependency:copy", f"-Dartifact={coordinate}",
            f"-DoutputDirectory={target}",
        ],
        log_file=log_file, what=f"Maven download {coordinate}", cwd=target,
    )
