"""An artifact published without checksum files is checked against its pinned sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from ecomctl.errors import InstallError
from ecomctl.stack import maven

COORDINATE = "org.example:thing:1.0:zip"


@pytest.fixture
def fake_maven(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Maven's download replaced by writing a known file; the argv of each call kept."""
    calls: list[list[str]] = []

    def run_logged(argv: list[str], **_: Any) -> None:
        calls.append(argv)
        target = Path(next(a for a in argv if a.startswith("-DoutputDirectory=")).split("=")[1])
        (target / "thing-1.0.zip").write_bytes(b"the artifact")

    monkeypatch.setattr(maven, "run_logged", run_logged)
    monkeypatch.setattr(maven, "tool_path", lambda tool: "/usr/bin/mvn")
    return calls


def test_a_matching_digest_is_accepted(fake_maven: list[list[str]], tmp_path: Path) -> None:
    digest = hashlib.sha256(b"the artifact").hexdigest()
    path = maven.copy_artifact(COORDINATE, target=tmp_path, cache=tmp_path,
                               log_file=tmp_path / "log", sha256=digest)
    assert path == tmp_path / "thing-1.0.zip" and path.exists()
    assert "--strict-checksums" not in fake_maven[0]
    assert f"{maven.DEPENDENCY_PLUGIN}:copy" in fake_maven[0]


def test_a_wrong_digest_fails_and_deletes_the_download(
    fake_maven: list[list[str]], tmp_path: Path
) -> None:
    with pytest.raises(InstallError, match="does not match the pinned"):
        maven.copy_artifact(COORDINATE, target=tmp_path, cache=tmp_path,
                            log_file=tmp_path / "log", sha256="0" * 64)
    assert not (tmp_path / "thing-1.0.zip").exists()


def test_without_a_pinned_digest_maven_checks_strictly(
    fake_maven: list[list[str]], tmp_path: Path
) -> None:
    maven.copy_artifact(COORDINATE, target=tmp_path, cache=tmp_path, log_file=tmp_path / "log")
    assert "--strict-checksums" in fake_maven[0]
