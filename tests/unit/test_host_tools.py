"""Reading host tool versions and deciding what is new enough, without running the tools."""

from __future__ import annotations

import pytest

from ecomctl.errors import ToolchainError
from ecomctl.stack import host_tools
from ecomctl.stack.host_tools import FoundTool, ToolNeed

GO_NEED = ToolNeed("go", (1, 24, 6), "Jaeger's build")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("go version go1.26.8 linux/amd64", (1, 26, 8)),
        ("go version go1.24rc1 linux/amd64", (1, 24)),
        ("go: downloading go1.27.3 (linux/amd64)\ngo version go1.27.3 linux/amd64", (1, 27, 3)),
        ("bash: go: command not found", None),
    ],
)
def test_go_versions(text: str, version: tuple[int, ...] | None) -> None:
    assert host_tools.parse_go_version(text) == version


def test_maven_version_with_colour_codes() -> None:
    text = "\x1b[1mApache Maven 3.8.7\x1b[m\nMaven home: /usr/share/maven"
    assert host_tools.parse_maven_version(text) == (3, 8, 7)


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ('JAVA_VERSION="17.0.15"', (17, 0, 15)),
        ('JAVA_VERSION="25"', (25,)),
        ('JAVA_VERSION="1.8.0_392"', (8, 0, 392)),
        ("IMPLEMENTOR=nobody", None),
    ],
)
def test_java_release_files(release: str, version: tuple[int, ...] | None) -> None:
    assert host_tools.parse_java_release(release) == version


def test_a_new_enough_tool_has_no_shortfall() -> None:
    assert host_tools.shortfall(GO_NEED, FoundTool("go", "/usr/bin/go", (1, 26, 8))) is None
    assert host_tools.shortfall(GO_NEED, FoundTool("go", "/usr/bin/go", (1, 24, 6))) is None


def test_a_shortfall_names_tool_found_needed_and_how() -> None:
    message = host_tools.shortfall(GO_NEED, FoundTool("go", "/usr/bin/go", (1, 24)))
    assert message is not None
    assert message.startswith("go: found 1.24 (/usr/bin/go); Jaeger's build needs Go >= 1.24.6")
    assert "GOTOOLCHAIN=" in message


def test_a_missing_tool_is_a_shortfall() -> None:
    message = host_tools.shortfall(
        ToolNeed("mvn", (3, 6, 3), "the plugin"), FoundTool("mvn", None, None)
    )
    assert message is not None and message.startswith("mvn: found none;")


def test_a_debian_go_too_old_for_jaeger_is_never_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed: list[str] = []
    monkeypatch.setattr(host_tools, "find_go", lambda env=None: FoundTool("go", None, None))
    monkeypatch.setattr(host_tools, "debian_candidate_version", lambda package: (1, 19))
    with pytest.raises(ToolchainError) as raised:
        host_tools.check_tools([GO_NEED], install_package=installed.append)
    assert installed == []
    assert raised.value.problems[0].startswith("go: found none;")


def test_a_debian_go_new_enough_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed: list[str] = []

    def find_go(env: object = None) -> FoundTool:
        return FoundTool("go", "/usr/bin/go", (1, 25, 1)) if installed else FoundTool(
            "go", None, None
        )

    monkeypatch.setattr(host_tools, "find_go", find_go)
    monkeypatch.setattr(host_tools, "debian_candidate_version", lambda package: (1, 25))
    checks = host_tools.check_tools([GO_NEED], install_package=installed.append)
    assert installed == ["golang-go"]
    assert checks[0].found.version == (1, 25, 1) and checks[0].problem is None


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_tools, "find_go", lambda env=None: FoundTool("go", "/g", (1, 19)))
    monkeypatch.setattr(host_tools, "find_maven", lambda: FoundTool("mvn", "/m", (3, 0, 5)))
    needs = [GO_NEED, ToolNeed("mvn", (3, 6, 3), "the plugin")]
    with pytest.raises(ToolchainError) as raised:
        host_tools.check_tools(needs)
    assert [p.split(":")[0] for p in raised.value.problems] == ["go", "mvn"]
